"""Running statistics: the incremental mean, the EMA, the Kalman gain, and
exact ("precise") population statistics for batch-norm layers.

Every estimator here is the one update of the lecture's section 7,

    x_k = x_{k-1} + K_k * (z_k - x_{k-1}),

with a different gain K_k: 1/k (:func:`cumulative_mean`), a constant
momentum (:func:`ema`), or the Kalman gain e_est / (e_est + e_mea)
(:func:`kalman_1d`). :func:`gain_filter` runs it for any gains.

``momentum`` always has PyTorch's meaning here: the weight of the NEW value
(0.1), which is the gain K itself; the lecture's ``momentum=0.9`` (the weight
of the old value) is 0.1 here.
"""
from __future__ import annotations

import contextlib
import copy
import math
from typing import NamedTuple

import torch
from torch import nn

from bnlesson.norms import BatchNorm
from bnlesson.utils import model_device

__all__ = [
    "PopulationStats",
    "batch_stats_accuracy",
    "batch_stats_forward",
    "cumulative_mean",
    "ema",
    "gain_filter",
    "kalman_1d",
    "population_stats",
    "precise_bn",
    "reestimate_running_stats",
    "running_stats_error",
    "steady_state_gain",
]


# --------------------------------------------------------------------------
# Recursive estimators.
# --------------------------------------------------------------------------

def _as_sequence(zs) -> torch.Tensor:
    """zs as a floating tensor (K, ...): K measurements along dim 0."""
    if (isinstance(zs, (list, tuple)) and zs
            and isinstance(zs[0], torch.Tensor)):
        zs = torch.stack(list(zs))
    zs = torch.as_tensor(zs)
    if zs.dim() == 0 or len(zs) == 0:
        raise ValueError(
            f"zs must be a non-empty sequence of measurements along dim 0, "
            f"got shape {tuple(zs.shape)}")
    if not zs.is_floating_point():
        zs = zs.to(torch.get_default_dtype())
    return zs


def gain_filter(zs, gains, init=None) -> torch.Tensor:
    """Run x_k = x_{k-1} + K_k (z_k - x_{k-1}) over a sequence.

    Args:
        zs: K measurements z_1..z_K, shape (K,) or (K, *shape) (a tensor, a
            list of numbers or a list of equal-shaped tensors).
        gains: K gains K_1..K_K, shape (K,).
        init: the prior guess x_0 (a number or a tensor of shape ``shape``).
            None starts from the first measurement, x_0 = z_1, so that
            x_1 = z_1 whatever K_1 is.

    Returns:
        The estimates x_1..x_K, shape (K, *shape), zs's dtype.
    """
    zs = _as_sequence(zs)
    gains = torch.as_tensor(gains, dtype=zs.dtype)
    if gains.shape != zs.shape[:1]:
        raise ValueError(
            f"need one gain per measurement: {len(zs)} measurements but "
            f"gains of shape {tuple(gains.shape)}")
    if init is None:
        x = zs[0]
    else:
        x = torch.as_tensor(init, dtype=zs.dtype).expand_as(zs[0])
    estimates = torch.empty_like(zs)
    for k, (z, gain) in enumerate(zip(zs, gains, strict=True)):
        x = x + gain * (z - x)
        estimates[k] = x
    return estimates


def cumulative_mean(zs) -> torch.Tensor:
    """The running mean by the recursion x_k = x_{k-1} + (1/k)(z_k - x_{k-1}).

    Args:
        zs: measurements along dim 0, shape (K,) or (K, *shape).

    Returns:
        (K, *shape): x_k equals ``zs[:k].mean(0)`` up to rounding. This is
        PyTorch's BatchNorm update with ``momentum=None``.
    """
    zs = _as_sequence(zs)
    gains = 1.0 / torch.arange(1, len(zs) + 1, dtype=zs.dtype)
    return gain_filter(zs, gains)


