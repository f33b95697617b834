"""Training in the spirit of ``d2l.train_ch6``, fast, reproducible, cached.

:func:`train` runs SGD with cross-entropy like ``d2l.train_ch6`` and returns
a :class:`History` instead of drawing an animation. Differences that matter:

* Speed: metrics accumulate on the device and are read once per epoch (one
  host sync per epoch, not per step); gradients are reset with
  ``set_to_none``; evaluation runs under ``torch.no_grad()``.
* Reproducibility: with ``seed``, the run draws from a private copy of
  PyTorch's RNG (``torch.random.fork_rng``) seeded with it, so the seed fixes
  the initial weights (``init="xavier"`` re-initialises every layer) and the
  shuffling of any ``train_iter`` that shuffles with the global generator
  (``DataLoader``, ``bnlesson.data.BatchIterator``) or with its own
  ``generator`` attribute (seeded too, and restored afterwards). The global
  RNG state is left as it was, so a cached run and a fresh one leave a
  notebook in the same state.
* Caching: ``train(..., cache={...})`` stores the finished run (History,
  ``state_dict`` and plain tensor attributes such as the lecture's moving
  statistics) under :func:`run_cache_dir` and reloads it on the next call
  with the same configuration; see :func:`run_cached`.
* Silence: nothing is printed. A tqdm bar shows progress unless switched off
  (``progress=False``, ``BNLESSON_PROGRESS=0``, or running under pytest).

Environment variables: ``BNLESSON_CACHE_DIR``, ``BNLESSON_NO_CACHE``,
``BNLESSON_PROGRESS`` (see :data:`bnlesson.utils.ENV_VARS`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from bnlesson.models import init_xavier
from bnlesson.utils import (
    atomic_write,
    env,
    env_flag,
    get_device,
    model_device,
    repo_root,
)

logger = logging.getLogger(__name__)

INIT_CHOICES = ("xavier", None)
#: Version of the cache file layout; part of every key.
CACHE_FORMAT = 1
_MAGIC = b"BNLESSON-RUN 1\n"
_STORABLE = (type(None), bool, int, float, str, torch.Tensor)


# --------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------
@dataclass
class History:
    """Metrics of one run; per-epoch lists have one entry per epoch.

    ``train_loss`` / ``train_acc`` average over the epoch's mini-batches,
    each computed in training mode before that batch's update (as d2l
    does); ``test_acc`` is measured in ``eval()`` mode after the epoch.
    ``seconds`` is the wall time of each epoch's training pass (data loading
    included, evaluation excluded). ``step_loss`` / ``step_acc`` hold one
    value per mini-batch when ``train(..., record_steps=True)``.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    num_examples: int = 0
    step_loss: list[float] | None = None
    step_acc: list[float] | None = None

    @property
    def num_epochs(self) -> int:
        return len(self.test_acc)

    @property
    def final(self) -> dict[str, float]:
        """The last epoch's ``train_loss``, ``train_acc`` and ``test_acc``."""
        if not self.test_acc:
            raise ValueError("the history is empty: no epoch was run")
        return {"train_loss": self.train_loss[-1],
                "train_acc": self.train_acc[-1],
                "test_acc": self.test_acc[-1]}

    def summary(self) -> str:
        """d2l's closing line, 3 decimals, no timings (so reruns print the
        same text): ``'loss 0.271, train acc 0.900, test acc 0.861'``."""
        final = self.final
        return (f"loss {final['train_loss']:.3f}, "
                f"train acc {final['train_acc']:.3f}, "
                f"test acc {final['test_acc']:.3f}")

    def epochs_to_reach(self, acc: float) -> int | None:
        """The first epoch (1-based) whose test accuracy is >= ``acc``, or
        None if no epoch reached it."""
        for epoch, test_acc in enumerate(self.test_acc, start=1):
            if test_acc >= acc:
                return epoch
        return None

    @property
    def examples_per_sec(self) -> float:
        """Training examples per second over all epochs (wall time of the
        training passes, data loading included)."""
        return self.num_examples * self.num_epochs / sum(self.seconds)

    def to_dict(self) -> dict:
        """Plain lists and numbers (JSON- and cache-friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> History:
        return cls(**values)


# --------------------------------------------------------------------------
# Training and evaluation
# --------------------------------------------------------------------------
def evaluate_accuracy(net: nn.Module, data_iter, device=None) -> float:
    """Accuracy of ``net`` over ``data_iter`` (batches X (B, ...), y (B,)),
    in ``eval()`` mode; the net's train/eval mode is restored afterwards.

    ``device`` defaults to the device of the net's parameters.
    """
    device = model_device(net) if device is None else torch.device(device)
    was_training = net.training
    net.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    num_examples = 0
    # no_grad rather than inference_mode: a module that caches tensors
    # during forward (the lecture's BN moves its statistics to the input's
    # device) must not keep inference tensors it later needs for autograd.
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            correct += (net(X).argmax(dim=1) == y).sum()
            num_examples += len(y)
    net.train(was_training)
    if num_examples == 0:
        raise ValueError("data_iter yielded no examples")
    return correct.item() / num_examples


def train(net: nn.Module, train_iter, test_iter, num_epochs: int, lr: float,
          device=None, *, init: str | None = "xavier", seed: int | None = None,
          record_steps: bool = False, progress: bool | None = None,
          cache: dict | None = None) -> History:
    """Train ``net`` with SGD and cross-entropy; return its :class:`History`.

    ``train_iter`` / ``test_iter`` yield ``(X, y)``: X (B, 1, 28, 28) (or
    whatever ``net`` takes), y (B,) int64 labels. The net is moved to
    ``device`` (default :func:`bnlesson.utils.get_device`) and left there,
    trained, in training mode.

    init: ``"xavier"`` re-initialises the net (``reset_parameters()`` of
        every layer, then Xavier-uniform Linear/Conv2d weights, as
        ``d2l.train_ch6``); ``None`` keeps its current parameters.
    seed: fixes the initial weights and the shuffling (see the module
        docstring); None uses the global RNG as it stands (like d2l).
    record_steps: also record each mini-batch's loss and accuracy.
    progress: tqdm bar; None means on unless ``BNLESSON_PROGRESS=0`` or
        under pytest.
    cache: a dict describing what the arguments cannot show (e.g.
        ``{"chapter": 2, "model": "lenet-bn", "batch_size": 256,
        "subset": "mini"}``) turns caching on; it needs a ``seed``. The key
        adds lr, num_epochs, init, seed, record_steps, ``repr(net)``, a
        fingerprint of the initial weights, ``train_iter.batch_size`` (if
        it has one), the number of batches, device type, thread count and
        torch version. A hit loads the trained
        weights into ``net`` and returns the stored History (its
        ``seconds`` are those of the original run).
    """
    _check_train_args(num_epochs, lr, init, cache, seed)
    device = get_device() if device is None else torch.device(device)
    with _seeded(seed, device, train_iter):
        if init == "xavier":
            _reinitialise(net)
        net.to(device)
        fit = partial(_fit, net, train_iter, test_iter, num_epochs, lr,
                      device, record_steps, progress)
        if cache is None:
            return fit()
        config = _run_config(cache, net, train_iter, test_iter, num_epochs,
                             lr, init, seed, record_steps, device)
        return _cached_fit(net, config, fit, device)


def _check_train_args(num_epochs, lr, init, cache, seed) -> None:
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive int, "
                         f"got {num_epochs!r}")
    if not isinstance(lr, (int, float)) or lr <= 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if init not in INIT_CHOICES:
        raise ValueError(f"init must be 'xavier' or None (keep the current "
                         f"weights), got {init!r}")
    if seed is not None and not isinstance(seed, int):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    if cache is not None and not isinstance(cache, dict):
        raise TypeError(f"cache must be None or a dict describing the run, "
                        f"got {type(cache).__name__}")
    if cache is not None and seed is None:
        raise ValueError("cache needs a seed: without one the run is not "
                         "reproducible, so a stored result could not stand "
                         "in for it; pass seed=0 (or any int)")


def _reinitialise(net: nn.Module) -> None:
    """Fresh parameters drawn from the current RNG: each layer's default
    initialisation, then Xavier for Linear/Conv2d weights."""
    for module in net.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
    init_xavier(net)


@contextmanager
def _seeded(seed: int | None, device: torch.device, data_iter):
    """Run the block on a private RNG seeded with ``seed`` (no-op for None);
    restore the global RNG and ``data_iter.generator`` afterwards."""
    if seed is None:
        yield
        return
    generator = getattr(data_iter, "generator", None)
    if not isinstance(generator, torch.Generator):
        generator = None
    saved = generator.get_state() if generator is not None else None
    cuda = (list(range(torch.cuda.device_count()))
            if device.type == "cuda" else [])
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        if generator is not None:
            generator.manual_seed(seed)
        try:
            yield
        finally:
            if generator is not None:
                generator.set_state(saved)


def _fit(net, train_iter, test_iter, num_epochs, lr, device, record_steps,
         progress) -> History:
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    history = History(step_loss=[] if record_steps else None,
                      step_acc=[] if record_steps else None)
    num_batches = _length(train_iter)
    total = num_batches * num_epochs if num_batches is not None else None
    with _progress_bar(progress, total) as bar:
        for _ in range(num_epochs):
            start = time.perf_counter()
            epoch = _train_epoch(net, train_iter, optimizer, device,
                                 record_steps, bar)
            history.seconds.append(time.perf_counter() - start)
            history.test_acc.append(evaluate_accuracy(net, test_iter, device))
            _append_epoch(history, epoch)
            bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}",
                            test_acc=f"{history.test_acc[-1]:.3f}")
    return history


def _train_epoch(net, train_iter, optimizer, device, record_steps, bar):
    """One pass over ``train_iter``; returns host-side numbers, read with a
    single sync at the end of the epoch."""
    net.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    step_loss, step_acc = [], []
    num_examples = 0
    for X, y in train_iter:
        X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
        y_hat = net(X)
        loss = F.cross_entropy(y_hat, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # Accumulate on the device: .item() here would sync every step.
        batch_loss = loss.detach()
        batch_correct = (y_hat.argmax(dim=1) == y).sum()
        loss_sum += batch_loss * len(y)
        correct += batch_correct
        num_examples += len(y)
        if record_steps:
            step_loss.append(batch_loss)
            step_acc.append(batch_correct / len(y))
        bar.update()
    if num_examples == 0:
        raise ValueError("train_iter yielded no examples")
    return {"loss": loss_sum.item() / num_examples,
            "acc": correct.item() / num_examples,
            "num_examples": num_examples,
            "step_loss": torch.stack(step_loss).tolist() if step_loss else [],
            "step_acc": torch.stack(step_acc).tolist() if step_acc else []}


def _append_epoch(history: History, epoch: dict) -> None:
    history.train_loss.append(epoch["loss"])
    history.train_acc.append(epoch["acc"])
    history.num_examples = epoch["num_examples"]
    if history.step_loss is not None:
        history.step_loss.extend(epoch["step_loss"])
        history.step_acc.extend(epoch["step_acc"])


def _length(iterable) -> int | None:
    try:
        return len(iterable)
    except TypeError:
        return None


# --------------------------------------------------------------------------
# Progress bars
# --------------------------------------------------------------------------
def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to show a progress bar: ``progress`` if given, else on unless
    ``BNLESSON_PROGRESS=0`` or running under pytest."""
    if progress is not None:
        return bool(progress)
    if not env_flag("BNLESSON_PROGRESS", True):
        return False
    return "PYTEST_CURRENT_TEST" not in os.environ


