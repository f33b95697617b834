"""Tests of bnlesson.norms against torch.nn.functional / torch.nn.

Tolerances: float32 outputs and gradients agree with PyTorch to
atol = rtol = 1e-5, float32 running statistics to rtol = 1e-6 (atol 1e-7);
float64 comparisons to 1e-10.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnlesson.norms import (
    NORM_AXES,
    BatchNorm,
    BatchNormFunction,
    LectureBatchNorm,
    batch_norm,
    batch_norm_closed_form,
    group_norm,
    instance_norm,
    layer_norm,
    normalize,
    stats_group_ids,
)

F32 = dict(atol=1e-5, rtol=1e-5)
STATS32 = dict(atol=1e-7, rtol=1e-6)
F64 = dict(atol=1e-10, rtol=1e-10)
SEEDS = [0, 1, 2]


def random_shape(gen, ndim):
    """A small random (N, D) or (N, C, H, W) shape with N >= 2."""
    def rand(low, high):
        return int(torch.randint(low, high + 1, (1,), generator=gen))
    if ndim == 2:
        return (rand(2, 9), rand(1, 6))
    return (rand(2, 4), rand(1, 5), rand(1, 4), rand(1, 4))


def random_bn_args(seed, ndim, dtype=torch.float32):
    """X plus (C,) gamma, beta, running mean and (positive) running var."""
    gen = torch.Generator().manual_seed(seed)
    shape = random_shape(gen, ndim)
    C = shape[1]
    X = 3 * torch.randn(shape, generator=gen, dtype=dtype) + 1
    gamma = torch.rand(C, generator=gen, dtype=dtype) + 0.5
    beta = torch.randn(C, generator=gen, dtype=dtype)
    mean = torch.randn(C, generator=gen, dtype=dtype)
    var = torch.rand(C, generator=gen, dtype=dtype) + 0.5
    return X, gamma, beta, mean, var


def per_channel(t, ndim):
    """(C,) -> (1, C) or (1, C, 1, 1), the lecture's parameter shape."""
    return t.reshape((1, -1) + (1,) * (ndim - 2))


def reduce_dims(ndim):
    return (0,) if ndim == 2 else (0, 2, 3)


# --------------------------------------------------------------------------
# The lecture's function.
# --------------------------------------------------------------------------

@pytest.mark.parametrize("ndim", [2, 4])
@pytest.mark.parametrize("seed", SEEDS)
def test_batch_norm_training_matches_torch(seed, ndim):
    X, gamma, beta, mean, var = random_bn_args(seed, ndim)
    shape = lambda t: per_channel(t, ndim)  # noqa: E731
    running_mean, running_var = mean.clone(), var.clone()
    expected = F.batch_norm(X, running_mean, running_var, gamma, beta,
                            training=True, momentum=0.1, eps=1e-5)
    Y, new_mean, new_var = batch_norm(
        X, shape(gamma), shape(beta), shape(mean), shape(var), 1e-5, 0.9,
        training=True)
    torch.testing.assert_close(Y, expected, **F32)
    torch.testing.assert_close(new_mean.reshape(-1), running_mean, **STATS32)
    # The lecture stores the biased variance: 0.9 * old + 0.1 * var_biased.
    var_b = X.var(dim=reduce_dims(ndim), correction=0)
    torch.testing.assert_close(new_var.reshape(-1), 0.9 * var + 0.1 * var_b,
                               **STATS32)
    # unbiased=True stores PyTorch's running_var.
    _, _, new_var_u = batch_norm(
        X, shape(gamma), shape(beta), shape(mean), shape(var), 1e-5, 0.9,
        training=True, unbiased=True)
    torch.testing.assert_close(new_var_u.reshape(-1), running_var, **STATS32)


@pytest.mark.parametrize("ndim", [2, 4])
@pytest.mark.parametrize("seed", SEEDS)
def test_batch_norm_inference_matches_torch(seed, ndim):
    X, gamma, beta, mean, var = random_bn_args(seed, ndim)
    shape = lambda t: per_channel(t, ndim)  # noqa: E731
    expected = F.batch_norm(X, mean, var, gamma, beta, training=False)
    Y, new_mean, new_var = batch_norm(
        X, shape(gamma), shape(beta), shape(mean), shape(var), 1e-5, 0.9,
        training=False)
    torch.testing.assert_close(Y, expected, **F32)
    assert torch.equal(new_mean, shape(mean))
    assert torch.equal(new_var, shape(var))