def ema(zs, momentum, init=None) -> torch.Tensor:
    """Exponential moving average, x_k = (1 - m) x_{k-1} + m z_k.

    ``momentum`` (m) is PyTorch's: the weight of the NEW value (0.1 in
    ``nn.BatchNorm*``), i.e. the gain form with the constant gain K = m. The
    lecture's ``momentum=0.9`` weights the old value: it is m = 0.1 here.
    PyTorch's ``momentum=None`` is :func:`cumulative_mean` instead.
    "Momentum" is the EMA weight here, not an optimizer's momentum.

    Args:
        zs: measurements along dim 0, shape (K,) or (K, *shape).
        momentum: m in [0, 1]; smaller means smoother and slower to follow.
        init: the prior x_0. None (default) starts from the first
            measurement (x_1 = z_1), which avoids the start-up bias towards
            an arbitrary value; pass ``init=0.0`` (mean) or ``init=1.0``
            (variance) to mimic a BatchNorm buffer's initial value.

    Returns:
        The estimates x_1..x_K, shape (K, *shape).
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(
            f"momentum is the weight of the new value and must lie in [0, 1], "
            f"got {momentum} (the lecture's momentum=0.9 is 0.1 here)")
    zs = _as_sequence(zs)
    gains = torch.full((len(zs),), momentum, dtype=zs.dtype)
    return gain_filter(zs, gains, init)


def kalman_1d(zs, e_est, e_mea, q=0.0, x0=None):
    """The scalar Kalman filter of the lecture, with optional process noise.

    For each measurement z_k::

        K_k   = e_est / (e_est + e_mea)         # the Kalman gain
        x_k   = x_{k-1} + K_k (z_k - x_{k-1})
        e_est = (1 - K_k) e_est + q             # = K_k e_mea + q

    e_est and e_mea are the variances (squared errors) of the current
    estimate and of one measurement; the lecture calls them the estimate
    and measurement errors. A poor estimate (e_est >> e_mea) gives K -> 1,
    trusting the measurement; noisy measurements (e_est << e_mea) give
    K -> 0, keeping the estimate. With q = 0 and e_est = inf the gains are
    exactly 1, 1/2, 1/3, ...: the running mean. With process noise q > 0
    the gain settles at :func:`steady_state_gain`, i.e. an EMA.

    Args:
        zs: measurements along dim 0, shape (K,) or (K, *shape).
        e_est: variance of the prior x0, >= 0; ``math.inf`` means "no idea".
        e_mea: variance of each measurement, finite and >= 0.
        q: process noise added to e_est after each update (how much the
            true value may drift per step), >= 0.
        x0: the prior estimate; None (default) uses the first measurement.

    Returns:
        ``(estimates, gains)``: shapes (K, *shape) and (K,), zs's dtype.
    """
    if not (e_est >= 0 and 0 <= e_mea < math.inf and q >= 0):
        raise ValueError(
            f"need e_est >= 0, 0 <= e_mea < inf and q >= 0, got "
            f"e_est={e_est}, e_mea={e_mea}, q={q}")
    if e_est == 0 and e_mea == 0:
        raise ValueError(
            "e_est and e_mea are both 0, so the gain 0 / 0 is undefined; "
            "give at least one a positive variance")
    zs = _as_sequence(zs)
    gains = []
    for _ in range(len(zs)):
        gain = 1.0 if math.isinf(e_est) else e_est / (e_est + e_mea)
        gains.append(gain)
        # (1 - K) e_est written as K e_mea, which also holds for e_est = inf.
        e_est = gain * e_mea + q
    gains = torch.tensor(gains, dtype=zs.dtype)
    return gain_filter(zs, gains, x0), gains


def steady_state_gain(e_mea, q) -> float:
    """The gain K_k of :func:`kalman_1d` converges to, for q > 0.

    At the fixed point e = K e_mea + q with K = e / (e + e_mea), so
    e^2 - q e - q e_mea = 0, e = (q + sqrt(q^2 + 4 q e_mea)) / 2 and
    K = e / (e + e_mea). The filter then is an EMA with momentum K.
    With q = 0 the gain keeps falling like 1/k and this returns 0.
    """
    if not (e_mea > 0 and q >= 0):
        raise ValueError(
            f"need e_mea > 0 and q >= 0, got e_mea={e_mea}, q={q}")
    e = (q + math.sqrt(q * q + 4.0 * q * e_mea)) / 2.0
    return e / (e + e_mea)


# --------------------------------------------------------------------------
# Exact population statistics of batch-norm layers.
# --------------------------------------------------------------------------

#: Layers whose running statistics population_stats / precise_bn handle.
_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, BatchNorm)


class PopulationStats(NamedTuple):
    """Exact statistics of one layer's input over a data set.

    mean and var have shape (C,), float64; var is the population (biased)
    variance; count is the number of values per channel (N * H * W summed
    over batches).
    """

    mean: torch.Tensor
    var: torch.Tensor
    count: int

    @property
    def unbiased_var(self) -> torch.Tensor:
        """var * count / (count - 1), what PyTorch's running_var estimates."""
        return self.var * (self.count / (self.count - 1))


