"""The models: the lecture's layer layout, every norm variant, init."""
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from bnlesson import norms
from bnlesson.models import (
    ACTIVATION_CHOICES,
    LENET_ACT,
    LENET_NORM,
    NORM_CHOICES,
    GhostBatch,
    deep_mlp,
    init_xavier,
    lenet,
    make_norm,
    num_groups,
)

# Positions of LeNet's convolutions and linear layers (models' docstring).
LENET_CONV = (0, 4)
LENET_LINEAR = (9, 12, 15)
# The lecture's concise LeNet, layer by layer.
LECTURE_LAYOUT = [nn.Conv2d, nn.BatchNorm2d, nn.Sigmoid, nn.MaxPool2d,
                  nn.Conv2d, nn.BatchNorm2d, nn.Sigmoid, nn.MaxPool2d,
                  nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.Sigmoid,
                  nn.Linear, nn.BatchNorm1d, nn.Sigmoid, nn.Linear]


pytestmark = pytest.mark.usefixtures("seeded")


def test_lenet_matches_the_lectures_layout():
    net = lenet("batchnorm")
    assert [type(m) for m in net] == LECTURE_LAYOUT
    assert (net[0].in_channels, net[0].out_channels) == (1, 6)
    assert (net[4].in_channels, net[4].out_channels) == (6, 16)
    assert [(net[i].in_features, net[i].out_features)
            for i in LENET_LINEAR] == [(256, 120), (120, 84), (84, 10)]
    assert all(isinstance(net[i], nn.Conv2d) for i in LENET_CONV)
    assert all(isinstance(net[i], nn.Sigmoid) for i in LENET_ACT)


@pytest.mark.parametrize("norm", NORM_CHOICES)
def test_lenet_every_norm_keeps_indices_and_shapes(norm):
    net = lenet(norm)
    assert len(net) == 16
    assert [type(net[i]) for i in LENET_CONV + LENET_LINEAR] == \
        [nn.Conv2d] * 2 + [nn.Linear] * 3
    X = torch.rand(4, 1, 28, 28)  # (N, C, H, W)
    y_hat = net(X)
    assert y_hat.shape == (4, 10)
    y_hat.sum().backward()
    assert net[0].weight.grad is not None


def test_lenet_none_uses_identity_placeholders():
    net = lenet("none")
    assert all(isinstance(net[i], nn.Identity) for i in LENET_NORM)
    # 156 + 2416 + 30840 + 10164 + 850 parameters, as without the slots
    assert sum(p.numel() for p in net.parameters()) == 44426


def test_lenet_lecture_variants_expose_gamma_at_index_1():
    lecture, scratch = lenet("lecture"), lenet("scratch")
    assert isinstance(lecture[1], norms.LectureBatchNorm)
    assert isinstance(scratch[1], norms.BatchNorm)
    for net in (lecture, scratch):
        assert net[1].gamma.reshape(-1).shape == (6,)
        assert net[13].beta.reshape(-1).shape == (84,)


def test_lenet_pool_activation_and_classes():
    net = lenet(pool="avg", activation="relu", num_classes=3)
    assert isinstance(net[3], nn.AvgPool2d)
    assert isinstance(net[2], nn.ReLU)
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 3)
    assert set(ACTIVATION_CHOICES) == {"sigmoid", "tanh", "relu"}


@pytest.mark.parametrize("kwargs, word", [
    ({"norm": "batch_norm"}, "batchnorm"),
    ({"pool": "min"}, "avg"),
    ({"activation": "gelu"}, "sigmoid"),
])
def test_unknown_choices_list_the_valid_ones(kwargs, word):
    with pytest.raises(ValueError, match=word):
        lenet(**kwargs)


def test_make_norm_rejects_bad_num_dims():
    with pytest.raises(ValueError, match="num_dims"):
        make_norm("batchnorm", 6, 3)


def test_num_groups_about_four_channels_per_group():
    assert [num_groups(c) for c in (6, 16, 120, 84, 7, 1)] == \
        [2, 4, 30, 21, 1, 1]


def test_layernorm_slot_normalises_each_sample_over_c_h_w():
    X = torch.randn(3, 6, 5, 5) * 4 + 2  # (N, C, H, W)
    layer = make_norm("layernorm", 6, 4)
    torch.testing.assert_close(layer(X), F.layer_norm(X, X.shape[1:]))


def test_instancenorm_uses_layernorm_after_linear_layers():
    net = lenet("instancenorm")
    assert isinstance(net[1], nn.InstanceNorm2d) and net[1].affine
    assert isinstance(net[10], nn.LayerNorm)


