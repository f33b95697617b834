"""Tests of bnlesson.practice: folding against torch.nn.utils.fusion, the
folded LeNet against the eval-mode one, frozen BN, class-skewed batches."""
import pytest
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from bnlesson.models import LENET_NORM, lenet
from bnlesson.norms import BatchNorm
from bnlesson.practice import (
    ClassBatches,
    FrozenBatchNorm,
    fold_bn,
    fold_bn_weights,
    freeze_bn,
    norm_after_activation,
    param_groups,
)


def trained_stats(net, seed=0):
    """Give every BN layer non-trivial statistics and affine parameters."""
    gen = torch.Generator().manual_seed(seed)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(16, 1, 28, 28, generator=gen))
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    return net.eval()


@pytest.mark.parametrize("bias", [True, False])
def test_fold_weights_match_torch_fusion(bias):
    torch.manual_seed(0)
    for layer, bn, fuse in (
            (nn.Conv2d(3, 5, 3, bias=bias), nn.BatchNorm2d(5),
             fuse_conv_bn_eval),
            (nn.Linear(7, 4, bias=bias), nn.BatchNorm1d(4),
             fuse_linear_bn_eval)):
        with torch.no_grad():
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2)
            bn.weight.normal_()
            bn.bias.normal_()
        fused = fuse(layer.eval(), bn.eval())
        W, b = fold_bn_weights(layer.weight, layer.bias, bn.running_mean,
                               bn.running_var, bn.eps, bn.weight, bn.bias)
        torch.testing.assert_close(W, fused.weight, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(b, fused.bias, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("norm", ["batchnorm", "scratch"])
def test_folded_lenet_equals_eval_mode(norm):
    torch.manual_seed(1)
    net = trained_stats(lenet(norm))
    folded = fold_bn(net)
    X = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(folded(X), net(X), rtol=1e-5, atol=1e-5)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, BatchNorm))
                   for m in folded.modules())
    assert len(folded) == len(net) and net.training is False
    assert isinstance(net[1], (nn.BatchNorm2d, BatchNorm)), "net unchanged"


def test_fold_checks():
    with pytest.raises(TypeError, match="nn.Sequential"):
        fold_bn(nn.ModuleList([nn.Linear(2, 2)]))
    with pytest.raises(ValueError, match="one per output channel"):
        fold_bn_weights(torch.ones(3, 2), None, torch.zeros(4),
                        torch.ones(4), 1e-5, torch.ones(4), torch.zeros(4))


def test_frozen_bn_ignores_train_mode():
    torch.manual_seed(2)
    net = trained_stats(lenet("batchnorm"))
    X = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        expected = net(X)
    frozen = freeze_bn(net).train()
    assert all(isinstance(net[i], FrozenBatchNorm) for i in LENET_NORM)
    before = net[1].running_mean.clone()
    with torch.no_grad():
        torch.testing.assert_close(frozen(X), expected)
    torch.testing.assert_close(net[1].running_mean, before)
    names = {n for n, _ in net.named_parameters()}
    assert not any(n.startswith(f"{i}.") for n in names for i in LENET_NORM)
    with pytest.raises(TypeError, match="batch-norm layer"):
        FrozenBatchNorm(nn.ReLU())


def test_norm_after_activation_swaps_slots():
    net = norm_after_activation(lenet("batchnorm"), LENET_NORM)
    assert isinstance(net[1], nn.Sigmoid)
    assert isinstance(net[2], nn.BatchNorm2d)
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_class_batches_few_classes_each():
    y = torch.arange(10).repeat_interleave(22)  # 220 examples, 10 classes
    X = torch.arange(220.0).view(220, 1)
    batches = ClassBatches(X, y, 8, 2, torch.Generator().manual_seed(0))
    seen = []
    for Xb, yb in batches:
        assert len(torch.unique(yb)) <= 2
        seen.append(Xb.view(-1))
    assert len(seen) == len(batches) == 25  # 5 chunks of 4 per class
    assert torch.cat(seen).unique().numel() == 200  # 2 per class left out
    with pytest.raises(ValueError, match="multiple of"):
        ClassBatches(X, y, 7, 2)


@pytest.mark.parametrize("norm",
                         ["batchnorm", "scratch", "lecture", "groupnorm"])
def test_param_groups_exempt_norms_and_biases(norm):
    net = lenet(norm)
    decay, no_decay = param_groups(net, 5e-4)
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (5e-4, 0.0)
    weights = [m.weight for m in net if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [id(p) for p in decay["params"]] == [id(p) for p in weights]
    ids = {id(p) for p in decay["params"] + no_decay["params"]}
    assert ids == {id(p) for p in net.parameters()}
    assert len(ids) == len(decay["params"]) + len(no_decay["params"])
    torch.optim.SGD(param_groups(net, 1e-4), lr=0.1)  # accepted as it is


def test_param_groups_rejects_negative_decay():
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        param_groups(lenet("batchnorm"), -1e-4)