class _Moments:
    """Mean and variance per channel, merged exactly batch by batch.

    The mean of per-batch variances is NOT the population variance: it
    misses the spread of the batch means. Chan et al.'s pairwise update
    adds it (and handles unequal batch sizes):
    M2 = M2_a + M2_b + delta^2 n_a n_b / n, with M2 = count * variance.
    """

    def __init__(self):
        self.count = 0
        self.mean = self.m2 = None

    @torch.no_grad()
    def update(self, X):
        """X: (N, C, *) input of a batch-norm layer."""
        X = X.detach().double()  # float64: exact enough to call exact
        n = X.numel() // X.shape[1]
        var, mean = torch.var_mean(X, dim=(0,) + tuple(range(2, X.dim())),
                                   correction=0)
        if self.count == 0:
            self.count, self.mean, self.m2 = n, mean, var * n
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + var * n + delta ** 2 * (self.count * n / total)
        self.count = total

    def result(self) -> PopulationStats:
        return PopulationStats(self.mean, self.m2 / self.count, self.count)


def _bn_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Batch-norm layers of ``model`` that keep running statistics."""
    layers = {name: module for name, module in model.named_modules()
              if isinstance(module, _BN_TYPES)
              and getattr(module, "track_running_stats", True)}
    if not layers:
        raise ValueError(
            "model has no batch-norm layer with running statistics "
            "(nn.BatchNorm1d/2d/3d or bnlesson.norms.BatchNorm); "
            "LectureBatchNorm keeps its statistics as plain attributes and "
            "is not supported")
    return layers


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    """Put every submodule in eval mode; restore each one's flag after."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


def _run(model, data_iter, num_batches):
    """Forward the inputs of up to num_batches batches through the model."""
    device = model_device(model)
    num_run = 0
    for batch in data_iter:
        if num_batches is not None and num_run >= num_batches:
            break
        X = batch[0] if isinstance(batch, (list, tuple)) else batch
        model(X.to(device))
        num_run += 1
    if num_run == 0:
        raise ValueError("data_iter gave no batches")


def _collect(model, layers, data_iter, num_batches):
    """One eval-mode pass; exact input statistics of the given layers, and
    the order in which the layers were called."""
    moments = {name: _Moments() for name in layers}
    order = []

    def make_hook(name):
        def hook(module, args):
            if name not in order:
                order.append(name)
            moments[name].update(args[0])
        return hook

    handles = [layer.register_forward_pre_hook(make_hook(name))
               for name, layer in layers.items()]
    try:
        with _eval_mode(model), torch.no_grad():
            _run(model, data_iter, num_batches)
    finally:
        for handle in handles:
            handle.remove()
    stats = {name: moments[name].result() for name in order}
    return stats, order