def test_batch_norm_float64_matches_torch():
    X, gamma, beta, mean, var = random_bn_args(3, 4, torch.float64)
    expected = F.batch_norm(X, mean.clone(), var.clone(), gamma, beta,
                            training=True)
    Y, _, _ = batch_norm(X, per_channel(gamma, 4), per_channel(beta, 4),
                         per_channel(mean, 4), per_channel(var, 4), 1e-5, 0.9,
                         training=True)
    torch.testing.assert_close(Y, expected, **F64)


def test_batch_norm_accepts_1d_params_for_2d_input():
    X, gamma, beta, mean, var = random_bn_args(0, 2)
    Y, _, _ = batch_norm(X, gamma, beta, mean, var, 1e-5, 0.9, training=True)
    expected = F.batch_norm(X, None, None, gamma, beta, training=True)
    torch.testing.assert_close(Y, expected, **F32)


def test_lecture_switch_is_grad_enabled():
    X, gamma, beta, mean, var = random_bn_args(1, 4)
    args = (per_channel(gamma, 4), per_channel(beta, 4), per_channel(mean, 4),
            per_channel(var, 4), 1e-5, 0.9)
    Y_grad, m_grad, _ = batch_norm(X, *args)  # grad enabled: batch stats
    Y_train, _, _ = batch_norm(X, *args, training=True)
    torch.testing.assert_close(Y_grad, Y_train)
    assert not torch.equal(m_grad, per_channel(mean, 4))
    with torch.no_grad():  # no grad: moving stats, nothing updated
        Y_nograd, m_nograd, _ = batch_norm(X, *args)
    Y_eval, _, _ = batch_norm(X, *args, training=False)
    torch.testing.assert_close(Y_nograd, Y_eval)
    assert torch.equal(m_nograd, per_channel(mean, 4))


def test_identical_samples_collapse_to_beta_in_training():
    # Every sample equal (the batch-of-one situation): x - mean_B = 0.
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 5, generator=gen)
    beta = torch.randn(1, 5, generator=gen)
    gamma = torch.rand(1, 5, generator=gen) + 0.5
    Y, _, _ = batch_norm(x.expand(4, 5), gamma, beta, torch.zeros(1, 5),
                         torch.ones(1, 5), 1e-5, 0.9)
    torch.testing.assert_close(Y, beta.expand(4, 5))


def test_batch_of_one_training_raises_and_inference_accepts():
    x = torch.randn(1, 5)
    args = (torch.ones(1, 5), torch.zeros(1, 5), torch.zeros(1, 5),
            torch.ones(1, 5), 1e-5, 0.9)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batch_norm(x, *args)  # grad enabled: the lecture trains
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(x, None, None, training=True)  # PyTorch agrees
    with torch.no_grad():  # the lecture's inference mode
        Y, _, _ = batch_norm(x, *args)
    torch.testing.assert_close(Y, x / (1 + 1e-5) ** 0.5)


def test_one_sample_with_spatial_extent_is_accepted():
    # Like nn.BatchNorm2d: N = 1 but H * W > 1 values per channel.
    X = torch.randn(1, 3, 2, 2)
    Y, _, _ = batch_norm(X, torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1),
                         torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1),
                         1e-5, 0.9, training=True)
    torch.testing.assert_close(
        Y, F.batch_norm(X, None, None, training=True), **F32)


# --------------------------------------------------------------------------
# Bad input.
# --------------------------------------------------------------------------

def _ones(*shape):
    return torch.ones(shape)


def test_bad_ndim_raises():
    p = _ones(1, 3, 1, 1)
    with pytest.raises(ValueError, match="2D or 4D"):
        batch_norm(torch.randn(2, 3, 4), p, p, p, p, 1e-5, 0.9)
    with pytest.raises(ValueError, match="2D or 4D"):
        batch_norm_closed_form(torch.randn(2, 3, 4), torch.ones(3),
                               torch.ones(3))


