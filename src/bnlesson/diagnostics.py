"""Per-layer diagnostics while a net trains (Karpathy's makemore part 3,
fast.ai's ``ActivationStats``).

:class:`ActivationStats` hooks into a net and, on every ``every``-th
training step (a forward pass in training mode, counted from 0), records

* for each activation module (every ``nn.Sigmoid``, ``nn.Tanh``,
  ``nn.ReLU``, or the modules named): the percentiles ``p15`` / ``p50`` /
  ``p85`` of its output (of a fixed random sample of ``SAMPLE_SIZE`` values,
  drawn from a private generator so the run itself is unchanged) and its
  ``saturation`` (:func:`saturated_share`);
* for each weight layer (every ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d``):
  ``grad_norm``, ‖∂L/∂W‖, and ``update_ratio``, ‖ΔW‖ / ‖W‖ over the
  optimizer step that follows (``lr * ‖grad‖ / ‖W‖`` for plain SGD; about
  1e-3 is Karpathy's rule of thumb).

Usage::

    with ActivationStats(net, every=10) as stats:
        train(net, train_iter, test_iter, num_epochs, lr, seed=0)
    stats.to_dict()  # {"steps": [0, 10, ...], "activations": {"2": {"p50":
                     #  [one float per recorded step], ...}}, "weights": ...}

Layers are keyed by their names in ``net.named_modules()``. Values not
measured (no backward pass, no saturation for that module) are ``nan``. A
cached :func:`bnlesson.train.train` does not train, so it records nothing:
cache the statistics with the run (``bnlesson.cache.run_cached``).
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
SAMPLE_SIZE = 4096  # values the percentiles are computed from
ACTIVATION_TYPES = (nn.Sigmoid, nn.Tanh, nn.ReLU)
WEIGHT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)
ACTIVATION_KEYS = ("p15", "p50", "p85", "saturation")
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
    missing = [name for name in names if name not in modules]
    if missing:
        raise ValueError(f"no module named {missing} in the net")
    return {name: modules[name] for name in names}


class ActivationStats:
    """Record per-layer statistics every ``every`` training steps (see the
    module docstring); a context manager that removes its hooks on exit.

    ``activations``: names of the modules whose outputs to watch (default:
    every activation module).
    """

    def __init__(self, net: nn.Module, every: int = 10, *, activations=None):
        self.every = every
        self.steps: list[int] = []  # the recorded steps
        self._step = -1  # the current training step
        self._recording = False
        self._weight_layers = select_layers(net, None, WEIGHT_TYPES)
        watched = select_layers(net, activations, ACTIVATION_TYPES)
        # {layer: {key: [one value per recorded step]}}
        self.activations = {name: {key: [] for key in ACTIVATION_KEYS}
                            for name in watched}
        self.weights = {name: {key: [] for key in WEIGHT_KEYS}
                        for name in self._weight_layers}
        self._before = {}  # weights before the recorded step's update
        self._generator = torch.Generator().manual_seed(0)
        self._samples = {}  # (numel, device) -> the sampled positions
        self._handles = [net.register_forward_pre_hook(self._on_forward)]
        self._handles += [
            module.register_forward_hook(partial(self._on_activation, name))
            for name, module in watched.items()]
        self._handles += [
            module.weight.register_post_accumulate_grad_hook(
                partial(self._on_weight_grad, name))
            for name, module in self._weight_layers.items()]

    def __enter__(self) -> ActivationStats:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Measure the pending update ratio and remove the hooks."""
        self._finish_update_ratios()
        for handle in self._handles:
            handle.remove()

    def _on_forward(self, net, args) -> None:
        # The weights now hold the last recorded step's update, if any.
        self._finish_update_ratios()
        if net.training:
            self._step += 1
        self._recording = net.training and self._step % self.every == 0
        if self._recording:
            self.steps.append(self._step)
            for series in (*self.activations.values(),
                           *self.weights.values()):
                for values in series.values():
                    values.append(math.nan)  # until measured
            self._before = {name: m.weight.detach().clone()
                            for name, m in self._weight_layers.items()}

    def _on_activation(self, name, module, args, output) -> None:
        if not self._recording:
            return
        Y = output.detach()
        flat = Y.reshape(-1).float()
        if flat.numel() > SAMPLE_SIZE:
            flat = flat[self._sample(flat.numel(), flat.device)]
        q = torch.quantile(flat, torch.tensor(QUANTILES, device=Y.device))
        share = saturated_share(module, Y)
        series = self.activations[name]
        series["p15"][-1], series["p50"][-1], series["p85"][-1] = q.tolist()
        series["saturation"][-1] = math.nan if share is None else share.item()

    def _sample(self, n: int, device) -> torch.Tensor:
        """The same random positions at every step, per tensor size."""
        key = (n, str(device))
        if key not in self._samples:
            self._samples[key] = torch.randint(
                n, (SAMPLE_SIZE,), generator=self._generator).to(device)
        return self._samples[key]

    def _on_weight_grad(self, name, weight) -> None:
        if self._recording:
            self.weights[name]["grad_norm"][-1] = \
                weight.grad.detach().float().norm().item()

    def _finish_update_ratios(self) -> None:
        for name, before in self._before.items():
            after = self._weight_layers[name].weight.detach()
            ratio = (after - before).float().norm() / before.float().norm()
            self.weights[name]["update_ratio"][-1] = ratio.item()
        self._before = {}

    def to_dict(self) -> dict:
        """Plain lists and floats (for ``bnlesson.cache.run_cached``):
        ``{"steps", "activations", "weights"}``."""
        return copy.deepcopy({"steps": self.steps,
                              "activations": self.activations,
                              "weights": self.weights})


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


def layer_stats(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> dict:
    """All per-layer statistics of one forward/backward pass (X (B, ...),
    y (B,)), on a copy of ``net`` in training mode: the ``to_dict()`` of an
    :class:`ActivationStats` with one recorded step (no update, so
    ``update_ratio`` is 0)."""
    model = _training_copy(net)
    device = model_device(model)
    with ActivationStats(model, every=1) as stats:
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