def population_stats(model, data_iter, num_batches=None):
    """Exact mean and variance of every batch-norm layer's input.

    One pass in eval mode over ``data_iter`` (batches ``X`` or ``(X, y)``;
    the first ``num_batches`` only, if given): each layer's input is what
    it receives at inference, i.e. computed with the earlier layers' current
    running statistics. The model's modes are restored afterwards.

    Args:
        model: a module containing nn.BatchNorm1d/2d/3d or
            :class:`bnlesson.norms.BatchNorm` layers.
        data_iter: iterable of batches, e.g. a DataLoader.
        num_batches: use only this many batches (None: all).

    Returns:
        dict: module name (as in ``named_modules()``) -> PopulationStats
        (mean, var, count) of that layer's input, for the layers called.
    """
    stats, _ = _collect(model, _bn_layers(model), data_iter, num_batches)
    return stats


def _set_running_stats(layer, stats: PopulationStats) -> None:
    with torch.no_grad():
        if isinstance(layer, BatchNorm):
            var = stats.unbiased_var if layer.unbiased else stats.var
            layer.moving_mean.copy_(stats.mean.view_as(layer.moving_mean))
            layer.moving_var.copy_(var.view_as(layer.moving_var))
        else:  # PyTorch stores the unbiased variance
            layer.running_mean.copy_(stats.mean)
            layer.running_var.copy_(stats.unbiased_var)


def precise_bn(model, data_iter, num_batches=None):
    """Replace every batch-norm layer's running statistics by exact ones.

    The running estimates are EMAs of batch statistics taken while the
    weights were still changing; "precise BN" recomputes the population
    mean and variance of each layer's input with the final weights. The
    input of a layer depends on the statistics of the batch-norm layers
    before it, so the layers are done one at a time in the order the model
    calls them, each pass in eval mode with the earlier layers already
    updated: afterwards every layer holds the exact statistics of the input
    it sees at inference (one pass over the data per layer, plus one batch
    to find the order). With ``num_batches`` set, ``data_iter`` must yield
    the same batches on every pass (no shuffling).

    Args:
        model: the trained model; its train/eval modes are restored.
        data_iter: a re-iterable of batches ``X`` or ``(X, y)`` (a
            DataLoader or a list, not a one-shot iterator).
        num_batches: use only this many batches per pass (None: all).

    Returns:
        The model, updated in place (running_var / moving_var get the
        unbiased variance, except for BatchNorm(unbiased=False)).
    """
    if iter(data_iter) is data_iter:
        raise TypeError(
            "precise_bn makes one pass over the data per batch-norm layer, "
            "so data_iter must be re-iterable: pass a DataLoader or a list of "
            "batches, not an iterator or generator")
    layers = _bn_layers(model)
    _, order = _collect(model, layers, data_iter, num_batches=1)
    for name in order:
        layer = layers[name]
        stats, _ = _collect(model, {name: layer}, data_iter, num_batches)
        _set_running_stats(layer, stats[name])
    return model


# --------------------------------------------------------------------------
# Running, recomputed and batch statistics side by side (chapter 05).
# --------------------------------------------------------------------------

def running_stats_error(model, stats) -> dict[str, dict[str, float]]:
    """How far each layer's stored statistics are from exact ones.

    Args:
        model: holds the batch-norm layers named in ``stats``.
        stats: module name -> :class:`PopulationStats`, e.g. from
            :func:`population_stats`.

    Returns:
        module name -> ``{"mean": ..., "std": ...}``, averages over the
        channels of ``|stored mean - mean| / std`` (the mean's error in
        units of the population standard deviation, the scale BN divides
        by) and of ``|stored std / std - 1|`` (relative error of the
        standard deviation; the unbiased population variance is the
        reference, as PyTorch stores the unbiased one).
    """
    errors = {}
    modules = dict(model.named_modules())
    for name, population in stats.items():
        layer = modules[name]
        if isinstance(layer, BatchNorm):
            mean, var = layer.moving_mean, layer.moving_var
        else:
            mean, var = layer.running_mean, layer.running_var
        std = population.unbiased_var.sqrt()  # (C,) float64
        mean = mean.detach().double().reshape(-1).to(std.device)
        var = var.detach().double().reshape(-1).to(std.device)
        errors[name] = {
            "mean": ((mean - population.mean).abs() / std).mean().item(),
            "std": (var.sqrt() / std - 1).abs().mean().item()}
    return errors