@pytest.mark.parametrize("name",
                         ["gamma", "beta", "moving_mean", "moving_var"])
def test_param_shape_mismatch_raises(name):
    args = dict(gamma=_ones(1, 3, 1, 1), beta=_ones(1, 3, 1, 1),
                moving_mean=_ones(1, 3, 1, 1), moving_var=_ones(1, 3, 1, 1))
    args[name] = _ones(1, 4, 1, 1)
    with pytest.raises(ValueError, match=name):
        batch_norm(torch.randn(2, 3, 2, 2), eps=1e-5, momentum=0.9, **args)


def test_flat_param_for_4d_input_raises():
    # (C,) would broadcast along W, silently wrong when W == C.
    p, flat = _ones(1, 3, 1, 1), torch.ones(3)
    with pytest.raises(ValueError, match="gamma"):
        batch_norm(torch.randn(2, 3, 3, 3), flat, p, p, p, 1e-5, 0.9)


def test_closed_form_param_shape_raises():
    with pytest.raises(ValueError, match="gamma"):
        batch_norm_closed_form(torch.randn(4, 3), torch.ones(4), torch.ones(3))


def test_closed_form_single_value_per_channel_raises():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        batch_norm_closed_form(torch.randn(1, 3, 1, 1), torch.ones(3),
                               torch.ones(3))


