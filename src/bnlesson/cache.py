"""Cached runs: a result computed once per configuration, then read back.

A rerun of a chapter should not retrain what it already has (UvA's
``overwrite=False`` checkpoints). :func:`run_cached` keeps ``compute()``'s
result, a plain dict, as a ``torch.save`` file named after the SHA-256 of
the configuration, written atomically, and reads it back with
``torch.load(weights_only=True)``; an unreadable file is recomputed.
:func:`run_cached_training` also keeps the trained weights of a net.

Environment variables: ``BNLESSON_CACHE_DIR`` (the folder),
``BNLESSON_NO_CACHE=1`` (never read or write).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import torch
from torch import nn

from bnlesson.utils import atomic_write, env, env_flag, model_device, repo_root

logger = logging.getLogger(__name__)


def run_cache_dir() -> Path:
    """``$BNLESSON_CACHE_DIR``, else ``.cache/runs`` in the checkout, else
    ``~/.cache/bnlesson/runs``."""
    if env("BNLESSON_CACHE_DIR"):
        return Path(env("BNLESSON_CACHE_DIR"))
    top = repo_root()
    if top is None:
        return Path.home() / ".cache" / "bnlesson" / "runs"
    return top / ".cache" / "runs"


def run_cached(config: dict, compute):
    """``compute()``'s result, computed at most once per ``config``.

    config: a JSON-serialisable dict naming everything the result depends
        on (model, norm, lr, num_epochs, seed, subset, ...).
    compute: returns plain data: dicts, lists, numbers, strings, None and
        tensors, e.g. ``{"history": history.to_dict()}``.
    """
    if env_flag("BNLESSON_NO_CACHE", False):
        return compute()
    key = json.dumps({"config": config, "torch": torch.__version__},
                     sort_keys=True)  # results depend on the torch version
    path = run_cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()}.pt"
    if path.exists():
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            if entry["key"] == key:
                return entry["value"]
        except Exception as exc:  # truncated or corrupted: recompute
            logger.info("unreadable cache entry %s (%s)", path, exc)
    value = compute()
    buffer = io.BytesIO()
    torch.save({"key": key, "value": value}, buffer)
    try:  # what torch.load(weights_only=True) cannot read is not plain data
        torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    except Exception as exc:
        raise TypeError("compute() must return plain data (dicts, lists, "
                        "numbers, tensors), e.g. History.to_dict()") from exc
    try:
        atomic_write(path, buffer.getvalue())
    except OSError as exc:  # the result is still good
        logger.info("cannot write cache entry %s (%s)", path, exc)
    return value


def run_cached_training(config: dict, net: nn.Module, fit):
    """:func:`run_cached` for ``fit()``, which trains ``net`` and returns
    plain data; the trained weights are cached with it and, on a hit,
    loaded into ``net`` (left in training mode, as a fresh run leaves it).
    The key adds a hash of the weights ``net`` starts from."""
    before = hashlib.sha256()
    for name, tensor in sorted(_net_state(net).items()):
        before.update(name.encode() + tensor.contiguous().numpy().tobytes())
    entry = run_cached({**config, "initial_state": before.hexdigest()},
                       lambda: {"result": fit(), "net": _net_state(net)})
    _load_net_state(net, entry["net"])
    return entry["result"]


def _net_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """``state_dict()`` plus plain tensor attributes, which it misses (the
    lecture's BN keeps its moving statistics so), on the CPU."""
    state = dict(net.state_dict())
    for name, module in net.named_modules():
        for attr, value in vars(module).items():
            if isinstance(value, torch.Tensor):
                state[f"{name}.{attr}" if name else attr] = value
    return {key: value.detach().cpu() for key, value in state.items()}


def _load_net_state(net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    own = net.state_dict()
    net.load_state_dict({k: v for k, v in state.items() if k in own})
    device = model_device(net)
    for key, value in state.items():
        if key not in own:  # a plain tensor attribute
            name, _, attr = key.rpartition(".")
            setattr(net.get_submodule(name), attr, value.to(device))
    net.train()
