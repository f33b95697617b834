"""Tests of bnlesson.running: recursive estimators, precise BN, and
running, recomputed and batch statistics side by side.

Tolerances: float64 recursions agree with direct formulas to 1e-12,
float32 to 1e-6; population statistics (float64) to 1e-10.
"""
import copy
import math

import pytest
import torch
from torch import nn

from bnlesson.norms import BatchNorm
from bnlesson.running import (
    batch_stats_accuracy,
    batch_stats_forward,
    cumulative_mean,
    ema,
    gain_filter,
    kalman_1d,
    population_stats,
    precise_bn,
    reestimate_running_stats,
    running_stats_error,
    steady_state_gain,
)

F64 = dict(atol=1e-12, rtol=1e-12)


def _zs(seed, shape=(20,), dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return 3 + torch.randn(shape, generator=gen, dtype=dtype)


# --------------------------------------------------------------------------
# Recursive estimators.
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1])
def test_cumulative_mean_equals_mean(seed):
    zs = _zs(seed)
    expected = torch.stack([zs[:k].mean() for k in range(1, len(zs) + 1)])
    torch.testing.assert_close(cumulative_mean(zs), expected, **F64)
    zs32 = zs.float()
    torch.testing.assert_close(cumulative_mean(zs32), expected.float(),
                               atol=1e-6, rtol=1e-6)


def test_cumulative_mean_of_tensors_and_lists():
    zs = _zs(2, shape=(10, 3, 2))
    expected = torch.stack([zs[:k].mean(0) for k in range(1, 11)])
    torch.testing.assert_close(cumulative_mean(zs), expected, **F64)
    torch.testing.assert_close(cumulative_mean(list(zs)), expected, **F64)
    torch.testing.assert_close(cumulative_mean([1, 2, 3, 6]),
                               torch.tensor([1.0, 1.5, 2.0, 3.0]))


def test_ema_convention():
    zs = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    # momentum weights the NEW value (PyTorch); None starts from the first.
    torch.testing.assert_close(
        ema(zs, 0.1), torch.tensor([1.0, 1.1, 1.39], dtype=torch.float64),
        **F64)
    # init=0.0 mimics a BatchNorm running_mean buffer.
    torch.testing.assert_close(
        ema(zs, 0.1, init=0.0),
        torch.tensor([0.1, 0.29, 0.661], dtype=torch.float64), **F64)
    assert torch.equal(ema(zs, 1.0), zs)  # no memory: the measurements
    assert torch.equal(ema(zs, 0.0, init=5.0), torch.full((3,), 5.0,
                                                          dtype=torch.float64))


def test_ema_and_cumulative_mean_are_pytorch_running_mean():
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(8, 3, generator=gen) + k for k in range(5)]
    batch_means = torch.stack([X.mean(0) for X in batches])
    for momentum, expected in ((0.1, ema(batch_means, 0.1, init=0.0)),
                               (None, cumulative_mean(batch_means))):
        bn = nn.BatchNorm1d(3, momentum=momentum)
        for X, x_k in zip(batches, expected, strict=True):
            bn(X)
            torch.testing.assert_close(bn.running_mean, x_k, atol=1e-6,
                                       rtol=1e-6)


def test_gain_filter_general_form():
    zs = torch.tensor([2.0, 4.0, 8.0], dtype=torch.float64)
    gains = torch.tensor([0.5, 0.25, 1.0], dtype=torch.float64)
    # x0 = 0: x1 = 1, x2 = 1 + 0.25 * 3 = 1.75, x3 = 8.
    torch.testing.assert_close(gain_filter(zs, gains, init=0.0),
                               torch.tensor([1.0, 1.75, 8.0],
                                            dtype=torch.float64), **F64)


def test_kalman_with_no_prior_is_the_running_mean():
    zs = _zs(3)
    estimates, gains = kalman_1d(zs, e_est=math.inf, e_mea=2.0)
    k = torch.arange(1, len(zs) + 1, dtype=torch.float64)
    torch.testing.assert_close(gains, 1 / k, **F64)
    torch.testing.assert_close(estimates, cumulative_mean(zs), **F64)


def test_kalman_gain_limits():
    zs = _zs(4)
    # e_est >> e_mea: K_1 -> 1 (trust the measurement), then about 1/k.
    _, gains = kalman_1d(zs, e_est=1e12, e_mea=1.0)
    assert gains[0] == pytest.approx(1.0, abs=1e-11)
    k = torch.arange(1, len(zs) + 1, dtype=torch.float64)
    torch.testing.assert_close(gains, 1 / k, atol=1e-10, rtol=0)
    # e_est << e_mea: K -> 0 (keep the estimate x0).
    estimates, gains = kalman_1d(zs, e_est=1e-12, e_mea=1.0, x0=0.0)
    assert gains.max() < 1e-11
    assert estimates.abs().max() < 1e-10


def test_kalman_with_process_noise_settles_to_an_ema():
    zs = _zs(5, shape=(200,))
    e_mea, q = 4.0, 0.5
    gain = steady_state_gain(e_mea, q)
    _, gains = kalman_1d(zs, e_est=100.0, e_mea=e_mea, q=q)
    assert gains[-1].item() == pytest.approx(gain, rel=1e-12)
    assert gains[0] > gains[-1] > 0  # falls, then stays constant
    # Started at the steady state, the filter IS an EMA with momentum K.
    e_star = gain * e_mea / (1 - gain)
    estimates, gains = kalman_1d(zs, e_est=e_star, e_mea=e_mea, q=q, x0=0.0)
    torch.testing.assert_close(gains, torch.full_like(gains, gain), **F64)
    torch.testing.assert_close(estimates, ema(zs, gain, init=0.0), **F64)


