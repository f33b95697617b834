"""The series' models: the lecture's LeNet and a deep MLP, each built with a
choice of normalization layer so chapters can swap one for another.

Index layout of :func:`lenet` (the same for every ``norm``; with
``norm="none"`` the norm slots hold ``nn.Identity`` placeholders, so
``net[1]`` is always the first norm slot and indices never shift)::

    0 Conv2d(1, 6, 5)   1 norm   2 act   3 pool    (N, 6, 24, 24) -> 12x12
    4 Conv2d(6, 16, 5)  5 norm   6 act   7 pool    (N, 16, 8, 8) -> 4x4
    8 Flatten           9 Linear(256, 120)  10 norm  11 act
    12 Linear(120, 84)  13 norm  14 act
    15 Linear(84, 10)

Which layer each ``norm`` puts in the slots (``C`` = channels or features)::

    norm          after a convolution           after a linear layer
    none          nn.Identity                   nn.Identity
    lecture       norms.LectureBatchNorm(C, 4)  norms.LectureBatchNorm(C, 2)
    scratch       norms.BatchNorm(C, 4)         norms.BatchNorm(C, 2)
    batchnorm     nn.BatchNorm2d(C)             nn.BatchNorm1d(C)
    layernorm     nn.GroupNorm(1, C)            nn.LayerNorm(C)
    instancenorm  nn.InstanceNorm2d(C, affine=True)
                                                nn.LayerNorm(C)
    groupnorm     nn.GroupNorm(G, C)            nn.GroupNorm(G, C)

* LayerNorm of a conv output normalises each sample over (C, H, W);
  ``GroupNorm(1, C)`` does exactly that with a per-channel gamma/beta like
  BN's (``nn.LayerNorm([C, H, W])`` would learn one per element).
* InstanceNorm after a linear layer would normalise a single number
  (per sample and feature there is no spatial extent: the output would be
  beta, whatever the input), so the linear slots use LayerNorm instead.
* GroupNorm uses :func:`num_groups` groups: about 4 channels per group
  (LeNet: 2, 4, 30 and 21 groups). ``nn.GroupNorm`` accepts (N, C) input,
  so it also groups the features of a linear layer.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from bnlesson.norms import BatchNorm, LectureBatchNorm

NORM_CHOICES = ("none", "lecture", "scratch", "batchnorm", "layernorm",
                "instancenorm", "groupnorm")
POOL_CHOICES = ("max", "avg")
ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
ACTIVATION_CHOICES = tuple(ACTIVATIONS)

#: Positions of the norm and activation slots in :func:`lenet` (see the
#: module docstring).
LENET_NORM = (1, 5, 10, 13)
LENET_ACT = (2, 6, 11, 14)


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices} (got {value!r})")


def num_groups(num_channels: int) -> int:
    """GroupNorm's group count: the largest divisor of ``num_channels`` not
    above ``max(2, num_channels // 4)`` (groups of about 4 channels; 1 group,
    i.e. LayerNorm, when no divisor >= 2 fits, e.g. a prime count)."""
    limit = max(2, num_channels // 4)
    return max((g for g in range(1, limit + 1) if num_channels % g == 0),
               default=1)


def make_norm(norm: str, num_features: int, num_dims: int) -> nn.Module:
    """One normalization layer of kind ``norm`` for ``num_features``
    channels (``num_dims=4``, input (N, C, H, W)) or features
    (``num_dims=2``, input (N, C)). See the table in the module docstring.
    """
    _check_choice("norm", norm, NORM_CHOICES)
    if num_dims not in (2, 4):
        raise ValueError(f"num_dims must be 2 or 4 (got {num_dims})")
    conv = num_dims == 4
    if norm == "none":
        return nn.Identity()
    if norm == "lecture":
        return LectureBatchNorm(num_features, num_dims)
    if norm == "scratch":
        return BatchNorm(num_features, num_dims)
    if norm == "batchnorm":
        layer = nn.BatchNorm2d if conv else nn.BatchNorm1d
        return layer(num_features)
    if norm == "groupnorm":
        return nn.GroupNorm(num_groups(num_features), num_features)
    if conv and norm == "layernorm":
        return nn.GroupNorm(1, num_features)
    if conv:  # instancenorm; affine=True gives it BN's gamma and beta
        return nn.InstanceNorm2d(num_features, affine=True)
    return nn.LayerNorm(num_features)  # layernorm, or instancenorm's stand-in


def _activation(activation: str) -> nn.Module:
    _check_choice("activation", activation, ACTIVATION_CHOICES)
    return ACTIVATIONS[activation]()


def lenet(norm: str = "none", pool: str = "max", activation: str = "sigmoid",
          num_classes: int = 10, linear_norm: bool = True) -> nn.Sequential:
    """The lecture's LeNet for (N, 1, 28, 28) input; output (N, num_classes).

    ``norm`` picks the layer after each conv/linear layer and before its
    activation (:data:`NORM_CHOICES`; ``"lecture"`` is the lecture's code,
    ``"scratch"`` the corrected module). ``pool="max"`` is the lecture's,
    ``"avg"`` the d2l book's. No padding: 28 -> 24 -> 12 -> 8 -> 4, so the
    first linear layer sees 16 * 4 * 4 = 256 features. ``linear_norm=False``
    puts the norm after the two convolutions only (``nn.Identity`` in the
    linear slots), as Wu & He's ResNet has it.
    """
    _check_choice("pool", pool, POOL_CHOICES)  # make_norm checks norm
    pool_layer = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
    fc_norm = norm if linear_norm else "none"
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), make_norm(norm, 6, 4),
        _activation(activation), pool_layer(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), make_norm(norm, 16, 4),
        _activation(activation), pool_layer(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 120),
        make_norm(fc_norm, 120, 2), _activation(activation),
        nn.Linear(120, 84), make_norm(fc_norm, 84, 2),
        _activation(activation), nn.Linear(84, num_classes))


def deep_mlp(depth: int, width: int = 100, norm: str = "none",
             activation: str = "sigmoid", in_features: int = 784,
             num_classes: int = 10, dropout: float = 0.0,
             dropout_at: str = "all") -> nn.Sequential:
    """A deep MLP: Flatten, ``depth`` hidden blocks Linear -> norm -> act,
    then a linear output layer. Input (N, ...) with ``in_features`` values
    per example (e.g. (N, 1, 28, 28)); output (N, num_classes).

    Children are named so the hidden layers are easy to find in order:
    ``flatten``, ``linear1``, ``norm1``, ``act1``, ..., ``linear{depth}``,
    ``norm{depth}``, ``act{depth}``, ``output`` (``net.linear3``,
    ``net.act3``; ``norm{i}`` is ``nn.Identity`` with ``norm="none"``).
    Convolution-only norms are not meaningful here, so ``norm`` is one of
    ``"none"``, ``"lecture"``, ``"scratch"``, ``"batchnorm"``,
    ``"layernorm"``, ``"groupnorm"``.

    ``dropout`` > 0 adds ``nn.Dropout(dropout)`` as ``drop{i}`` after
    ``act{i}``: after every hidden block (``dropout_at="all"``, so it comes
    before the next norm layer), or after the last one only (``"last"``:
    after every norm layer, just before the output layer).
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1) (got {dropout})")
    _check_choice("dropout_at", dropout_at, ("all", "last"))
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int (number of hidden "
                         f"layers), got {depth!r}")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive int, got {width!r}")
    mlp_norms = tuple(n for n in NORM_CHOICES if n != "instancenorm")
    _check_choice("norm", norm, mlp_norms)
    layers = [("flatten", nn.Flatten())]
    fan_in = in_features
    for i in range(1, depth + 1):
        layers += [(f"linear{i}", nn.Linear(fan_in, width)),
                   (f"norm{i}", make_norm(norm, width, 2)),
                   (f"act{i}", _activation(activation))]
        if dropout > 0 and (dropout_at == "all" or i == depth):
            layers.append((f"drop{i}", nn.Dropout(dropout)))
        fan_in = width
    layers.append(("output", nn.Linear(fan_in, num_classes)))
    return nn.Sequential(OrderedDict(layers))