class _NoBar:
    """Stands in for a tqdm bar when progress is off (writes nothing)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values) -> None:
        pass


@contextmanager
def _progress_bar(progress: bool | None, total: int | None):
    if not progress_enabled(progress):
        yield _NoBar()
        return
    # tqdm.auto: a widget in Jupyter, a text bar in a terminal. leave=False
    # so finished runs do not pile up bars in the stored notebook outputs.
    from tqdm.auto import tqdm
    bar = tqdm(total=total, unit="batch", leave=False)
    try:
        yield bar
    finally:
        bar.close()


# --------------------------------------------------------------------------
# Cached runs
# --------------------------------------------------------------------------
def run_cache_dir() -> Path:
    """Folder of cached runs: ``$BNLESSON_CACHE_DIR``, else ``.cache/runs``
    in the checkout (the folder holding ``pyproject.toml``), else
    ``~/.cache/bnlesson/runs``."""
    if env("BNLESSON_CACHE_DIR"):
        return Path(env("BNLESSON_CACHE_DIR"))
    top = repo_root()
    if top is None:
        return Path.home() / ".cache" / "bnlesson" / "runs"
    return top / ".cache" / "runs"


def cache_enabled() -> bool:
    """False when the environment variable ``BNLESSON_NO_CACHE`` is set to
    1/true/yes/on."""
    return not env_flag("BNLESSON_NO_CACHE", False)


def config_key(config: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of ``config`` plus the cache
    format and torch version (results depend on both)."""
    return hashlib.sha256(_canonical_json(_full_config(config))).hexdigest()