def test_steady_state_gain_without_noise_is_zero():
    assert steady_state_gain(1.0, 0.0) == 0.0


def test_running_errors():
    with pytest.raises(ValueError, match="momentum .* in \\[0, 1\\]"):
        ema([1.0, 2.0], 1.1)
    with pytest.raises(ValueError, match="non-empty sequence"):
        cumulative_mean([])
    with pytest.raises(ValueError, match="one gain per measurement"):
        gain_filter([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="both 0"):
        kalman_1d([1.0], e_est=0.0, e_mea=0.0)
    with pytest.raises(ValueError, match="e_est >= 0"):
        kalman_1d([1.0], e_est=-1.0, e_mea=1.0)
    with pytest.raises(ValueError, match="e_mea > 0"):
        steady_state_gain(0.0, 1.0)


# --------------------------------------------------------------------------
# Population statistics and precise BN.
# --------------------------------------------------------------------------

def _tiny_model_and_data():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, kernel_size=3), nn.BatchNorm2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(2 * 2 * 2, 5), BatchNorm(5, num_dims=2),
        nn.ReLU(), nn.Linear(5, 3), nn.BatchNorm1d(3))
    gen = torch.Generator().manual_seed(1)
    # Unequal batch sizes; means far from the initial running statistics.
    data = [(3 * torch.randn(n, 1, 4, 4, generator=gen) + 2, torch.zeros(n))
            for n in (5, 7, 4)]
    with torch.no_grad():  # a little train-mode history
        for X, _ in data[:2]:
            model(X)
    return model, data


def _exact_stats(h, dims):
    """Mean and biased variance of h over dims, in float64."""
    var, mean = torch.var_mean(h.double(), dim=dims, correction=0)
    return mean, var


def test_precise_bn_gives_exact_population_stats():
    model, data = _tiny_model_and_data()
    model.train()
    model[5].eval()  # a mixed state, to be restored exactly
    assert precise_bn(model, data) is model
    assert model.training and not model[5].training and model[1].training
    X = torch.cat([X for X, _ in data])  # (16, 1, 4, 4)
    model.eval()
    with torch.no_grad():  # direct computation, layer by layer
        h = model[0](X)
        mean, var = _exact_stats(h, (0, 2, 3))
        n = h.numel() // h.shape[1]
        torch.testing.assert_close(model[1].running_mean.double(), mean,
                                   atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(model[1].running_var.double(),
                                   var * n / (n - 1), atol=1e-6, rtol=1e-6)
        h = model[4](model[3](model[2](model[1](h))))
        mean, var = _exact_stats(h, (0,))
        torch.testing.assert_close(model[5].moving_mean.reshape(-1).double(),
                                   mean, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(model[5].moving_var.reshape(-1).double(),
                                   var * 16 / 15, atol=1e-6, rtol=1e-6)
        h = model[7](model[6](model[5](h)))
        mean, var = _exact_stats(h, (0,))
        torch.testing.assert_close(model[8].running_mean.double(), mean,
                                   atol=1e-6, rtol=1e-6)


def test_population_stats_after_precise_bn_are_the_running_stats():
    model, data = _tiny_model_and_data()
    stats = population_stats(precise_bn(model, data), data)
    assert list(stats) == ["1", "5", "8"]
    assert stats["1"].count == 16 * 2 * 2
    torch.testing.assert_close(stats["8"].mean, model[8].running_mean.double(),
                               atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(stats["5"].unbiased_var,
                               model[5].moving_var.reshape(-1).double(),
                               atol=1e-7, rtol=1e-6)


def test_population_var_is_not_mean_of_batch_vars():
    model = nn.Sequential(nn.BatchNorm1d(2))
    gen = torch.Generator().manual_seed(0)
    data = [torch.randn(4, 2, generator=gen, dtype=torch.float64) + 5 * k
            for k in range(3)]
    model.double()
    stats = population_stats(model, data)["0"]
    mean, var = _exact_stats(torch.cat(data), (0,))
    torch.testing.assert_close(stats.mean, mean, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(stats.var, var, atol=1e-10, rtol=1e-10)
    mean_of_vars = torch.stack([X.var(0, correction=0) for X in data]).mean(0)
    assert (stats.var - mean_of_vars).abs().min() > 1.0


def test_precise_bn_biased_variant_and_num_batches():
    model = nn.Sequential(BatchNorm(2, num_dims=2, unbiased=False))
    gen = torch.Generator().manual_seed(0)
    data = [torch.randn(5, 2, generator=gen) for _ in range(3)]
    precise_bn(model, data, num_batches=2)
    _, var = _exact_stats(torch.cat(data[:2]), (0,))
    torch.testing.assert_close(model[0].moving_var.reshape(-1).double(), var,
                               atol=1e-6, rtol=1e-6)


def test_precise_bn_errors():
    model, data = _tiny_model_and_data()
    with pytest.raises(TypeError, match="re-iterable"):
        precise_bn(model, iter(data))
    with pytest.raises(ValueError, match="no batch-norm layer"):
        precise_bn(nn.Sequential(nn.Linear(2, 2)), data)
    with pytest.raises(ValueError, match="no batches"):
        population_stats(model, [])


# --------------------------------------------------------------------------
# Running, recomputed and batch statistics side by side (chapter 05).
# --------------------------------------------------------------------------

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