def init_xavier(net: nn.Module) -> nn.Module:
    """Xavier-uniform weights for every ``nn.Linear`` and ``nn.Conv2d``, as
    ``d2l.train_ch6`` does (biases keep PyTorch's default). Returns ``net``.
    """
    for module in net.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(module.weight)
    return net


class GhostBatch(nn.Module):
    """``net`` run on chunks of ``micro_batch`` examples while training.

    In training mode the input (N, ...) is split into chunks of
    ``micro_batch`` examples (the last one may be smaller; it must hold at
    least 2 for a batch-norm layer after a linear layer), ``net`` runs on
    each chunk and the outputs are concatenated to (N, ...). Every
    batch-norm layer inside then takes its statistics, and updates its
    running estimates, per chunk -- as data-parallel training does per
    device: the "images per GPU" of Wu & He (2018), the "ghost batches" of
    Hoffer et al. (2017). The loss and the optimizer step still see all N
    examples, so the optimisation (batch size, learning rate, number of
    steps) stays the same whatever ``micro_batch`` is. Layers that
    normalise each example on its own (layer, instance and group norm, or
    none) give the same outputs and gradients as ``net`` alone, up to
    floating-point rounding. In ``eval()`` mode the input is not split.
    """

    def __init__(self, net: nn.Module, micro_batch: int):
        super().__init__()
        if not isinstance(micro_batch, int) or micro_batch < 1:
            raise ValueError(f"micro_batch must be a positive int (examples "
                             f"per chunk), got {micro_batch!r}")
        self.net = net
        self.micro_batch = micro_batch

    def forward(self, X):
        """X: (N, ...) -> ``net``'s output for all N examples."""
        if not self.training or len(X) <= self.micro_batch:
            return self.net(X)
        return torch.cat([self.net(chunk)
                          for chunk in X.split(self.micro_batch)])

    def extra_repr(self):
        return f"micro_batch={self.micro_batch}"
