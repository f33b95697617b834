"""Tests of chapter 05's helpers: running_stats_error,
reestimate_running_stats, batch_stats_forward / batch_stats_accuracy
(bnlesson.running) and plot_lines (bnlesson.plotting)."""
import copy

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from bnlesson.norms import BatchNorm  # noqa: E402
from bnlesson.plotting import COLORS, plot_lines  # noqa: E402
from bnlesson.running import (  # noqa: E402
    batch_stats_accuracy,
    batch_stats_forward,
    population_stats,
    precise_bn,
    reestimate_running_stats,
    running_stats_error,
)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(3 * 4 * 4, 4),
                         nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))


def _batches(n=6, size=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 1, 6, 6, generator=gen) * 2 + 1,
             torch.randint(0, 3, (size,), generator=gen)) for _ in range(n)]


def test_running_stats_error_is_zero_after_precise_bn_and_scales():
    net, data = _net(), _batches()
    precise_bn(net, data)
    errors = running_stats_error(net, population_stats(net, data))
    assert set(errors) == {"1", "5"}
    for e in errors.values():
        assert e["mean"] < 1e-6 and e["std"] < 1e-6
    stats = population_stats(net, data)
    with torch.no_grad():  # shift the mean by one std, double the std
        net[1].running_mean += stats["1"].unbiased_var.sqrt().float()
        net[1].running_var *= 4
    errors = running_stats_error(net, stats)
    assert errors["1"]["mean"] == pytest.approx(1.0, rel=1e-5)
    assert errors["1"]["std"] == pytest.approx(1.0, rel=1e-5)


def test_running_stats_error_reads_the_scratch_module():
    scratch = nn.Sequential(BatchNorm(2, 2))
    X = torch.tensor([[0.0, 1.0], [2.0, 5.0]])
    stats = population_stats(scratch, [X])
    errors = running_stats_error(scratch, stats)  # moving stats 0 and 1
    std = stats["0"].unbiased_var.sqrt()
    expected = (stats["0"].mean.abs() / std).mean().item()
    assert errors["0"]["mean"] == pytest.approx(expected)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_reestimate_running_stats_is_pytorch_ema_or_cumulative(momentum):
    net, data = _net(), _batches()
    net.eval()
    reference = copy.deepcopy(net)
    start_mean = reference[1].running_mean.clone()
    reestimate_running_stats(net, data, momentum=momentum)
    assert not net.training and net[1].momentum == 0.1  # restored
    means = torch.stack([reference[0](X).mean((0, 2, 3)).detach()
                         for X, _ in data])  # (K, C) batch means
    if momentum is None:
        expected = means.mean(0)
    else:
        expected = start_mean
        for m in means:
            expected = (1 - momentum) * expected + momentum * m
    torch.testing.assert_close(net[1].running_mean, expected, atol=1e-5,
                               rtol=1e-5)
    for p, q in zip(net.parameters(), reference.parameters(),
                    strict=True):
        assert torch.equal(p, q)  # weights frozen


def test_reestimate_running_stats_errors():
    net = nn.Sequential(BatchNorm(2, 2))
    with pytest.raises(TypeError, match="to_torch"):
        reestimate_running_stats(net, [torch.randn(4, 2)])
    with pytest.raises(ValueError, match="new value"):
        reestimate_running_stats(_net(), _batches(), momentum=0.9 + 1)


def test_batch_stats_forward_and_accuracy_leave_model_unchanged():
    net, data = _net(), _batches()
    for X, _ in data:  # give it some running statistics
        net(X)
    net.eval()
    state = copy.deepcopy(net.state_dict())
    X, y = data[0]
    out = batch_stats_forward(net, X)
    train_copy = copy.deepcopy(net).train()
    torch.testing.assert_close(out, train_copy(X))
    # the output of one example depends on the rest of its batch
    assert not torch.allclose(batch_stats_forward(net, X[:4])[0], out[0])
    acc = batch_stats_accuracy(net, data)
    correct = sum((batch_stats_forward(net, Xb).argmax(1) == yb).sum().item()
                  for Xb, yb in data)
    assert acc == correct / sum(len(yb) for _, yb in data)
    assert not net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_plot_lines_draws_pairs_and_shared_x():
    fig, ax = plt.subplots()
    plot_lines(ax, {"a": [1.0, 2.0, 3.0], "b": ([1, 10, 100], [3, 2, 1]),
                    "BN": [0.5, 0.5, 0.5]},
               styles={"a": {"linestyle": "none", "marker": "."}},
               xlabel="k", ylabel="estimate", logx=True)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["a"].get_xdata()) == [1, 2, 3]
    assert list(lines["b"].get_xdata()) == [1, 10, 100]
    assert lines["a"].get_linestyle() == "None"
    assert lines["BN"].get_color() == COLORS["batchnorm"]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "k"
    with pytest.raises(ValueError, match="3 values for 2"):
        plot_lines(ax, {"c": [1, 2, 3]}, x=[1, 2])
    plt.close(fig)