def reestimate_running_stats(model, data_iter, momentum=None,
                             num_batches=None):
    """Feed batches through ``model`` in training mode, weights frozen, so
    that its ``nn.BatchNorm*`` layers update their running statistics.

    ``momentum`` is PyTorch's: the weight of the NEW batch statistic, or
    None for the cumulative average.

    This is how the running estimates are usually re-computed after the
    weights changed (``torch.optim.swa_utils.update_bn`` does it with
    ``momentum=None``).

    Args:
        model: contains ``nn.BatchNorm1d/2d/3d`` layers; modified in place,
            its train/eval modes and the layers' momenta are restored.
        data_iter: batches ``X`` or ``(X, y)``.
        momentum: a number keeps the current running statistics as the
            starting point of the EMA; ``None`` resets them first and takes
            the cumulative average (gain 1/k) of the batches' statistics.
        num_batches: use only the first ``num_batches`` batches.

    Returns:
        The model.
    """
    layers = _bn_layers(model)
    for name, layer in layers.items():
        if not isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d,
                                  nn.BatchNorm3d)):
            raise TypeError(
                f"layer {name!r} is a {type(layer).__name__}; "
                "reestimate_running_stats handles nn.BatchNorm1d/2d/3d "
                "(PyTorch's momentum convention), convert it with "
                "BatchNorm.to_torch() first")
    if momentum is not None and not 0.0 <= momentum <= 1.0:
        raise ValueError(
            f"momentum is PyTorch's weight of the new value and must lie in "
            f"[0, 1] (or None for the cumulative average), got {momentum}")
    momenta = {layer: layer.momentum for layer in layers.values()}
    modes = {module: module.training for module in model.modules()}
    try:
        for layer in layers.values():
            layer.momentum = momentum
            if momentum is None:
                layer.reset_running_stats()
        model.train()
        with torch.no_grad():
            _run(model, data_iter, num_batches)
    finally:
        for layer, value in momenta.items():
            layer.momentum = value
        for module, training in modes.items():
            module.training = training
    return model


def batch_stats_forward(model, X) -> torch.Tensor:
    """The output of ``model`` for X (B, ...) with every batch-norm layer
    normalising by the statistics of X itself -- what a forgotten
    ``model.eval()`` does at test time. Runs on a copy (other layers in
    eval mode), so the model and its running statistics stay unchanged.
    A batch-norm layer after a linear layer needs B >= 2.
    """
    model = _batch_stats_copy(model)
    with torch.no_grad():
        return model(X.to(model_device(model)))


def batch_stats_accuracy(model, data_iter) -> float:
    """Accuracy over ``data_iter`` (batches ``(X, y)``) when every
    batch-norm layer uses the statistics of the test batch itself, as with
    a forgotten ``model.eval()``: the prediction for one image then depends
    on the other images of its batch, and on the batch size. The model is
    left unchanged (see :func:`batch_stats_forward`).
    """
    model = _batch_stats_copy(model)
    device = model_device(model)
    correct, total = 0, 0
    with torch.no_grad():
        for X, y in data_iter:
            y = y.to(device)
            correct += (model(X.to(device)).argmax(dim=1) == y).sum().item()
            total += len(y)
    if total == 0:
        raise ValueError("data_iter gave no examples")
    return correct / total


def _batch_stats_copy(model):
    """A copy of ``model`` in eval mode except its batch-norm layers."""
    model = copy.deepcopy(model).eval()
    for layer in _bn_layers(model).values():
        layer.train()
    return model
