"""Helpers added for chapter 01 (why deep networks are hard to train):
layer outputs, the change made by one SGD step, per-layer line plots."""
import copy

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from bnlesson.diagnostics import layer_outputs, sgd_step_change  # noqa: E402
from bnlesson.models import deep_mlp  # noqa: E402
from bnlesson.plotting import plot_layer_series  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def batch(num_examples=16):
    """X (N, 1, 28, 28), y (N,)."""
    return torch.rand(num_examples, 1, 28, 28), torch.arange(num_examples) % 10


def test_layer_outputs_match_a_hand_forward_and_leave_the_net_alone():
    net = deep_mlp(3, width=8, norm="batchnorm").eval()
    running = net.norm2.running_mean.clone()
    X, _ = batch()
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
    X, y = batch()
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


def test_sgd_step_change_scales_with_the_input_of_the_layer():
    """Input x100 and weights /100: same function, relative step x10^4."""
    net = deep_mlp(3, width=8)
    X, y = batch()
    scaled = copy.deepcopy(net)
    scaled.linear2.register_forward_pre_hook(lambda m, args: (args[0] * 100,))
    with torch.no_grad():
        scaled.linear2.weight /= 100
    a = sgd_step_change(net, X, y, 0.1, "linear2")
    b = sgd_step_change(scaled, X, y, 0.1, "linear2")
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    assert b["weight"] / a["weight"] == pytest.approx(1e4, rel=1e-3)
    with pytest.raises(ValueError, match="no weight"):
        sgd_step_change(net, X, y, 0.1, "act1")


@pytest.fixture
def ax(monkeypatch):
    def no_show(*args, **kwargs):
        raise AssertionError("helpers must not call plt.show()")

    monkeypatch.setattr(plt, "show", no_show)
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_plot_layer_series_draws_one_line_per_layer_and_a_guide(ax):
    series = {"linear1": [1e-5, 2e-5, 3e-5], "linear2": [1e-3, 2e-3, 1e-3],
              "output": [1e-2, 1e-2, 2e-2]}
    assert plot_layer_series(ax, [0, 5, 10], series, guide=1e-3,
                             ylabel="update / data") is ax
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == \
        ["linear1", "linear2", "output", "0.001"]
    assert len({tuple(line.get_color()) for line in lines[:3]}) == 3
    assert list(lines[0].get_xdata()) == [0, 5, 10]
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "update / data"
    assert ax.get_legend() is not None


def test_plot_layer_series_checks_lengths(ax):
    with pytest.raises(ValueError, match="2 values for 3 steps"):
        plot_layer_series(ax, [0, 1, 2], {"a": [1.0, 2.0]})
    plot_layer_series(ax, [0, 1], {"a": [1.0, 2.0]}, log=False, legend=False)
    assert ax.get_yscale() == "linear" and ax.get_legend() is None