def run_cached(config: dict, compute: Callable[[], object], *,
               enabled: bool | None = None, refresh: bool = False,
               directory: str | os.PathLike | None = None):
    """``compute()``'s result, computed at most once per ``config``.

    config: JSON-serialisable dict naming everything the result depends on
        (model, norm, lr, num_epochs, batch_size, seed, subset, ...).
    compute: returns dicts / lists / tuples of numbers, strings, None and
        tensors (e.g. ``{"history": h.to_dict(), "stats": s.to_dict()}``);
        other objects raise TypeError (convert them first).
    enabled: None follows ``BNLESSON_NO_CACHE``; False skips the cache.
    refresh: recompute and overwrite even if an entry exists.
    directory: default :func:`run_cache_dir`.

    An entry is written atomically (temporary file + rename) and verified
    on reading (key and SHA-256 of its content); a missing, truncated or
    corrupted entry is recomputed, never trusted. Cache problems are only
    logged (``logging``, level DEBUG/INFO), never printed.
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    key = config_key(config)
    if not (cache_enabled() if enabled is None else enabled):
        return compute()
    path = Path(directory or run_cache_dir()) / f"{key}.run"
    if not refresh:
        cached = _read_entry(path, key)
        if cached is not None:
            return cached["value"]
    value = compute()
    _check_storable(value, "compute()")
    _write_entry(path, key, config, value)
    return value


def _full_config(config: dict) -> dict:
    return {"cache_format": CACHE_FORMAT, "torch": torch.__version__,
            "config": config}


def _canonical_json(value) -> bytes:
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"),
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cache config must be JSON-serialisable (str, int, "
                        f"finite float, bool, None, lists, dicts with str "
                        f"keys): {exc}") from exc
    return text.encode()


def _check_storable(value, where: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: dict keys must be str to be "
                                f"cached, got {k!r}")
            _check_storable(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_storable(v, f"{where}[{i}]")
    elif not isinstance(value, _STORABLE):
        raise TypeError(
            f"{where} is a {type(value).__name__}, which the cache cannot "
            "store; return dicts, lists, numbers, strings, None or tensors "
            "(e.g. History.to_dict())")


def _read_entry(path: Path, key: str):
    """The stored ``{"value": ...}`` or None if missing or invalid."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.info("cannot read cache entry %s (%s); recomputing", path, exc)
        return None
    try:
        return _decode_entry(data, key)
    except Exception as exc:  # any decoding failure means: do not trust it
        logger.info("invalid cache entry %s (%s); recomputing", path, exc)
        return None


