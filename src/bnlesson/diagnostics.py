"""Per-layer diagnostics while a net trains (Karpathy's makemore part 3,
fast.ai's ``ActivationStats``).

:class:`ActivationStats` hooks into a net and, on every ``every``-th
training step, records:

* for each activation module (default: every ``nn.Sigmoid``, ``nn.Tanh``,
  ``nn.ReLU``; any module can be named): the output's ``mean`` and ``std``
  (whole batch), percentiles ``p15`` / ``p50`` / ``p85`` (``torch.quantile``
  on a fixed random subsample of ``sample_size`` values), ``saturation``
  (share of saturated outputs, see :func:`saturated_share`) and
  ``grad_std``, the standard deviation of the loss gradient with respect to
  the module's output (∂L/∂Y over the batch);
* for each weight layer (default: every ``nn.Linear``, ``nn.Conv1d``,
  ``nn.Conv2d``): ``grad_norm``, the Frobenius norm of ∂L/∂W, and
  ``update_ratio``, ‖ΔW‖ / ‖W‖ measured over the optimizer step that
  follows (the weights before the step are compared with the weights at the
  next forward). For plain SGD ``ΔW = -lr * grad``, so this equals
  Karpathy's ``lr * ‖grad‖ / ‖W‖``; for other optimizers it is the real
  update. Values near 1e-3 are Karpathy's rule of thumb.

A "training step" is a forward pass of the net in training mode
(``net.training``); forwards in ``eval()`` mode are not recorded. Steps are
counted from 0, so steps 0, every, 2 * every, ... are recorded. Recording
never touches the global RNG (the subsample comes from a private
generator), so a run with diagnostics gives the same numbers as one
without.

Usage::

    with ActivationStats(net, every=10) as stats:
        train(net, train_iter, test_iter, num_epochs, lr, seed=0)
    stats.steps                          # [0, 10, 20, ...]
    stats.activations["2"]["p50"]        # one float per recorded step
    stats.weights["0"]["update_ratio"]
    print(stats.table())                 # the last recorded step

A cached :func:`bnlesson.train.train` that finds its run in the cache does
not train, so nothing is recorded; to cache statistics, cache them with
the run::

    def run():
        net = lenet("batchnorm")
        with ActivationStats(net, every=10) as stats:
            history = train(net, train_iter, test_iter, 5, 1.0, seed=0)
        return {"history": history.to_dict(), "stats": stats.to_dict()}

    result = run_cached({"chapter": 5, "model": "lenet-bn", ...}, run)
    print(format_table(result["stats"]))

Layers are keyed by their names in ``net.named_modules()`` (``"2"`` in a
``Sequential``; ``"act3"`` in :func:`bnlesson.models.deep_mlp`). Values
that were not measured (no backward pass, a module that has no saturation)
are ``nan``.
"""
from __future__ import annotations

import copy
import math
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from bnlesson.utils import model_device

#: Sigmoid output y is saturated when y < 0.02 or y > 0.98: there its slope
#: y(1 - y) < 0.0196, under 8% of its maximum 0.25.
SIGMOID_SATURATION = 0.02
#: Tanh output y is saturated when |y| > 0.96: there its slope 1 - y² <
#: 0.078, under 8% of its maximum 1 (the same criterion as for sigmoid).
TANH_SATURATION = 0.96
QUANTILES = (0.15, 0.50, 0.85)
ACTIVATION_TYPES = (nn.Sigmoid, nn.Tanh, nn.ReLU)
WEIGHT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)
ACTIVATION_KEYS = ("mean", "std", "p15", "p50", "p85", "saturation",
                   "grad_std")
WEIGHT_KEYS = ("grad_norm", "update_ratio")


def saturated_share(module: nn.Module, Y: torch.Tensor) -> torch.Tensor | None:
    """Share (0-d tensor) of saturated values in ``Y``, the output of
    ``module``: sigmoid outputs within :data:`SIGMOID_SATURATION` of 0 or 1,
    tanh outputs with ``|y| >`` :data:`TANH_SATURATION`, ReLU outputs equal
    to 0 (no gradient flows through them). None for other modules."""
    if isinstance(module, nn.Sigmoid):
        return ((Y < SIGMOID_SATURATION)
                | (Y > 1 - SIGMOID_SATURATION)).float().mean()
    if isinstance(module, nn.Tanh):
        return (Y.abs() > TANH_SATURATION).float().mean()
    if isinstance(module, nn.ReLU):
        return (Y == 0).float().mean()
    return None


