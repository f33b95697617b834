"""Normalization layers written from scratch.

What this module holds, top to bottom, in the order the chapters use it:

* :func:`batch_norm` and :class:`LectureBatchNorm` -- the lecture's code
  (d2l, lecture 26), kept recognisable, flaws of the module included, so that
  chapter 02 can demonstrate them;
* :class:`BatchNorm` -- the corrected module: it branches on
  ``self.training``, keeps its moving statistics in buffers, takes
  PyTorch's ``momentum`` and converts exactly to and from
  ``nn.BatchNorm1d`` / ``nn.BatchNorm2d``;
* :func:`batch_norm_closed_form` and :class:`BatchNormFunction` -- batch
  normalization with its backward pass written out as the formula;
* :func:`batch_renorm` and :class:`BatchRenorm` -- Batch Renormalization
  (Ioffe 2017), chapter 07: batch statistics corrected towards the running
  ones by r and d, clipped to a schedule;
* :func:`normalize` and, built on it, :func:`layer_norm`,
  :func:`instance_norm` and :func:`group_norm` with the signatures of their
  ``torch.nn.functional`` counterparts, plus :data:`NORM_AXES` and
  :func:`stats_group_ids`, which say which elements share statistics;
* the shape helpers and the one-line input checks.

Shapes: ``N`` batch size, ``D`` features, ``C`` channels, ``H, W`` height
and width. "Per channel" means per feature for 2-D input.

``momentum`` is the weight of an exponential moving average (not an
optimizer's momentum) and means what it means in PyTorch, the weight of the
NEW batch statistic (0.1), everywhere except in the lecture's own
:func:`batch_norm` and :class:`LectureBatchNorm`, where it is the weight of
the OLD moving value (0.9).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = [
    "NORM_AXES",
    "BatchNorm",
    "BatchNormFunction",
    "BatchRenorm",
    "LectureBatchNorm",
    "batch_norm",
    "batch_norm_closed_form",
    "batch_renorm",
    "group_norm",
    "instance_norm",
    "layer_norm",
    "normalize",
    "stats_group_ids",
]

# --------------------------------------------------------------------------
# The lecture's batch norm.
# --------------------------------------------------------------------------

def batch_norm(X, gamma, beta, moving_mean, moving_var, eps, momentum, *,
               training=None, unbiased=False):
    """Batch normalization as written in the lecture (d2l, lecture 26).

    ``momentum`` is the lecture's: the weight of the OLD moving value (0.9),
    i.e. PyTorch's ``1 - momentum``.

    Args:
        X: (N, D) output of a fully-connected layer, or (N, C, H, W) output
            of a convolution.
        gamma, beta: learned scale and shift, one value per channel:
            (1, D) or (D,) for 2-D input, (1, C, 1, 1) for 4-D input.
        moving_mean, moving_var: the running estimates, same shapes as gamma.
        eps: added to the variance so that a constant channel does not
            divide by zero.
        momentum: weight of the OLD moving value, 0.9 in the lecture.
        training: True normalises with the batch statistics and updates the
            moving ones; False normalises with the moving statistics. None
            (default) reproduces the lecture's switch, training iff
            ``torch.is_grad_enabled()``.
        unbiased: store the unbiased batch variance in ``moving_var`` as
            PyTorch does (keyword only; the lecture stores the biased one).

    Returns:
        ``(Y, moving_mean, moving_var)``: Y has X's shape; the moving
        statistics are the updated (training) or unchanged (inference) ones,
        detached from the autograd graph.

    How it differs from ``torch.nn.functional.batch_norm``:

    * momentum weights the old value: ``new = 0.9 * old + 0.1 * batch``.
      PyTorch's ``momentum=0.1`` weights the new value -- the same update,
      with ``momentum_torch = 1 - momentum``;
    * ``moving_var`` stores the biased batch variance (divided by n);
      PyTorch's ``running_var`` stores the unbiased one (divided by n - 1),
      unless ``unbiased=True`` here. Both normalise with the biased one;
    * with ``training=None`` the mode follows ``torch.is_grad_enabled()``,
      not ``module.training``: a model in ``eval()`` with gradients on still
      uses batch statistics. Modules should pass ``training=self.training``.

    Raises:
        ValueError: X is not 2-D or 4-D, a statistic or parameter does not
            hold one value per channel, or a training batch has only one
            value per channel.
    """
    if training is None:
        # The lecture's switch: no gradients means inference.
        training = torch.is_grad_enabled()
    _check_batch_dims(X)
    for name, t in (("gamma", gamma), ("beta", beta),
                    ("moving_mean", moving_mean), ("moving_var", moving_var)):
        _check_per_channel(name, t, X)
    if not training:
        # Inference: normalise with the statistics of the whole data set.
        X_hat = (X - moving_mean) / torch.sqrt(moving_var + eps)
    else:
        _check_batch_size(X)
        if X.dim() == 2:
            # Fully-connected: one mean and variance per feature (column).
            mean = X.mean(dim=0)  # (D,)
            var = ((X - mean) ** 2).mean(dim=0)  # (D,)
        else:
            # Convolution: per channel, over the batch and all positions.
            mean = X.mean(dim=(0, 2, 3), keepdim=True)  # (1, C, 1, 1)
            var = ((X - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        X_hat = (X - mean) / torch.sqrt(var + eps)
        if unbiased:
            # Bessel's correction: the biased variance of n values
            # underestimates the population's by the factor (n - 1) / n.
            n = X.numel() // X.shape[1]
            var = var * (n / (n - 1))
        # "momentum" is the weight of an exponential moving average (EMA),
        # not an optimizer's momentum.
        moving_mean = momentum * moving_mean + (1.0 - momentum) * mean
        moving_var = momentum * moving_var + (1.0 - momentum) * var
    Y = gamma * X_hat + beta
    return Y, moving_mean.data, moving_var.data


class LectureBatchNorm(nn.Module):
    """The lecture's ``BatchNorm`` module, kept with its flaws for chapter 02.

    Its momentum is the lecture's 0.9, the weight of the OLD moving value.

    Args:
        num_features: D (2-D input) or C (4-D input).
        num_dims: 2 for (N, D) input, 4 for (N, C, H, W) input.

    Parameters ``gamma`` (ones) and ``beta`` (zeros) have shape (1, D) or
    (1, C, 1, 1). Flaws, on purpose (the corrected :class:`BatchNorm` fixes
    them):

    * ``moving_mean`` / ``moving_var`` are plain tensor attributes: they are
      missing from ``state_dict()`` and ``.to()`` does not move them (the
      forward pass moves them to the input's device instead);
    * the train/inference switch is ``torch.is_grad_enabled()``, not
      ``self.training``: ``eval()`` with gradients on still uses batch
      statistics, and training under ``torch.no_grad()`` never updates the
      moving statistics.
    """

    def __init__(self, num_features, num_dims):
        super().__init__()
        shape = _stat_shape(num_features, num_dims)
        # gamma and beta are learned, so they are Parameters.
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        # Plain tensors, not buffers: the flaw chapter 02 demonstrates.
        self.moving_mean = torch.zeros(shape)
        self.moving_var = torch.ones(shape)

    def forward(self, X):
        """X: (N, D) or (N, C, H, W) -> Y of the same shape."""
        # Plain attributes do not follow .to(device); move them by hand.
        if self.moving_mean.device != X.device:
            self.moving_mean = self.moving_mean.to(X.device)
            self.moving_var = self.moving_var.to(X.device)
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean,
            self.moving_var, eps=1e-5, momentum=0.9)
        return Y


# --------------------------------------------------------------------------
# The corrected module.
# --------------------------------------------------------------------------

class BatchNorm(nn.Module):
    """Batch normalization done right, with the lecture's names.

    ``momentum`` is PyTorch's: the weight of the NEW batch statistic (0.1),
    ``moving = (1 - momentum) * moving + momentum * batch``.

    Args:
        num_features: D (2-D input) or C (4-D input).
        num_dims: 2 for (N, D) input, 4 for (N, C, H, W) input.
        eps: added to the variance before the square root.
        momentum: weight of the NEW batch statistic, as in ``nn.BatchNorm*``
            (the lecture's 0.9 on the old value is 0.1 here).
        unbiased: if True (default), ``moving_var`` stores the unbiased
            (Bessel-corrected, divided by n - 1) batch variance, exactly like
            PyTorch's ``running_var``; if False, the biased one, like the
            lecture. Normalisation always uses the biased batch variance.

    Compared with :class:`LectureBatchNorm`: the mode is ``self.training``
    (set by ``train()`` / ``eval()``), and ``moving_mean`` / ``moving_var``
    are buffers, so ``state_dict()`` saves them and ``.to()`` moves and casts
    them. Parameters ``gamma``, ``beta`` and the buffers have shape (1, D) or
    (1, C, 1, 1), so ``net[1].gamma`` works as in the lecture.

    :meth:`from_torch` and :meth:`to_torch` convert exactly to and from
    ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` (requires ``unbiased=True``):
    trained on the same batches, both give the same outputs and statistics
    up to float rounding.
    """

    def __init__(self, num_features, num_dims, eps=1e-5, momentum=0.1, *,
                 unbiased=True):
        super().__init__()
        shape = _stat_shape(num_features, num_dims)
        self.num_features = num_features
        self.num_dims = num_dims
        self.eps = eps
        self.momentum = momentum
        self.unbiased = unbiased
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        # Buffers: saved in state_dict(), moved by .to(), but not learned.
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X):
        """X: (N, D) or (N, C, H, W), matching num_dims -> Y, same shape."""
        if X.dim() != self.num_dims:
            raise ValueError(f"expected {self.num_dims}D input "
                             f"(got {X.dim()}D input)")
        # batch_norm takes the lecture's momentum, the weight of the old value.
        Y, moving_mean, moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean, self.moving_var,
            self.eps, 1.0 - self.momentum, training=self.training,
            unbiased=self.unbiased)
        if self.training:
            # In place, so the buffers stay the same tensors (and dtype).
            self.moving_mean.copy_(moving_mean)
            self.moving_var.copy_(moving_var)
        return Y

    def extra_repr(self):
        return (f"{self.num_features}, num_dims={self.num_dims}, "
                f"eps={self.eps}, momentum={self.momentum}, "
                f"unbiased={self.unbiased}")

    # Conversion to and from nn.BatchNorm1d / nn.BatchNorm2d.

    @classmethod
    def from_torch(cls, bn):
        """A :class:`BatchNorm` equal to ``bn`` (``nn.BatchNorm1d`` / ``2d``).

        Copies weight -> gamma, bias -> beta, running_mean -> moving_mean,
        running_var -> moving_var (both unbiased), momentum (the same
        convention), the mode, device and dtype. A ``bn`` without affine
        parameters gets gamma = 1, beta = 0. The result accepts 2-D input
        only for ``BatchNorm1d`` (not its (N, C, L) form).
        """
        if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise TypeError(f"expected nn.BatchNorm1d or nn.BatchNorm2d "
                            f"(got {type(bn).__name__})")
        if bn.momentum is None or not bn.track_running_stats:
            raise ValueError("expected running statistics and a momentum "
                             "(got None)")
        num_dims = 2 if isinstance(bn, nn.BatchNorm1d) else 4
        module = cls(bn.num_features, num_dims, eps=bn.eps,
                     momentum=bn.momentum)
        module.to(device=bn.running_mean.device, dtype=bn.running_mean.dtype)
        with torch.no_grad():
            if bn.affine:
                module.gamma.copy_(bn.weight.view_as(module.gamma))
                module.beta.copy_(bn.bias.view_as(module.beta))
            module.moving_mean.copy_(bn.running_mean.view_as(module.gamma))
            module.moving_var.copy_(bn.running_var.view_as(module.gamma))
        return module.train(bn.training)

    def to_torch(self):
        """An ``nn.BatchNorm1d`` (num_dims=2) or ``nn.BatchNorm2d`` equal to
        this module, momentum included.

        Its ``num_batches_tracked`` starts at 0 (PyTorch only reads it when
        momentum is None).
        """
        if not self.unbiased:  # n / (n - 1) differs from batch to batch
            raise ValueError("to_torch needs unbiased=True, as PyTorch's "
                             "running_var")
        cls = nn.BatchNorm1d if self.num_dims == 2 else nn.BatchNorm2d
        bn = cls(self.num_features, eps=self.eps, momentum=self.momentum,
                 device=self.gamma.device, dtype=self.gamma.dtype)
        with torch.no_grad():
            bn.weight.copy_(self.gamma.reshape(-1))
            bn.bias.copy_(self.beta.reshape(-1))
            bn.running_mean.copy_(self.moving_mean.reshape(-1))
            bn.running_var.copy_(self.moving_var.reshape(-1))
        return bn.train(self.training)


# --------------------------------------------------------------------------
# Batch norm with a closed-form backward pass.
# --------------------------------------------------------------------------

def batch_norm_closed_form(X, gamma, beta, eps=1e-5):
    """Training-mode batch norm whose backward pass is written out by hand.

    Args:
        X: (N, D) or (N, C, H, W).
        gamma, beta: (C,) scale and shift (C = D for 2-D input).
        eps: added to the biased batch variance.

    Returns:
        Y with X's shape; equals ``F.batch_norm(X, None, None, gamma, beta,
        training=True, eps=eps)``, gradients included (see
        :class:`BatchNormFunction`). No running statistics are kept.
    """
    _check_batch_dims(X)
    _check_vector("gamma", gamma, X.shape[1])
    _check_vector("beta", beta, X.shape[1])
    _check_batch_size(X)
    return BatchNormFunction.apply(X, gamma, beta, eps)


class BatchNormFunction(torch.autograd.Function):
    """Batch norm in training mode, with the closed-form backward pass.

    ``BatchNormFunction.apply(X, gamma, beta, eps)``: X (N, C) or
    (N, C, H, W), gamma and beta (C,); returns Y of X's shape. Per channel,
    with m values, x_hat = (x - mean) / std, std = sqrt(var + eps) and dY
    the incoming gradient (chapter 02, section 5)::

        dbeta  = sum(dY)
        dgamma = sum(dY * x_hat)
        dX     = gamma / std * (dY - dbeta / m - x_hat * dgamma / m)

    The last two terms are there because the mean and the variance depend
    on every x.
    """

    @staticmethod
    def forward(ctx, X, gamma, beta, eps):
        dims = (0, *range(2, X.dim()))  # every axis but the channels
        mean = X.mean(dims, keepdim=True)  # (1, C) or (1, C, 1, 1)
        var = ((X - mean) ** 2).mean(dims, keepdim=True)  # biased
        std = torch.sqrt(var + eps)
        X_hat = (X - mean) / std
        ctx.save_for_backward(X_hat, gamma, std)
        return gamma.view_as(mean) * X_hat + beta.view_as(mean)

    @staticmethod
    @once_differentiable  # no second derivative through this backward
    def backward(ctx, dY):
        X_hat, gamma, std = ctx.saved_tensors
        dims = (0, *range(2, dY.dim()))
        m = dY.numel() // dY.shape[1]  # values per channel
        dbeta = dY.sum(dims, keepdim=True)  # (1, C) or (1, C, 1, 1)
        dgamma = (dY * X_hat).sum(dims, keepdim=True)
        dX = gamma.view_as(std) / std * (dY - dbeta / m
                                         - X_hat * (dgamma / m))
        return dX, dgamma.view(-1), dbeta.view(-1), None


# --------------------------------------------------------------------------
# Batch Renormalization (Ioffe 2017).
# --------------------------------------------------------------------------

def batch_renorm(X, running_mean, running_var, weight, bias, training,
                 momentum=0.1, eps=1e-5, r_max=1.0, d_max=0.0):
    """Batch Renormalization; see :class:`BatchRenorm`.

    X (N, C) or (N, C, H, W); running_mean, running_var, weight, bias (C,).
    In training the running statistics are updated in place (PyTorch's
    convention: ``momentum`` weights the new value, unbiased variance).
    """
    _check_batch_dims(X)
    for name, t in (("running_mean", running_mean),
                    ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        _check_vector(name, t, X.shape[1])
    shape = _channel_shape(X.shape[1], X.dim())  # (1, C) or (1, C, 1, 1)
    mu, sigma = running_mean.view(shape), torch.sqrt(running_var + eps)
    sigma = sigma.view(shape)
    if not training:
        X_hat = (X - mu) / sigma  # the same as batch norm's eval mode
    else:
        _check_batch_size(X)
        dims = (0, *range(2, X.dim()))
        # biased variance and mean, (1, C) or (1, C, 1, 1)
        var, mean = torch.var_mean(X, dims, correction=0, keepdim=True)
        std = torch.sqrt(var + eps)
        # r and d are constants for backprop (stop_gradient in the paper).
        r = (std / sigma).clamp(1 / r_max, r_max).detach()
        d = ((mean - mu) / sigma).clamp(-d_max, d_max).detach()
        X_hat = (X - mean) / std * r + d
        with torch.no_grad():
            n = X.numel() // X.shape[1]  # values per channel
            running_mean.lerp_(mean.view(-1), momentum)
            running_var.lerp_(var.view(-1) * (n / (n - 1)), momentum)
    return weight.view(shape) * X_hat + bias.view(shape)


class BatchRenorm(nn.Module):
    """Batch Renormalization (Ioffe 2017), with ``nn.BatchNorm2d``'s names.

    In training, with the batch's mean and std mu_B, sigma_B and the
    running ones mu, sigma = sqrt(running_var + eps)::

        r = clip(sigma_B / sigma, 1 / r_max, r_max)      # no gradient
        d = clip((mu_B - mu) / sigma, -d_max, d_max)      # no gradient
        y = weight * ((x - mu_B) / sigma_B * r + d) + bias

    Unclipped, ``(x - mu_B) / sigma_B * r + d = (x - mu) / sigma``: the
    training output is the inference output, whatever the batch. With
    ``r_max=1, d_max=0`` it is batch norm, exactly. In eval mode it is batch
    norm's eval mode.

    Args:
        num_features: C (input (N, C) or (N, C, H, W)).
        eps, momentum: as ``nn.BatchNorm2d`` (momentum weights the NEW
            value; ``running_var`` holds the unbiased variance).
        r_max, d_max: the final clipping limits (the paper: 3 and 5).
        warmup, ramp: the schedule, in training steps: plain BN
            (r_max = 1, d_max = 0) for ``warmup`` steps, then limits that
            grow linearly to the final ones over ``ramp`` steps.

    The paper keeps running averages of sigma; this module keeps PyTorch's
    running variance, so its state loads into ``nn.BatchNorm*`` as is.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, r_max=3.0,
                 d_max=5.0, warmup=0, ramp=0):
        super().__init__()
        if r_max < 1 or d_max < 0:
            raise ValueError(f"expected r_max >= 1 and d_max >= 0 "
                             f"(got {r_max} and {d_max})")
        self.num_features = num_features
        self.eps, self.momentum = eps, momentum
        self.r_max, self.d_max = r_max, d_max
        self.warmup, self.ramp = warmup, ramp
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked",
                             torch.tensor(0, dtype=torch.long))

    def limits(self) -> tuple[float, float]:
        """(r_max, d_max) at the current step of the schedule."""
        step = int(self.num_batches_tracked)
        if step < self.warmup:
            return 1.0, 0.0
        t = min(1.0, (step - self.warmup) / self.ramp) if self.ramp else 1.0
        return 1.0 + t * (self.r_max - 1.0), t * self.d_max

    def forward(self, X):
        """X: (N, C) or (N, C, H, W) -> Y, same shape."""
        r_max, d_max = self.limits()
        if self.training:
            self.num_batches_tracked += 1
        return batch_renorm(X, self.running_mean, self.running_var,
                            self.weight, self.bias, self.training,
                            self.momentum, self.eps, r_max, d_max)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, "
                f"momentum={self.momentum}, r_max={self.r_max}, "
                f"d_max={self.d_max}, warmup={self.warmup}, "
                f"ramp={self.ramp}")


# --------------------------------------------------------------------------
# The normalization family: one function, different axes.
# --------------------------------------------------------------------------

#: Axes of a 4-D input (N, C, H, W) over which each method computes one mean
#: and one variance. Group norm first views the input as
#: (N, G, C // G, H, W); its axes refer to that 5-D view.
NORM_AXES = {
    "batch": (0, 2, 3),
    "layer": (1, 2, 3),
    "instance": (2, 3),
    "group": (2, 3, 4),
}


def normalize(X, dims, eps=1e-5):
    """(X - mean) / sqrt(var + eps), statistics over the axes ``dims``.

    Args:
        X: tensor of any shape, floating point.
        dims: int or tuple of axes to reduce; each position along the other
            axes gets its own mean and (biased) variance.
        eps: added to the variance.

    Returns:
        A tensor of X's shape.
    """
    var, mean = torch.var_mean(X, dim=dims, correction=0, keepdim=True)
    return (X - mean) / torch.sqrt(var + eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer norm, like ``F.layer_norm``: per sample over the last axes.

    Args:
        input: (N, *, *normalized_shape), e.g. (N, C, H, W) with
            normalized_shape = (C, H, W).
        normalized_shape: int or tuple, the trailing shape to normalise over.
        weight, bias: optional, of shape normalized_shape (elementwise).
    """
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if tuple(input.shape[-k:]) != normalized_shape:
        raise ValueError(f"expected input with shape [*, "
                         f"{', '.join(map(str, normalized_shape))}] (got "
                         f"input of size {list(input.shape)})")
    Y = normalize(input, tuple(range(input.dim() - k, input.dim())), eps)
    if weight is not None:
        Y = Y * weight
    if bias is not None:
        Y = Y + bias
    return Y


def instance_norm(input, running_mean=None, running_var=None, weight=None,
                  bias=None, use_input_stats=True, momentum=0.1, eps=1e-5):
    """Instance norm, like ``F.instance_norm``: per sample and channel.

    ``momentum`` is PyTorch's: the weight of the NEW statistic (0.1).

    Args:
        input: (N, C, *spatial), e.g. (N, C, H, W); statistics over spatial.
        running_mean, running_var: optional (C,) buffers. With
            use_input_stats they are updated in place,
            ``new = (1 - momentum) * old + momentum * batch``, where "batch"
            is the average over the N samples of their mean and unbiased
            variance.
        weight, bias: optional (C,) affine parameters.
        use_input_stats: normalise with each instance's statistics (True)
            or with running_mean / running_var (False).
    """
    C = input.shape[1]
    for name, t in (("running_mean", running_mean),
                    ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_vector(name, t, C)
    dims = tuple(range(2, input.dim()))
    shape = _channel_shape(C, input.dim())
    if use_input_stats:
        # One value per sample and channel would normalise to 0.
        if input.numel() == input.shape[0] * C:
            raise ValueError(f"Expected more than 1 spatial element when "
                             f"training, got input size {input.size()}")
        Y = normalize(input, dims, eps)
        _update_instance_stats(input, running_mean, running_var, momentum)
    else:
        Y = ((input - running_mean.view(shape))
             / torch.sqrt(running_var.view(shape) + eps))
    return _affine_per_channel(Y, weight, bias)


@torch.no_grad()
def _update_instance_stats(input, running_mean, running_var, momentum):
    """PyTorch's running-statistics update for instance norm, in place."""
    if running_mean is None and running_var is None:
        return
    var, mean = torch.var_mean(input, dim=tuple(range(2, input.dim())),
                               correction=1)  # (N, C), unbiased like PyTorch
    if running_mean is not None:
        running_mean.mul_(1.0 - momentum).add_(mean.mean(0), alpha=momentum)
    if running_var is not None:
        running_var.mul_(1.0 - momentum).add_(var.mean(0), alpha=momentum)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group norm, like ``F.group_norm``: per sample over groups of channels.

    Args:
        input: (N, C, *spatial), e.g. (N, C, H, W).
        num_groups: G, which must divide C; each sample's C channels are
            split into G consecutive groups of C // G channels, and each
            group gets one mean and variance over its channels and
            positions. G = 1 is layer norm over (C, H, W) (with per-channel
            affine), G = C is instance norm.
        weight, bias: optional (C,) per-channel affine parameters.
    """
    if input.dim() < 2:
        raise ValueError(f"expected 2D or more input "
                         f"(got {input.dim()}D input)")
    N, C = input.shape[:2]
    if C % num_groups:
        raise ValueError(f"Expected number of channels in input to be "
                         f"divisible by num_groups (got C={C} and "
                         f"num_groups={num_groups})")
    _check_vector("weight", weight, C)
    _check_vector("bias", bias, C)
    grouped = input.reshape(N, num_groups, -1)  # (N, G, C // G * H * W)
    Y = normalize(grouped, 2, eps).reshape(input.shape)
    return _affine_per_channel(Y, weight, bias)


def _affine_per_channel(Y, weight, bias):
    """Y: (N, C, *) scaled and shifted by (C,) weight and bias."""
    shape = _channel_shape(Y.shape[1], Y.dim())
    if weight is not None:
        Y = Y * weight.view(shape)
    if bias is not None:
        Y = Y + bias.view(shape)
    return Y


def stats_group_ids(method, shape, num_groups=None):
    """Which elements of a 4-D input share one mean and variance.

    Args:
        method: "batch", "layer", "instance" or "group" (see NORM_AXES).
        shape: (N, C, H, W).
        num_groups: G, required for "group" (must divide C).

    Returns:
        A LongTensor of ``shape``; elements with equal ids are normalised
        with the same statistics (chapter 04's cube picture shades them).
    """
    N, C, H, W = shape
    n = torch.arange(N).view(N, 1, 1, 1)
    c = torch.arange(C).view(1, C, 1, 1)
    if method == "batch":
        ids = c
    elif method == "layer":
        ids = n
    elif method == "instance":
        ids = n * C + c
    elif method == "group":
        if num_groups is None or C % num_groups:
            raise ValueError(f"expected num_groups dividing C={C} "
                             f"(got {num_groups})")
        ids = n * num_groups + c // (C // num_groups)
    else:
        raise ValueError(f"method must be one of {sorted(NORM_AXES)} "
                         f"(got {method!r})")
    return ids.expand(N, C, H, W).clone()


# --------------------------------------------------------------------------
# Shapes and input checks (one line each, in PyTorch's words).
# --------------------------------------------------------------------------

def _channel_shape(C: int, ndim: int) -> tuple[int, ...]:
    """(1, C) for 2-D input, (1, C, 1, 1) for 4-D: broadcasts per channel."""
    return (1, C) + (1,) * (ndim - 2)


def _check_batch_dims(X):
    if X.dim() not in (2, 4):
        raise ValueError(f"expected 2D or 4D input (got {X.dim()}D input)")


def _check_batch_size(X):
    # One value per channel: its batch mean is itself, so Y would be beta.
    if X.numel() == X.shape[1]:
        raise ValueError(f"Expected more than 1 value per channel when "
                         f"training, got input size {X.size()}")


def _check_per_channel(name, t, X):
    # A (C,) tensor against 4-D input would broadcast along W, not C.
    shape = _channel_shape(X.shape[1], X.dim())
    if tuple(t.shape) not in (shape, shape[1:]):
        raise ValueError(f"expected {name} of shape {shape} "
                         f"(got {tuple(t.shape)})")


def _check_vector(name, t, C):
    if t is not None and tuple(t.shape) != (C,):
        raise ValueError(f"expected {name} of shape ({C},) "
                         f"(got {tuple(t.shape)})")


def _stat_shape(num_features: int, num_dims: int) -> tuple[int, ...]:
    if num_dims not in (2, 4):
        raise ValueError(f"num_dims must be 2 or 4 (got {num_dims})")
    return _channel_shape(num_features, num_dims)