def test_deep_mlp_names_hidden_layers_in_order():
    net = deep_mlp(3, width=8)
    names = [name for name, _ in net.named_children()]
    assert names == ["flatten", "linear1", "norm1", "act1", "linear2",
                     "norm2", "act2", "linear3", "norm3", "act3", "output"]
    assert net.linear1.in_features == 784 and net.output.out_features == 10
    assert net(torch.rand(5, 1, 28, 28)).shape == (5, 10)


def test_deep_mlp_dropout_before_or_after_the_norms():
    names = [n for n, _ in deep_mlp(3, 8, dropout=0.5).named_children()]
    assert names[names.index("act1") + 1] == "drop1"
    assert names[names.index("drop2") + 1] == "linear3"
    last = dict(deep_mlp(3, 8, dropout=0.2,
                         dropout_at="last").named_children())
    assert [n for n in last if n.startswith("drop")] == ["drop3"]
    assert last["drop3"].p == 0.2
    assert not any(isinstance(m, nn.Dropout) for m in deep_mlp(3, 8).modules())
    with pytest.raises(ValueError, match="dropout"):
        deep_mlp(2, 8, dropout=1.0)
    with pytest.raises(ValueError, match="dropout_at"):
        deep_mlp(2, 8, dropout=0.5, dropout_at="first")


def test_deep_mlp_norm_and_validation():
    assert isinstance(deep_mlp(2, 8, norm="batchnorm").norm2, nn.BatchNorm1d)
    with pytest.raises(ValueError, match="depth"):
        deep_mlp(0)
    with pytest.raises(ValueError, match="layernorm"):
        deep_mlp(2, norm="instancenorm")


def test_init_xavier_redraws_weights_within_the_bound():
    net = lenet()
    biases = [net[i].bias.clone() for i in LENET_CONV + LENET_LINEAR]
    assert init_xavier(net) is net
    for i, bias in zip(LENET_CONV + LENET_LINEAR, biases, strict=True):
        weight = net[i].weight
        fan_in = weight[0].numel()
        fan_out = weight.shape[0] * weight[0, 0].numel()
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert weight.abs().max() <= bound
        assert weight.abs().max() > 0.9 * bound  # drawn, not left alone
        torch.testing.assert_close(net[i].bias, bias)


@pytest.mark.parametrize("norm", ["batchnorm", "groupnorm", "instancenorm"])
def test_lenet_linear_norm_false_norms_the_convolutions_only(norm):
    net = lenet(norm, activation="relu", linear_norm=False)
    kinds = [type(net[i]) for i in LENET_NORM]
    assert nn.Identity not in kinds[:2]
    assert kinds[2:] == [nn.Identity, nn.Identity]
    assert type(net[1]) is type(lenet(norm)[1])


# --------------------------------------------------------------------------
# GhostBatch: images per normalization batch (chapter 04)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["none", "layernorm", "instancenorm",
                                  "groupnorm"])
def test_ghost_batch_leaves_per_example_norms_unchanged(norm):
    net = lenet(norm, activation="relu")
    X = torch.rand(12, 1, 28, 28)
    whole = net(X)
    chunked = GhostBatch(net, 4)(X)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)


def test_ghost_batch_gives_batch_norm_per_chunk_statistics():
    net = lenet("batchnorm", activation="relu")
    X = torch.rand(12, 1, 28, 28)
    ghost = GhostBatch(net, 4)
    Y = ghost(X)
    # running statistics: one EMA update per chunk
    assert net[1].num_batches_tracked.item() == 3
    expected = torch.cat([net(chunk) for chunk in X.split(4)])
    torch.testing.assert_close(Y, expected)
    assert (Y - net(X)).abs().max() > 1e-3  # not the whole batch's statistics


def test_ghost_batch_eval_does_not_split_and_gradients_flow():
    ghost = GhostBatch(lenet("batchnorm"), 2)
    X = torch.rand(6, 1, 28, 28)
    ghost.eval()
    torch.testing.assert_close(ghost(X), ghost.net(X))
    ghost.train()
    F.cross_entropy(ghost(X), torch.arange(6)).backward()
    assert ghost.net[0].weight.grad is not None
    assert "micro_batch=2" in repr(ghost)


def test_ghost_batch_rejects_bad_size():
    with pytest.raises(ValueError, match="micro_batch"):
        GhostBatch(lenet(), 0)
