"""Per-layer statistics and one-shot measurements, checked against values
computed by hand."""
import copy
import json
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from bnlesson.cache import run_cached
from bnlesson.data import BatchIterator
from bnlesson.diagnostics import (
    ACTIVATION_KEYS,
    WEIGHT_KEYS,
    ActivationStats,
    gradient_norms_at_init,
    layer_outputs,
    layer_stats,
    saturated_share,
    sgd_step_change,
)
from bnlesson.models import deep_mlp, init_xavier, lenet
from bnlesson.train import train

# Tiny models: one thread is as fast as two (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread", "seeded")


def batch(num_examples=8):
    """X (N, 1, 28, 28), y (N,)."""
    return torch.rand(num_examples, 1, 28, 28), torch.arange(num_examples) % 10


def one_sgd_step(net, lr=0.5):
    """One hand-written SGD step under ActivationStats(every=1).
    Returns the stats, the batch and what was observed by hand."""
    X, y = batch()
    seen = {}
    net.act1.register_forward_hook(
        lambda m, args, out: seen.update(act1=out))
    before = net.linear1.weight.detach().clone()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    with ActivationStats(net, every=1) as stats:
        F.cross_entropy(net(X), y).backward()
        seen["grad"] = net.linear1.weight.grad.clone()
        optimizer.step()
    seen["ratio"] = ((net.linear1.weight - before).norm()
                     / before.norm()).item()
    return stats, seen


def test_records_match_hand_computed_values():
    stats, seen = one_sgd_step(deep_mlp(2, width=16))
    act1 = stats.activations["act1"]
    Y = seen["act1"].detach()  # (8, 16): 128 values < SAMPLE_SIZE
    assert stats.steps == [0]
    expected = torch.quantile(Y.reshape(-1), torch.tensor([.15, .5, .85]))
    assert [act1[k][0] for k in ("p15", "p50", "p85")] == \
        pytest.approx(expected.tolist(), rel=1e-6)
    linear1 = stats.weights["linear1"]
    assert linear1["grad_norm"][0] == pytest.approx(
        seen["grad"].norm().item(), rel=1e-6)
    assert linear1["update_ratio"][0] == pytest.approx(seen["ratio"],
                                                       rel=1e-5)


def test_update_ratio_is_lr_grad_over_weight_for_sgd():
    net = deep_mlp(1, width=8)
    weight = net.linear1.weight.detach().clone()
    stats, seen = one_sgd_step(net, lr=0.5)
    expected = 0.5 * seen["grad"].norm() / weight.norm()
    assert stats.weights["linear1"]["update_ratio"][0] == \
        pytest.approx(expected.item(), rel=1e-5)


def test_default_layers_keys_and_order():
    stats, _ = one_sgd_step(deep_mlp(2, width=16))
    assert list(stats.activations) == ["act1", "act2"]
    assert list(stats.weights) == ["linear1", "linear2", "output"]
    assert set(stats.activations["act1"]) == set(ACTIVATION_KEYS)
    assert set(stats.weights["output"]) == set(WEIGHT_KEYS)


def test_saturated_share():
    Y = torch.sigmoid(torch.tensor([-10.0, 0.0, 10.0, 0.5]))
    assert saturated_share(nn.Sigmoid(), Y).item() == 0.5
    Y = torch.tanh(torch.tensor([-3.0, 0.0, 1.0, 3.0]))
    assert saturated_share(nn.Tanh(), Y).item() == 0.5
    assert saturated_share(nn.ReLU(), torch.tensor([0.0, 1.0])).item() == 0.5
    assert saturated_share(nn.Identity(), Y) is None


def test_every_k_training_steps_and_never_in_eval():
    X, y = batch(64)
    train_iter = BatchIterator(X, y, 8, shuffle=True)  # 8 steps per epoch
    net = lenet()
    with ActivationStats(net, every=5) as stats:
        train(net, train_iter, [(X, y)], 2, 0.5, "cpu", seed=0)
        net.eval()
        net(X)
    assert stats.steps == [0, 5, 10, 15]
    for series in stats.activations.values():
        assert all(len(values) == 4 for values in series.values())
        assert all(0 <= s <= 1 for s in series["saturation"])
        assert all(a <= b <= c for a, b, c in
                   zip(series["p15"], series["p50"], series["p85"],
                       strict=True))
    for series in stats.weights.values():
        assert all(math.isfinite(r) and r > 0
                   for r in series["update_ratio"])


def test_recording_changes_nothing_in_the_run():
    X, y = batch(64)
    X_test, y_test = batch(16)

    def run(with_stats):
        net = lenet("batchnorm")
        train_iter = BatchIterator(X, y, 8, shuffle=True)
        args = (net, train_iter, [(X_test, y_test)], 1, 0.5, "cpu")
        if not with_stats:
            return train(*args, seed=0, record_steps=True)
        with ActivationStats(net, every=1):  # conv outputs: sampled
            return train(*args, seed=0, record_steps=True)

    assert run(True).step_loss == run(False).step_loss