def _decode_entry(data: bytes, key: str) -> dict:
    if not data.startswith(_MAGIC):
        raise ValueError("not a bnlesson cache entry")
    header_line, sep, body = data[len(_MAGIC):].partition(b"\n")
    if not sep:
        raise ValueError("truncated header")
    header = json.loads(header_line)
    if header.get("key") != key:
        raise ValueError("key mismatch")
    if header.get("sha256") != hashlib.sha256(body).hexdigest():
        raise ValueError("checksum mismatch (truncated or corrupted)")
    value = torch.load(io.BytesIO(body), map_location="cpu",
                       weights_only=True)
    return {"value": value}


def _write_entry(path: Path, key: str, config: dict, value) -> None:
    """Serialise first, then write atomically, so readers never see a
    partial entry. An unwritable cache is logged and skipped: the result is
    still returned."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    body = buffer.getvalue()
    header = {"key": key, "sha256": hashlib.sha256(body).hexdigest(),
              "config": _full_config(config)}
    data = _MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n" + body
    try:
        atomic_write(path, data)
    except OSError as exc:
        logger.info("cannot write cache entry %s (%s); not cached", path, exc)


def _run_config(cache, net, train_iter, test_iter, num_epochs, lr, init,
                seed, record_steps, device) -> dict:
    return {"user": cache, "lr": lr, "num_epochs": num_epochs, "init": init,
            "seed": seed, "record_steps": record_steps, "net": repr(net),
            "initial_state": _fingerprint(_net_state(net)),
            "batch_size": getattr(train_iter, "batch_size", None),
            "train_batches": _length(train_iter),
            "test_batches": _length(test_iter), "device": device.type}


def _cached_fit(net, config, fit, device) -> History:
    fresh = []

    def compute():
        history = fit()
        fresh.append(history)
        return {"history": history.to_dict(), "net": _net_state(net)}

    payload = run_cached(config, compute)
    if fresh:
        return fresh[0]
    _load_net_state(net, payload["net"], device)
    return History.from_dict(payload["history"])


def _net_state(net: nn.Module) -> dict:
    """``state_dict()`` plus plain tensor attributes, which ``state_dict()``
    misses (the lecture's BN keeps its moving statistics that way)."""
    plain = {}
    for name, module in net.named_modules():
        tensors = {attr: value.detach().cpu()
                   for attr, value in vars(module).items()
                   if isinstance(value, torch.Tensor)}
        if tensors:
            plain[name] = tensors
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    return {"state_dict": state, "plain": plain}


def _load_net_state(net: nn.Module, state: dict, device) -> None:
    net.load_state_dict(state["state_dict"])
    for name, tensors in state["plain"].items():
        module = net.get_submodule(name)
        for attr, value in tensors.items():
            setattr(module, attr, value.to(device))
    net.to(device)
    net.train()  # as a fresh run leaves it


def _fingerprint(state: dict) -> str:
    """SHA-256 of every tensor's bytes, in a fixed order."""
    digest = hashlib.sha256()
    for group in ("state_dict", "plain"):
        for name, value in sorted(_flatten(state[group])):
            digest.update(name.encode())
            digest.update(value.contiguous().reshape(-1).view(torch.uint8)
                          .numpy().tobytes())
    return digest.hexdigest()


def _flatten(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}/")
        else:
            yield f"{prefix}{key}", value


# --------------------------------------------------------------------------
# Learning-rate sweeps
# --------------------------------------------------------------------------
def sweep_accuracy(history: History) -> float:
    """The final test accuracy of one run of a sweep, or ``nan`` if the run
    diverged (a non-finite training loss in any epoch): the "accuracy" of a
    net whose weights are inf/NaN says nothing, so a sweep must not count
    it as trained."""
    if not all(math.isfinite(loss) for loss in history.train_loss):
        return math.nan
    return history.final["test_acc"]


def largest_trainable_lr(final_acc, threshold: float) -> float | None:
    """The largest learning rate that "trains": ``final_acc`` maps each
    learning rate to the final test accuracy of its run (``nan`` for a
    diverged run, see :func:`sweep_accuracy`); a rate trains when its
    accuracy is ``>= threshold`` (NaN never does). The keys need not be
    sorted, and a rate too small to train does not hide larger ones that
    do. None if no rate trains.
    """
    trained = [lr for lr, acc in final_acc.items()
               if not math.isnan(acc) and acc >= threshold]
    return max(trained) if trained else None
