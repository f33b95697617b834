"""Batch norm in practice (chapter 07): folding BN into the layer before it
for inference, frozen BN for fine-tuning, rearranging a LeNet's norm
layers, and batches that are not random samples.

* :func:`fold_bn_weights` and :func:`fold_bn` -- an eval-mode BN after a
  convolution or linear layer is an affine map per channel, so it folds
  into that layer's weight and bias: ``W' = gamma / sigma * W``,
  ``b' = gamma / sigma * (b - mu) + beta`` with
  ``sigma = sqrt(running_var + eps)``;
* :class:`FrozenBatchNorm` and :func:`freeze_bn` -- BN with fixed
  statistics and affine parameters, whatever ``train()`` says (what
  torchvision's ``FrozenBatchNorm2d`` does, for 2-D and 4-D input);
* :func:`replace_norms` and :func:`norm_after_activation` -- the same
  LeNet with another norm layer, or with the norm after the activation;
* :class:`ClassBatches` -- mini-batches drawn from few classes each;
* :func:`param_groups` -- optimizer parameter groups with weight decay on
  the weights only, not on norm layers' gamma and beta or on biases.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from bnlesson.norms import BatchNorm, BatchRenorm, LectureBatchNorm

__all__ = ["BN_TYPES", "ClassBatches", "FrozenBatchNorm", "fold_bn",
           "fold_bn_weights", "freeze_bn", "norm_after_activation",
           "NORM_TYPES", "param_groups", "replace_norms"]

#: The batch-norm layers these helpers find (PyTorch's and the series').
BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, BatchNorm)
_FOLDABLE = (nn.Conv2d, nn.Linear)
#: The normalization layers whose parameters (gamma, beta) get no weight decay.
NORM_TYPES = BN_TYPES + (nn.BatchNorm3d, nn.SyncBatchNorm, nn.InstanceNorm1d,
                         nn.InstanceNorm2d, nn.InstanceNorm3d, nn.GroupNorm,
                         nn.LayerNorm, LectureBatchNorm, BatchRenorm)


# --------------------------------------------------------------------------
# Folding BN into the preceding layer
# --------------------------------------------------------------------------
def fold_bn_weights(weight, bias, running_mean, running_var, eps, gamma,
                    beta):
    """(W', b') of the layer that equals layer -> BN(eval).

    weight: (C_out, C_in) or (C_out, C_in, kh, kw); bias: (C_out,) or None
    (zeros); running_mean, running_var, gamma, beta: (C_out,).
    """
    if weight.shape[0] != running_mean.numel():
        raise ValueError(f"expected {weight.shape[0]} statistics, one per "
                         f"output channel (got {running_mean.numel()})")
    scale = gamma / torch.sqrt(running_var + eps)  # (C_out,): gamma / sigma
    if bias is None:
        bias = torch.zeros_like(running_mean)
    W = weight * scale.view(-1, *([1] * (weight.dim() - 1)))
    return W, scale * (bias - running_mean) + beta


def _bn_tensors(bn):
    """(running_mean, running_var, eps, gamma, beta), each (C,)."""
    if isinstance(bn, BatchNorm):
        return (bn.moving_mean.view(-1), bn.moving_var.view(-1), bn.eps,
                bn.gamma.view(-1), bn.beta.view(-1))
    ones = torch.ones_like(bn.running_mean)
    return (bn.running_mean, bn.running_var, bn.eps,
            bn.weight if bn.affine else ones,
            bn.bias if bn.affine else 0 * ones)


def fold_bn(net: nn.Sequential) -> nn.Sequential:
    """A copy of ``net`` in eval mode with every BN that follows a Conv2d or
    Linear folded into it (the BN's slot holds ``nn.Identity``, so indices
    do not shift). ``net`` is not changed."""
    if not isinstance(net, nn.Sequential):
        raise TypeError(f"expected nn.Sequential (got {type(net).__name__})")
    folded = copy.deepcopy(net).eval()
    for i in range(len(folded) - 1):
        layer, bn = folded[i], folded[i + 1]
        if not (isinstance(layer, _FOLDABLE) and isinstance(bn, BN_TYPES)):
            continue
        with torch.no_grad():
            W, b = fold_bn_weights(layer.weight, layer.bias, *_bn_tensors(bn))
            if layer.bias is None:
                layer.bias = nn.Parameter(torch.empty_like(b))
            layer.weight.copy_(W)
            layer.bias.copy_(b)
        folded[i + 1] = nn.Identity()
    return folded


# --------------------------------------------------------------------------
# Frozen BN
# --------------------------------------------------------------------------
class FrozenBatchNorm(nn.Module):
    """Batch norm with fixed statistics and fixed gamma, beta: always the
    eval-mode formula, in ``train()`` too. Input (N, C) or (N, C, H, W).

    Everything is a buffer: no parameter to train, nothing updated.
    """

    def __init__(self, bn):
        super().__init__()
        if not isinstance(bn, BN_TYPES):
            raise TypeError(f"expected a batch-norm layer "
                            f"(got {type(bn).__name__})")
        mean, var, self.eps, gamma, beta = (
            t.detach().clone() if torch.is_tensor(t) else t
            for t in _bn_tensors(bn))
        self.register_buffer("running_mean", mean)
        self.register_buffer("running_var", var)
        self.register_buffer("weight", gamma)
        self.register_buffer("bias", beta)

    def forward(self, X):
        """X: (N, C) or (N, C, H, W) -> Y, same shape."""
        return F.batch_norm(X, self.running_mean, self.running_var,
                            self.weight, self.bias, False, 0.0, self.eps)

    def extra_repr(self):
        return f"{self.running_mean.numel()}, eps={self.eps}"


def replace_norms(net: nn.Module, make) -> nn.Module:
    """Replace, in place, every batch-norm layer of ``net`` by
    ``make(layer)``; returns ``net``."""
    for name, child in net.named_children():
        if isinstance(child, BN_TYPES):
            setattr(net, name, make(child))
        else:
            replace_norms(child, make)
    return net


def freeze_bn(net: nn.Module) -> nn.Module:
    """Every batch-norm layer of ``net`` (in place) as a
    :class:`FrozenBatchNorm` with its current statistics; returns ``net``."""
    return replace_norms(net, FrozenBatchNorm)


def norm_after_activation(net: nn.Sequential, norm_slots) -> nn.Sequential:
    """Swap, in place, each norm slot ``i`` in ``norm_slots`` with the
    activation after it (``net[i + 1]``): conv -> act -> norm instead of
    conv -> norm -> act. Returns ``net``."""
    for i in norm_slots:
        net[i], net[i + 1] = net[i + 1], net[i]
    return net


# --------------------------------------------------------------------------
# Batches that are not random samples
# --------------------------------------------------------------------------
class ClassBatches:
    """Mini-batches of ``batch_size`` examples from at most
    ``classes_per_batch`` classes each (a random sample has all of them).

    Each pass shuffles every class, cuts it into chunks of
    ``batch_size // classes_per_batch`` examples (a class's remainder,
    shorter than a chunk, sits this pass out, like ``drop_last``), shuffles
    the chunks and puts ``classes_per_batch`` consecutive chunks into a
    batch. Yields X (B, ...), y (B,); the
    generator (default: PyTorch's global one) fixes the order.
    """

    def __init__(self, X, y, batch_size, classes_per_batch, generator=None):
        if batch_size % classes_per_batch:
            raise ValueError(f"batch_size must be a multiple of "
                             f"classes_per_batch (got {batch_size} and "
                             f"{classes_per_batch})")
        self.X, self.y = X, y
        self.batch_size = batch_size
        self.classes_per_batch = classes_per_batch
        self.generator = generator

    def _chunks(self):
        size = self.batch_size // self.classes_per_batch
        chunks = []
        for c in torch.unique(self.y):
            idx = torch.nonzero(self.y == c).view(-1)
            idx = idx[torch.randperm(len(idx), generator=self.generator)]
            chunks += list(idx[:len(idx) // size * size].split(size))
        order = torch.randperm(len(chunks), generator=self.generator)
        return [chunks[i] for i in order]

    def __len__(self):
        size = self.batch_size // self.classes_per_batch
        chunks = sum(int((self.y == c).sum()) // size
                     for c in torch.unique(self.y))
        return -(-chunks // self.classes_per_batch)

    def __iter__(self):
        chunks = self._chunks()
        for start in range(0, len(chunks), self.classes_per_batch):
            idx = torch.cat(chunks[start:start + self.classes_per_batch])
            yield self.X[idx], self.y[idx]

    def __repr__(self):
        return (f"ClassBatches({len(self.y)} examples, batch_size="
                f"{self.batch_size}, classes_per_batch="
                f"{self.classes_per_batch})")


# --------------------------------------------------------------------------
# Weight decay
# --------------------------------------------------------------------------
def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two optimizer parameter groups: ``weight_decay`` on the weights, 0 on
    the parameters of norm layers (:data:`NORM_TYPES`) and on biases."""
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0 (got {weight_decay})")
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            exempt = isinstance(module, NORM_TYPES) or name == "bias"
            (no_decay if exempt else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]