def test_close_removes_every_hook():
    net = deep_mlp(2, width=4)
    stats = ActivationStats(net, every=1)
    stats.close()
    net(torch.rand(2, 784))
    assert stats.steps == []
    assert not net._forward_pre_hooks and not net.act1._forward_hooks


def test_named_layers_and_bad_names():
    net = lenet("batchnorm")
    stats = ActivationStats(net, activations=["1", "2"])
    stats.close()
    assert list(stats.activations) == ["1", "2"]
    assert list(stats.weights) == ["0", "4", "9", "12", "15"]
    with pytest.raises(ValueError, match="no module named"):
        ActivationStats(net, activations=["conv1"])


def test_norm_outputs_have_no_saturation():
    net = lenet("batchnorm")
    X, y = batch()
    with ActivationStats(net, every=1, activations=["1"]) as stats:
        F.cross_entropy(net(X), y).backward()
    series = stats.activations["1"]
    assert math.isnan(series["saturation"][0])
    assert series["p15"][0] < 0 < series["p85"][0]  # BN output, centred


def test_dict_is_plain(cache_dir):
    stats, _ = one_sgd_step(deep_mlp(2, width=16))
    values = stats.to_dict()
    json.dumps(values)
    run_cached({"test": "stats"}, lambda: values)
    assert run_cached({"test": "stats"}, dict) == values  # read back
    assert list(values["activations"]["act2"]) == list(ACTIVATION_KEYS)


def test_gradient_norms_at_init_shrink_towards_the_input():
    net = init_xavier(deep_mlp(6, width=32))
    X, y = batch(32)
    norms = gradient_norms_at_init(net, X, y)
    assert list(norms) == [f"linear{i}" for i in range(1, 7)] + ["output"]
    assert norms["linear1"] < norms["linear6"] / 10
    assert all(p.grad is None for p in net.parameters())  # net untouched


def test_gradient_norms_leave_bn_statistics_alone():
    net = lenet("batchnorm")
    X, y = batch()
    running_mean = net[1].running_mean.clone()
    norms = gradient_norms_at_init(net, X, y)
    assert list(norms) == ["0", "4", "9", "12", "15"]
    assert torch.equal(net[1].running_mean, running_mean)


def test_layer_stats_one_step():
    values = layer_stats(lenet(), *batch())
    assert values["steps"] == [0]
    assert list(values["activations"]) == ["2", "6", "11", "14"]
    assert values["weights"]["0"]["update_ratio"] == [0.0]


# --------------------------------------------------------------------------
# What one change does to the layers (chapter 01)
# --------------------------------------------------------------------------
def test_layer_outputs_match_a_hand_forward_and_leave_the_net_alone():
    net = deep_mlp(3, width=8, norm="batchnorm").eval()
    running = net.norm2.running_mean.clone()
    X, _ = batch(16)
    out = layer_outputs(net, X, ["act2", "norm1"])
    assert list(out) == ["act2", "norm1"]
    train_copy = copy.deepcopy(net).train()
    h = train_copy.flatten(X)
    z1 = train_copy.norm1(train_copy.linear1(h))
    z2 = train_copy.norm2(train_copy.linear2(train_copy.act1(z1)))
    torch.testing.assert_close(out["norm1"], z1)
    torch.testing.assert_close(out["act2"], torch.sigmoid(z2))
    assert not net.training
    assert torch.equal(net.norm2.running_mean, running)
    assert not out["act2"].requires_grad
    with pytest.raises(ValueError, match="no module named"):
        layer_outputs(net, X, ["linear9"])


def test_sgd_step_change_matches_a_hand_step():
    net = deep_mlp(2, width=8)
    X, y = batch(16)
    before = copy.deepcopy(net.state_dict())
    result = sgd_step_change(net, X, y, 0.5, "linear2")
    for key, value in net.state_dict().items():  # net untouched
        assert torch.equal(value, before[key])
    hand = copy.deepcopy(net)
    loss = F.cross_entropy(hand(X), y)
    loss.backward()
    W = hand.linear2.weight.detach().clone()
    Y = hand.linear2(hand.act1(hand.linear1(hand.flatten(X)))).detach()
    with torch.no_grad():
        for p in hand.parameters():
            p -= 0.5 * p.grad
        Y1 = hand.linear2(hand.act1(hand.linear1(hand.flatten(X))))
    assert result["loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert result["weight"] == pytest.approx(
        ((hand.linear2.weight - W).norm() / W.norm()).item(), rel=1e-5)
    assert result["output"] == pytest.approx(
        ((Y1 - Y).norm() / Y.norm()).item(), rel=1e-5)
    with pytest.raises(ValueError, match="no weight"):
        sgd_step_change(net, X, y, 0.1, "act1")