def test_module_errors():
    with pytest.raises(ValueError, match="num_dims"):
        BatchNorm(3, num_dims=3)
    with pytest.raises(ValueError, match="num_dims"):
        LectureBatchNorm(3, num_dims=1)
    with pytest.raises(ValueError, match="expected 4D input"):
        BatchNorm(3, num_dims=4)(torch.randn(5, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm(3, num_dims=2)(torch.randn(1, 3))
    BatchNorm(3, num_dims=2).eval()(torch.randn(1, 3))  # inference: fine


def test_family_errors():
    X = torch.randn(2, 6, 3, 3)
    with pytest.raises(ValueError, match="num_groups"):
        group_norm(X, 4)
    with pytest.raises(ValueError, match="weight"):
        group_norm(X, 3, weight=torch.ones(3))
    with pytest.raises(ValueError, match="2D or more"):
        group_norm(torch.randn(6), 3)
    with pytest.raises(ValueError, match="shape"):
        layer_norm(X, (6, 3))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        instance_norm(torch.randn(2, 6, 1, 1))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        instance_norm(torch.randn(2, 6))
    with pytest.raises(ValueError, match="running_mean"):
        instance_norm(X, torch.zeros(3), torch.ones(6))
    with pytest.raises(ValueError, match="method"):
        stats_group_ids("weight", (2, 6, 3, 3))


# --------------------------------------------------------------------------
# The lecture's module and its flaws; the corrected module.
# --------------------------------------------------------------------------

def test_lecture_module_flaws():
    torch.manual_seed(0)
    X = torch.randn(8, 3, 4, 4) * 2 + 1
    bn = LectureBatchNorm(3, num_dims=4)
    assert bn.gamma.shape == (1, 3, 1, 1) and bn.beta.shape == (1, 3, 1, 1)
    # Flaw 1: eval() with gradients on still uses batch statistics...
    bn.eval()
    Y = bn(X)
    torch.testing.assert_close(Y, F.batch_norm(X, None, None, training=True),
                               **F32)
    # ...and updates the moving statistics.
    assert not torch.equal(bn.moving_mean, torch.zeros(1, 3, 1, 1))
    # Flaw 2: training under no_grad never updates them.
    bn.train()
    before = bn.moving_mean.clone()
    with torch.no_grad():
        bn(X)
    assert torch.equal(bn.moving_mean, before)
    # Flaw 3: not in state_dict, and .to() does not cast or move them.
    assert set(bn.state_dict()) == {"gamma", "beta"}
    bn.to(torch.float64)
    assert bn.gamma.dtype == torch.float64
    assert bn.moving_mean.dtype == torch.float32


def test_corrected_module_has_no_such_flaws():
    torch.manual_seed(0)
    X = torch.randn(8, 3, 4, 4) * 2 + 1
    bn = BatchNorm(3, num_dims=4)
    bn.eval()
    Y = bn(X)  # grad enabled, but eval(): moving statistics
    torch.testing.assert_close(Y, X / (1 + 1e-5) ** 0.5)
    assert torch.equal(bn.moving_mean, torch.zeros(1, 3, 1, 1))
    bn.train()
    with torch.no_grad():  # train() under no_grad still updates
        bn(X)
    assert not torch.equal(bn.moving_mean, torch.zeros(1, 3, 1, 1))
    assert set(bn.state_dict()) == {"gamma", "beta", "moving_mean",
                                    "moving_var"}
    clone = BatchNorm(3, num_dims=4)
    clone.load_state_dict(bn.state_dict())
    assert torch.equal(clone.moving_var, bn.moving_var)
    bn.to(torch.float64)
    assert bn.moving_mean.dtype == torch.float64
    assert bn.moving_var.dtype == torch.float64
    assert bn(X.double()).dtype == torch.float64


def test_extra_repr():
    text = repr(BatchNorm(16, num_dims=4))
    assert "16, num_dims=4, eps=1e-05, momentum=0.1, unbiased=True" in text


def _train_pair(scratch, torch_bn, batches, lr=0.1):
    """Train both on the same batches (forward, backward, SGD step) and
    check outputs and gradients agree at every step."""
    opt_a = torch.optim.SGD(scratch.parameters(), lr=lr)
    opt_b = torch.optim.SGD(torch_bn.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(123)
    for X in batches:
        target = torch.randn(X.shape, generator=gen)
        Y_a, Y_b = scratch(X), torch_bn(X)
        torch.testing.assert_close(Y_a, Y_b, **F32)
        for Y, opt in ((Y_a, opt_a), (Y_b, opt_b)):
            opt.zero_grad()
            ((Y - target) ** 2).mean().backward()
            opt.step()
        torch.testing.assert_close(scratch.gamma.grad.reshape(-1),
                                   torch_bn.weight.grad, **F32)


def _assert_same_state(scratch, torch_bn, tol=STATS32):
    torch.testing.assert_close(scratch.gamma.reshape(-1), torch_bn.weight,
                               **tol)
    torch.testing.assert_close(scratch.beta.reshape(-1), torch_bn.bias, **tol)
    torch.testing.assert_close(scratch.moving_mean.reshape(-1),
                               torch_bn.running_mean, **tol)
    torch.testing.assert_close(scratch.moving_var.reshape(-1),
                               torch_bn.running_var, **tol)
    assert scratch.momentum == torch_bn.momentum  # PyTorch's convention
    assert scratch.eps == torch_bn.eps


def _random_batches(seed, ndim, C, num=4):
    gen = torch.Generator().manual_seed(seed)
    shape = (6, C) if ndim == 2 else (3, C, 3, 2)
    return [2 * torch.randn(shape, generator=gen) + k for k in range(num)]


def _assert_converted_trains_alike(scratch, torch_bn, batches, X):
    """Just converted: the same state exactly; after training both on
    ``batches``: the same state, and the same eval-mode output for X."""
    _assert_same_state(scratch, torch_bn, tol=dict(atol=0, rtol=0))
    _train_pair(scratch, torch_bn, batches)
    _assert_same_state(scratch, torch_bn)
    scratch.eval(), torch_bn.eval()
    torch.testing.assert_close(scratch(X), torch_bn(X), **F32)


@pytest.mark.parametrize("ndim", [2, 4])
@pytest.mark.parametrize("seed", SEEDS)
def test_from_torch_then_train_matches(seed, ndim):
    C = 3 + seed
    torch_bn = (nn.BatchNorm1d if ndim == 2 else nn.BatchNorm2d)(
        C, momentum=0.2)
    batches = _random_batches(seed, ndim, C)
    # Give torch_bn some history first (trained weights, running stats).
    _train_pair(BatchNorm.from_torch(torch_bn), torch_bn, batches[:2])
    scratch = BatchNorm.from_torch(torch_bn)
    assert scratch.num_dims == ndim and scratch.training
    _assert_converted_trains_alike(scratch, torch_bn, batches, batches[0])


@pytest.mark.parametrize("ndim", [2, 4])
@pytest.mark.parametrize("seed", SEEDS)
def test_to_torch_then_train_matches(seed, ndim):
    C = 2 + seed
    scratch = BatchNorm(C, num_dims=ndim, momentum=0.2)
    batches = _random_batches(seed + 10, ndim, C)
    with torch.no_grad():
        for X in batches[:2]:  # some history
            scratch(X)
    torch_bn = scratch.to_torch()
    assert type(torch_bn) is (nn.BatchNorm1d if ndim == 2 else nn.BatchNorm2d)
    assert torch_bn.momentum == 0.2
    _assert_converted_trains_alike(scratch, torch_bn, batches, batches[1])


@pytest.mark.parametrize("ndim", [2, 4])
def test_conversion_round_trips(ndim):
    torch_bn = (nn.BatchNorm1d if ndim == 2 else nn.BatchNorm2d)(4).double()
    with torch.no_grad():
        torch_bn.weight.uniform_(0.5, 1.5)
        torch_bn.bias.normal_()
        torch_bn.running_mean.normal_()
        torch_bn.running_var.uniform_(0.5, 2.0)
    torch_bn.eval()
    scratch = BatchNorm.from_torch(torch_bn)
    assert not scratch.training and scratch.moving_var.dtype == torch.float64
    back = scratch.to_torch()
    assert not back.training
    for key in ("weight", "bias", "running_mean", "running_var"):
        assert torch.equal(back.state_dict()[key], torch_bn.state_dict()[key])
    again = BatchNorm.from_torch(back)
    for key, value in scratch.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)


def test_from_torch_without_affine():
    torch_bn = nn.BatchNorm1d(3, affine=False)
    scratch = BatchNorm.from_torch(torch_bn)
    X = torch.randn(5, 3)
    torch.testing.assert_close(scratch(X), torch_bn(X), **F32)


def test_conversion_errors():
    with pytest.raises(TypeError):
        BatchNorm.from_torch(nn.BatchNorm3d(3))
    with pytest.raises(ValueError):
        BatchNorm.from_torch(nn.BatchNorm1d(3, momentum=None))
    with pytest.raises(ValueError):
        BatchNorm.from_torch(nn.BatchNorm1d(3, track_running_stats=False))
    with pytest.raises(ValueError):
        BatchNorm(3, num_dims=2, unbiased=False).to_torch()


# --------------------------------------------------------------------------
# The closed-form backward.
# --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 3, 2)])
def test_closed_form_gradcheck(shape):
    gen = torch.Generator().manual_seed(0)
    X = (torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 1
         ).requires_grad_()
    C = shape[1]
    gamma = (torch.rand(C, generator=gen, dtype=torch.float64) + 0.5
             ).requires_grad_()
    beta = torch.randn(C, generator=gen, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(BatchNormFunction.apply,
                                    (X, gamma, beta, 1e-5))


@pytest.mark.parametrize("ndim", [2, 4])
@pytest.mark.parametrize("seed", SEEDS)
def test_closed_form_matches_autograd_of_formula(seed, ndim):
    X, gamma, beta, _, _ = random_bn_args(seed, ndim, torch.float64)
    inputs = [t.clone().requires_grad_() for t in (X, gamma, beta)]
    dY = torch.randn(X.shape, dtype=torch.float64,
                     generator=torch.Generator().manual_seed(seed))
    Y = batch_norm_closed_form(*inputs)
    grads = torch.autograd.grad(Y, inputs, dY)
    # Autograd through the lecture's formula, batch statistics.
    ref_inputs = [t.clone().requires_grad_() for t in (X, gamma, beta)]
    Y_ref, _, _ = batch_norm(
        ref_inputs[0], per_channel(ref_inputs[1], ndim),
        per_channel(ref_inputs[2], ndim), per_channel(torch.zeros_like(gamma),
                                                      ndim),
        per_channel(torch.ones_like(gamma), ndim), 1e-5, 0.9, training=True)
    ref_grads = torch.autograd.grad(Y_ref, ref_inputs, dY)
    torch.testing.assert_close(Y, Y_ref, **F64)
    for g, g_ref in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, g_ref, **F64)


@pytest.mark.parametrize("ndim", [2, 4])
def test_closed_form_matches_torch_float32(ndim):
    X, gamma, beta, _, _ = random_bn_args(5, ndim)
    inputs = [t.clone().requires_grad_() for t in (X, gamma, beta)]
    ref_inputs = [t.clone().requires_grad_() for t in (X, gamma, beta)]
    dY = torch.randn(X.shape, generator=torch.Generator().manual_seed(1))
    Y = batch_norm_closed_form(*inputs)
    Y_ref = F.batch_norm(ref_inputs[0], None, None, ref_inputs[1],
                         ref_inputs[2], training=True)
    torch.testing.assert_close(Y, Y_ref, **F32)
    for g, g_ref in zip(torch.autograd.grad(Y, inputs, dY),
                        torch.autograd.grad(Y_ref, ref_inputs, dY),
                        strict=True):
        torch.testing.assert_close(g, g_ref, **F32)


def test_closed_form_accurate_with_large_mean():
    # Centred two-pass statistics: a mean 1000x the std loses little.
    gen = torch.Generator().manual_seed(0)
    X64 = torch.randn(64, 4, 3, 3, generator=gen, dtype=torch.float64) + 1000
    X = X64.float().requires_grad_()
    gamma, beta = torch.ones(4, requires_grad=True), torch.zeros(4)
    Y = batch_norm_closed_form(X, gamma, beta)
    ref = F.batch_norm(X.detach().double(), None, None, training=True)
    torch.testing.assert_close(Y.double(), ref, atol=1e-3, rtol=0)
    dY = torch.randn(X.shape, generator=gen)
    dX, dgamma = torch.autograd.grad(Y, (X, gamma), dY)
    X_ref = X.detach().double().requires_grad_()
    g_ref = torch.ones(4, dtype=torch.float64, requires_grad=True)
    dX_ref, dgamma_ref = torch.autograd.grad(
        F.batch_norm(X_ref, None, None, g_ref, training=True), (X_ref, g_ref),
        dY.double())
    torch.testing.assert_close(dgamma.double(), dgamma_ref, atol=1e-2, rtol=0)
    torch.testing.assert_close(dX.double(), dX_ref, atol=1e-2, rtol=0)


def test_closed_form_only_param_grads_and_no_double_backward():
    X = torch.randn(4, 3)
    gamma = torch.ones(3, requires_grad=True)
    beta = torch.zeros(3, requires_grad=True)
    Y = batch_norm_closed_form(X, gamma, beta)
    dgamma, dbeta = torch.autograd.grad(Y.sum(), (gamma, beta))
    torch.testing.assert_close(dbeta, torch.full((3,), 4.0))
    X.requires_grad_()
    (dX,) = torch.autograd.grad((batch_norm_closed_form(X, gamma, beta) ** 3)
                                .sum(), X, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        dX.sum().backward()


# --------------------------------------------------------------------------
# The normalization family.
# --------------------------------------------------------------------------

def _family_input(seed):
    gen = torch.Generator().manual_seed(seed)
    N = int(torch.randint(2, 4, (1,), generator=gen))
    G = int(torch.randint(1, 4, (1,), generator=gen))
    C = G * int(torch.randint(1, 4, (1,), generator=gen))
    H, W = (int(v) for v in torch.randint(2, 5, (2,), generator=gen))
    X = 2 * torch.randn(N, C, H, W, generator=gen) + 1
    weight = torch.rand(C, generator=gen) + 0.5
    bias = torch.randn(C, generator=gen)
    return X, G, weight, bias


@pytest.mark.parametrize("seed", SEEDS)
def test_layer_norm_matches_torch(seed):
    X, _, _, _ = _family_input(seed)
    gen = torch.Generator().manual_seed(seed)
    for shape in (X.shape[1:], X.shape[2:], X.shape[-1]):
        w = torch.rand(shape, generator=gen) + 0.5
        b = torch.randn(shape, generator=gen)
        norm_shape = shape if isinstance(shape, int) else tuple(shape)
        torch.testing.assert_close(
            layer_norm(X, norm_shape, w, b),
            F.layer_norm(X, (norm_shape,) if isinstance(norm_shape, int)
                         else norm_shape, w, b), **F32)
    torch.testing.assert_close(layer_norm(X, X.shape[1:]),
                               F.layer_norm(X, X.shape[1:]), **F32)


@pytest.mark.parametrize("seed", SEEDS)
def test_instance_norm_matches_torch(seed):
    X, _, weight, bias = _family_input(seed)
    C = X.shape[1]
    torch.testing.assert_close(instance_norm(X, weight=weight, bias=bias),
                               F.instance_norm(X, weight=weight, bias=bias),
                               **F32)
    # Running statistics, PyTorch's momentum convention (weight on new).
    stats = [torch.zeros(C), torch.ones(C)]
    ref_stats = [t.clone() for t in stats]
    Y = instance_norm(X, *stats, weight, bias, momentum=0.3)
    Y_ref = F.instance_norm(X, *ref_stats, weight, bias, momentum=0.3)
    torch.testing.assert_close(Y, Y_ref, **F32)
    for s, s_ref in zip(stats, ref_stats, strict=True):
        torch.testing.assert_close(s, s_ref, **STATS32)
    torch.testing.assert_close(
        instance_norm(X, *stats, weight, bias, use_input_stats=False),
        F.instance_norm(X, *ref_stats, weight, bias, use_input_stats=False),
        **F32)


@pytest.mark.parametrize("seed", SEEDS)
def test_group_norm_matches_torch(seed):
    X, G, weight, bias = _family_input(seed)
    torch.testing.assert_close(group_norm(X, G, weight, bias),
                               F.group_norm(X, G, weight, bias), **F32)
    torch.testing.assert_close(group_norm(X, G), F.group_norm(X, G), **F32)


@pytest.mark.parametrize("seed", SEEDS)
def test_group_norm_extremes_are_layer_and_instance_norm(seed):
    X, _, weight, bias = _family_input(seed)
    C = X.shape[1]
    # G = 1: layer norm over (C, H, W), then a per-channel affine.
    ln = F.layer_norm(X, X.shape[1:]) * weight.view(1, C, 1, 1) \
        + bias.view(1, C, 1, 1)
    torch.testing.assert_close(group_norm(X, 1, weight, bias), ln, **F32)
    # G = C: instance norm.
    torch.testing.assert_close(group_norm(X, C, weight, bias),
                               F.instance_norm(X, weight=weight, bias=bias),
                               **F32)


def test_group_norm_3d_input():
    X = torch.randn(3, 4, 5)
    torch.testing.assert_close(group_norm(X, 2), F.group_norm(X, 2), **F32)


@pytest.mark.parametrize("seed", SEEDS)
def test_norm_axes_reproduce_the_four_methods(seed):
    X, G, _, _ = _family_input(seed)
    N, C, H, W = X.shape
    cases = {
        "batch": F.batch_norm(X, None, None, training=True),
        "layer": F.layer_norm(X, X.shape[1:]),
        "instance": F.instance_norm(X),
    }
    for method, expected in cases.items():
        torch.testing.assert_close(normalize(X, NORM_AXES[method]), expected,
                                   **F32)
    grouped = X.view(N, G, C // G, H, W)
    torch.testing.assert_close(
        normalize(grouped, NORM_AXES["group"]).view_as(X),
        F.group_norm(X, G), **F32)


@pytest.mark.parametrize("method", ["batch", "layer", "instance", "group"])
def test_stats_group_ids(method):
    X, G, _, _ = _family_input(1)
    N, C = X.shape[:2]
    ids = stats_group_ids(method, X.shape, num_groups=G)
    assert ids.shape == X.shape
    expected_count = {"batch": C, "layer": N, "instance": N * C,
                      "group": N * G}[method]
    assert ids.unique().numel() == expected_count
    Y = {"batch": F.batch_norm(X, None, None, training=True),
         "layer": F.layer_norm(X, X.shape[1:]),
         "instance": F.instance_norm(X),
         "group": F.group_norm(X, G)}[method]
    for i in ids.unique():  # each group is normalised on its own
        values = Y[ids == i]
        assert abs(values.mean().item()) < 1e-5
        assert values.var(correction=0).item() == pytest.approx(1, abs=1e-3)


# --------------------------------------------------------------------------
# Batch Renormalization
# --------------------------------------------------------------------------
def _renorm_pair(C, ndim, **kwargs):
    from bnlesson.norms import BatchRenorm
    torch.manual_seed(0)
    bn = (nn.BatchNorm1d if ndim == 2 else nn.BatchNorm2d)(C)
    brn = BatchRenorm(C, **kwargs)
    with torch.no_grad():
        for layer in (bn, brn):
            layer.weight.copy_(torch.linspace(0.5, 2, C))
            layer.bias.copy_(torch.linspace(-1, 1, C))
    return bn, brn


@pytest.mark.parametrize("ndim", [2, 4])
def test_batch_renorm_limit_is_batch_norm(ndim):
    """r_max = 1, d_max = 0: outputs, gradients and running statistics of
    nn.BatchNorm, over several training steps, and the same eval mode."""
    bn, brn = _renorm_pair(3, ndim, r_max=1.0, d_max=0.0)
    gen = torch.Generator().manual_seed(1)
    shape = (6, 3) if ndim == 2 else (4, 3, 5, 5)
    for _ in range(3):
        X = 2 * torch.randn(shape, generator=gen) + 1
        Xa, Xb = X.clone().requires_grad_(), X.clone().requires_grad_()
        Ya, Yb = bn(Xa), brn(Xb)
        torch.testing.assert_close(Yb, Ya, **F32)
        (Ya * X).sum().backward()
        (Yb * X).sum().backward()
        torch.testing.assert_close(Xb.grad, Xa.grad, **F32)
    torch.testing.assert_close(brn.weight.grad, bn.weight.grad, **F32)
    torch.testing.assert_close(brn.running_mean, bn.running_mean, **STATS32)
    torch.testing.assert_close(brn.running_var, bn.running_var, **STATS32)
    bn.eval(), brn.eval()
    torch.testing.assert_close(brn(X), bn(X), **F32)


def test_batch_renorm_unclipped_gives_inference_output():
    """Unclipped r and d turn the training output into the eval output."""
    _, brn = _renorm_pair(3, 4, r_max=1e6, d_max=1e6)
    with torch.no_grad():
        brn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        brn.running_var.copy_(torch.tensor([2.0, 0.5, 3.0]))
    X = torch.randn(2, 3, 4, 4)
    expected = brn.eval()(X)
    torch.testing.assert_close(brn.train()(X), expected, **F32)


def test_batch_renorm_gradcheck_r_d_constant():
    """With r, d at their clipping limits (constants), autograd's gradient
    is the true derivative: gradcheck in float64."""
    from bnlesson.norms import batch_renorm
    gen = torch.Generator().manual_seed(3)
    X = (4 * torch.randn(5, 2, 3, 3, generator=gen, dtype=torch.float64)
         + 10).requires_grad_()
    weight = torch.tensor([1.5, 0.5], dtype=torch.float64, requires_grad=True)
    bias = torch.tensor([0.2, -0.3], dtype=torch.float64, requires_grad=True)

    def f(X, weight, bias):
        # running var 1, batch std ~4: r clipped at 1.5; mean ~10: d at 2
        mean = torch.zeros(2, dtype=torch.float64)
        var = torch.ones(2, dtype=torch.float64)
        return batch_renorm(X, mean, var, weight, bias, True, momentum=0.0,
                            r_max=1.5, d_max=2.0)
    assert torch.autograd.gradcheck(f, (X, weight, bias))


def test_batch_renorm_schedule_and_checks():
    from bnlesson.norms import BatchRenorm
    brn = BatchRenorm(2, r_max=3.0, d_max=5.0, warmup=2, ramp=4)
    X = torch.randn(4, 2)
    seen = []
    for _ in range(8):
        seen.append(brn.limits())
        brn(X)
    assert seen[:3] == [(1.0, 0.0), (1.0, 0.0), (1.0, 0.0)]
    assert seen[4] == (2.0, 2.5) and seen[6:] == [(3.0, 5.0)] * 2
    brn.eval()(X)
    assert int(brn.num_batches_tracked) == 8, "eval steps are not counted"
    with pytest.raises(ValueError, match="r_max >= 1"):
        BatchRenorm(2, r_max=0.5)
    with pytest.raises(ValueError, match="expected 2D or 4D"):
        brn(torch.randn(2, 2, 3))