def select_layers(net: nn.Module, names=None, types=ACTIVATION_TYPES
                  ) -> dict[str, nn.Module]:
    """``{name: module}`` in ``net.named_modules()`` order: the modules
    called ``names``, or (``names=None``) every module of one of ``types``.
    """
    modules = dict(net.named_modules())
    if names is None:
        return {name: m for name, m in modules.items()
                if isinstance(m, types)}
    if isinstance(names, str):
        raise TypeError(f"names must be a list of module names, got the "
                        f"string {names!r}; write [{names!r}]")
    missing = [name for name in names if name not in modules]
    if missing:
        raise ValueError(f"no module named {missing} in the net; names are "
                         f"{[n for n in modules if n]}")
    return {name: modules[name] for name in names}


class ActivationStats:
    """Record per-layer statistics every ``every`` training steps (see the
    module docstring). Use as a context manager, or call :meth:`close`.

    net: the model to watch (hooks are removed by :meth:`close`).
    every: record one step in ``every``.
    activations / weights: module names to watch instead of the defaults
        (weight layers must have a ``weight`` parameter).
    sample_size: number of values the percentiles are computed from.
    """

    def __init__(self, net: nn.Module, every: int = 10, *, activations=None,
                 weights=None, sample_size: int = 4096):
        for arg, value in (("every", every), ("sample_size", sample_size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg} must be a positive int, "
                                 f"got {value!r}")
        self.net = net
        self.every = every
        self.sample_size = sample_size
        self.steps: list[int] = []
        self._activation_layers = select_layers(net, activations,
                                                ACTIVATION_TYPES)
        self._weight_layers = select_layers(net, weights, WEIGHT_TYPES)
        for name, module in self._weight_layers.items():
            if not isinstance(getattr(module, "weight", None), nn.Parameter):
                raise ValueError(f"module {name!r} ({type(module).__name__})"
                                 " has no weight parameter to watch")
        self._step = -1
        self._recording = False
        self._values: dict[tuple, dict[int, torch.Tensor]] = {}
        self._before: dict[str, torch.Tensor] = {}
        self._before_step = -1
        self._indices: dict[tuple, torch.Tensor] = {}
        # A private generator: subsampling must not shift the global RNG
        # (that would change the shuffling and thus the training itself).
        self._generator = torch.Generator().manual_seed(0)
        self._handles = [net.register_forward_pre_hook(self._on_net_forward)]
        for name, module in self._activation_layers.items():
            self._handles.append(module.register_forward_hook(
                partial(self._on_activation, name)))
        for name, module in self._weight_layers.items():
            self._handles.append(
                module.weight.register_post_accumulate_grad_hook(
                    partial(self._on_weight_grad, name)))

    def __enter__(self) -> ActivationStats:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Measure the pending update ratio and remove the hooks."""
        self._finish_update_ratios()
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # -- hooks --------------------------------------------------------------
    def _on_net_forward(self, net, args) -> None:
        # The weights now hold the previous step's update (if any).
        self._finish_update_ratios()
        if not net.training:
            self._recording = False
            return
        self._step += 1
        self._recording = self._step % self.every == 0
        if self._recording:
            self.steps.append(self._step)
            self._before = {name: m.weight.detach().clone()
                            for name, m in self._weight_layers.items()}
            self._before_step = self._step

    def _on_activation(self, name, module, args, output) -> None:
        if not self._recording or not isinstance(output, torch.Tensor):
            return
        Y = output.detach()
        for key, value in self._summarise(Y).items():
            self._store("activations", name, key, value)
        share = saturated_share(module, Y)
        if share is not None:
            self._store("activations", name, "saturation", share)
        if output.requires_grad:
            output.register_hook(partial(self._on_output_grad, name,
                                         self._step))

    def _on_output_grad(self, name, step, grad) -> None:
        self._store("activations", name, "grad_std",
                    grad.detach().float().std(), step)

    def _on_weight_grad(self, name, weight) -> None:
        if self._recording:
            self._store("weights", name, "grad_norm",
                        weight.grad.detach().float().norm())

    def _finish_update_ratios(self) -> None:
        for name, before in self._before.items():
            after = self._weight_layers[name].weight.detach()
            ratio = (after - before).float().norm() / before.float().norm()
            self._store("weights", name, "update_ratio", ratio,
                        self._before_step)
        self._before = {}

    # -- measuring ----------------------------------------------------------
    def _summarise(self, Y: torch.Tensor) -> dict[str, torch.Tensor]:
        flat = Y.reshape(-1).float()
        sample = flat
        if flat.numel() > self.sample_size:
            sample = flat[self._sample_indices(flat.numel(), flat.device)]
        q = torch.quantile(sample, torch.tensor(QUANTILES, device=Y.device))
        return {"mean": flat.mean(), "std": flat.std(), "p15": q[0],
                "p50": q[1], "p85": q[2]}

    def _sample_indices(self, n: int, device) -> torch.Tensor:
        """Fixed random positions per tensor size: unbiased across
        channels and pixels, and the same positions at every step."""
        key = (n, str(device))
        if key not in self._indices:
            idx = torch.randint(n, (self.sample_size,),
                                generator=self._generator)
            self._indices[key] = idx.to(device)
        return self._indices[key]

    def _store(self, kind, name, key, value, step=None) -> None:
        step = self._step if step is None else step
        self._values.setdefault((kind, name, key), {})[step] = value.detach()

    # -- results ------------------------------------------------------------
    def _series(self, kind: str, name: str, key: str) -> list[float]:
        found = self._values.get((kind, name, key), {})
        if not found:
            return [math.nan] * len(self.steps)
        # One host sync per series, not one per value.
        numbers = torch.stack(list(found.values())).float().cpu().tolist()
        by_step = dict(zip(found, numbers, strict=True))
        return [by_step.get(step, math.nan) for step in self.steps]

    @property
    def activations(self) -> dict[str, dict[str, list[float]]]:
        """``{layer: {key: [one float per recorded step]}}`` with keys
        :data:`ACTIVATION_KEYS`."""
        return {name: {key: self._series("activations", name, key)
                       for key in ACTIVATION_KEYS}
                for name in self._activation_layers}

    @property
    def weights(self) -> dict[str, dict[str, list[float]]]:
        """``{layer: {key: [one float per recorded step]}}`` with keys
        :data:`WEIGHT_KEYS` (the last step's ``update_ratio`` is measured
        at the next forward or at :meth:`close`)."""
        return {name: {key: self._series("weights", name, key)
                       for key in WEIGHT_KEYS}
                for name in self._weight_layers}

    def to_dict(self) -> dict:
        """Everything as plain lists and floats (for :func:`run_cached`):
        ``{"every", "steps", "activations", "weights"}``."""
        return {"every": self.every, "steps": list(self.steps),
                "activations": self.activations, "weights": self.weights}

    def table(self, index: int = -1) -> str:
        """Plain-text table of recorded step ``steps[index]``."""
        if not self.steps:
            raise ValueError("nothing recorded yet: run training steps "
                             "(forward passes in training mode) first")
        return format_table(self.to_dict(), index)


def format_table(stats: dict, index: int = -1) -> str:
    """Plain-text table of one recorded step of ``stats``, a dict from
    :meth:`ActivationStats.to_dict` (3 significant digits)."""
    step = stats["steps"][index]
    lines = [f"step {step}", _row("activation", ACTIVATION_KEYS)]
    for name, series in stats["activations"].items():
        lines.append(_row(name, [series[k][index] for k in ACTIVATION_KEYS]))
    lines += ["", _row("weight", WEIGHT_KEYS)]
    for name, series in stats["weights"].items():
        lines.append(_row(name, [series[k][index] for k in WEIGHT_KEYS]))
    return "\n".join(lines)


def _row(name: str, cells) -> str:
    text = [c if isinstance(c, str) else f"{c:.3g}" for c in cells]
    return f"{name:>12s} " + " ".join(f"{c:>12s}" for c in text)


# --------------------------------------------------------------------------
# One-shot measurements
# --------------------------------------------------------------------------
def gradient_norms_at_init(net: nn.Module, X: torch.Tensor,
                           y: torch.Tensor) -> dict[str, float]:
    """‖∂L/∂W‖ (Frobenius) of every Linear/Conv weight for one mini-batch
    X (B, ...), y (B,), cross-entropy loss, input layer first.

    Runs on a copy of ``net`` in training mode, so the net, its gradients
    and its BN statistics are left untouched. Pass a freshly initialised
    net to see how gradients shrink towards the input.
    """
    model = _training_copy(net)
    device = model_device(model)
    loss = F.cross_entropy(model(X.to(device)), y.to(device))
    loss.backward()
    return {name: module.weight.grad.norm().item()
            for name, module in select_layers(model, None,
                                              WEIGHT_TYPES).items()}


def layer_stats(net: nn.Module, X: torch.Tensor, y: torch.Tensor,
                **options) -> dict:
    """All per-layer statistics of one forward/backward pass (X (B, ...),
    y (B,)), on a copy of ``net`` in training mode: the ``to_dict()`` of an
    :class:`ActivationStats` with one recorded step (no update, so
    ``update_ratio`` is 0). ``options`` go to :class:`ActivationStats`.
    """
    model = _training_copy(net)
    device = model_device(model)
    with ActivationStats(model, every=1, **options) as stats:
        loss = F.cross_entropy(model(X.to(device)), y.to(device))
        loss.backward()
    return stats.to_dict()


def _training_copy(net: nn.Module) -> nn.Module:
    model = copy.deepcopy(net)
    model.train()
    model.zero_grad(set_to_none=True)
    return model


# --------------------------------------------------------------------------
# What one change does to the layers (chapter 01)
# --------------------------------------------------------------------------
def layer_outputs(net: nn.Module, X: torch.Tensor,
                  names) -> dict[str, torch.Tensor]:
    """``{name: output}`` of the modules called ``names`` (in that order)
    for one forward pass of X (B, ...) through a training-mode copy of
    ``net`` under ``no_grad``: BN layers use the batch statistics, and the
    net (its running statistics included) is left untouched. The outputs
    are detached tensors on the net's device, e.g. (B, width) for
    ``"norm3"`` of :func:`bnlesson.models.deep_mlp`.
    """
    model = _training_copy(net)
    outputs = {}
    modules = select_layers(model, list(names))
    handles = [module.register_forward_hook(
        partial(_keep_output, outputs, name))
        for name, module in modules.items()]
    try:
        with torch.no_grad():
            model(X.to(model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    return {name: outputs[name] for name in modules}


def _keep_output(store, name, module, args, output) -> None:
    store[name] = output.detach().clone()


def sgd_step_change(net: nn.Module, X: torch.Tensor, y: torch.Tensor,
                    lr: float, layer: str, watch: str | None = None
                    ) -> dict[str, float]:
    """How far one plain SGD step moves one layer: the "effective step
    size" of lecture 26, section 2.

    On a training-mode copy of ``net`` (left untouched): cross-entropy of
    X (B, ...) and y (B,), backward, one step ``p -= lr * p.grad`` of every
    parameter, then the same batch again. Returns
    ``{"loss": loss before the step, "weight": ||dW|| / ||W|| of the
    module called layer, "output": ||dY|| / ||Y|| of the output Y of the
    module called watch (default: layer) on the batch}``.
    """
    model = _training_copy(net)
    module = select_layers(model, [layer])[layer]
    watched = select_layers(model, [watch or layer])[watch or layer]
    if not isinstance(getattr(module, "weight", None), nn.Parameter):
        raise ValueError(f"module {layer!r} ({type(module).__name__}) has "
                         "no weight parameter")
    seen = []
    handle = watched.register_forward_hook(
        lambda m, args, output: seen.append(output.detach().clone()))
    device = model_device(model)
    X, y = X.to(device), y.to(device)
    try:
        weight = module.weight.detach().clone()
        loss = F.cross_entropy(model(X), y)
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                if param.grad is not None:
                    param -= lr * param.grad
            model(X)
    finally:
        handle.remove()
    before, after = seen
    return {"loss": loss.item(),
            "weight": ((module.weight.detach() - weight).norm()
                       / weight.norm()).item(),
            "output": ((after - before).norm() / before.norm()).item()}
