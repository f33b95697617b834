"""Chapter 06's measurements, checked against values computed by hand."""
import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from bnlesson.data import BatchIterator
from bnlesson.landscape import (
    NoiseInjection,
    add_noise,
    batch_spread,
    distribution_shift,
    feature_percentiles,
    gradient_shift,
    landscape_probe,
    scale_weights,
    train_probed,
    variance_shift,
)
from bnlesson.models import deep_mlp
from bnlesson.norms import BatchNorm
from bnlesson.running import precise_bn, reestimate_running_stats

pytestmark = pytest.mark.usefixtures("one_thread", "seeded")


def batch(num_examples=16):
    """X (N, 1, 28, 28), y (N,)."""
    return torch.rand(num_examples, 1, 28, 28), torch.arange(num_examples) % 10


def state(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def unchanged(net, before):
    return all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())


def test_noise_injection_draws_per_step_and_is_off_in_eval():
    layer = NoiseInjection(5, shift_noise=0.5, scale_noise=0.25)
    X = torch.ones(8, 5)
    Y1, Y2 = layer(X), layer(X)
    assert not torch.equal(Y1, Y2)  # new noise at every call
    assert torch.allclose(Y1, Y1[:1].expand(8, 5))  # one draw per feature
    assert ((Y1 >= 0.75 - 0.5) & (Y1 <= 1.25 + 0.5)).all()
    assert torch.equal(layer.eval()(X), X)
    with pytest.raises(ValueError, match="expected 2D input"):
        layer.train()(torch.ones(2, 5, 1))
    with pytest.raises(ValueError, match="scale_noise"):
        NoiseInjection(5, scale_noise=1.0)


def test_add_noise_wraps_every_batchnorm():
    net = add_noise(deep_mlp(3, 8, norm="batchnorm"), 0.5, 0.25)
    for i in (1, 2, 3):
        block = getattr(net, f"norm{i}")
        assert isinstance(block[0], nn.BatchNorm1d)
        assert isinstance(block[1], NoiseInjection)
    with pytest.raises(ValueError, match="no nn.BatchNorm1d"):
        add_noise(deep_mlp(2, 8))


def test_distribution_shift_is_the_mean_absolute_change():
    q = torch.zeros(3, 3, 2)  # (T, 3, C)
    q[1] += 1.0
    q[2, 0, 0] = 7.0
    # changes: 6 ones from step 0 to 1; from 1 to 2: one |7 - 1| = 6 and
    # five |0 - 1| = 1 -> (6 + 6 + 5) / 12
    assert distribution_shift(q) == pytest.approx(17 / 12)
    with pytest.raises(ValueError, match="T >= 2"):
        distribution_shift(torch.zeros(1, 3, 2))


def test_feature_percentiles_of_a_layer():
    net = deep_mlp(2, 8, norm="batchnorm")
    X, _ = batch(32)
    before = state(net)
    q = feature_percentiles(net, X, "norm1")
    Y = F.batch_norm(net.linear1(X.flatten(1)), None, None, training=True)
    assert q.shape == (3, 8)
    assert torch.allclose(q, torch.quantile(Y, torch.tensor([.15, .5, .85]),
                                            dim=0), atol=1e-5)
    assert unchanged(net, before)


def reference_shift(net, X, y, lr, names_below, layer):
    """The gradient view computed by hand on a copy."""
    model = copy.deepcopy(net).train()
    weight = model.get_submodule(layer).weight
    below = [p for n in names_below
             for p in model.get_submodule(n).parameters()]
    grads = torch.autograd.grad(F.cross_entropy(model(X), y),
                                below + [weight])
    with torch.no_grad():
        for p, g in zip(below, grads[:-1], strict=True):
            p -= lr * g
    G2, = torch.autograd.grad(F.cross_entropy(model(X), y), [weight])
    return grads[-1], G2


def test_gradient_shift_matches_a_hand_computation():
    net = deep_mlp(3, 8, norm="batchnorm", activation="relu")
    X, y = batch()
    before = state(net)
    got = gradient_shift(net, X, y, 0.5, "linear3")
    G, G2 = reference_shift(net, X, y, 0.5,
                            ["linear1", "norm1", "linear2", "norm2"],
                            "linear3")
    assert got["l2"] == pytest.approx((G - G2).norm().item(), rel=1e-5)
    assert got["cos"] == pytest.approx(
        F.cosine_similarity(G.flatten(), G2.flatten(), dim=0).item(),
        abs=1e-6)
    assert got["norm"] == pytest.approx(G.norm().item(), rel=1e-6)
    assert got["l2"] > 0
    assert unchanged(net, before)  # BN running statistics included
    still = gradient_shift(net, X, y, 0.0, "linear3")
    assert still["l2"] == 0 and still["cos"] == pytest.approx(1.0)


def test_gradient_shift_refuses_bad_layers():
    net = deep_mlp(2, 8)
    X, y = batch()
    with pytest.raises(ValueError, match="first layer"):
        gradient_shift(net, X, y, 0.1, "linear1")
    with pytest.raises(ValueError, match="no weight"):
        gradient_shift(net, X, y, 0.1, "act1")


def test_landscape_probe_along_the_gradient():
    net = deep_mlp(2, 8, norm="batchnorm")
    X, y = batch()
    before = state(net)
    steps = [0.5, 2.0]
    got = landscape_probe(net, X, y, steps)
    model = copy.deepcopy(net).train()
    params = list(model.parameters())
    loss0 = F.cross_entropy(model(X), y)
    g = torch.autograd.grad(loss0, params)
    g_norm = torch.sqrt(sum((gi ** 2).sum() for gi in g))
    losses, changes = [], []
    for eta in steps:
        moved = copy.deepcopy(model)
        with torch.no_grad():
            for p, gi in zip(moved.parameters(), g, strict=True):
                p -= eta * gi
        loss = F.cross_entropy(moved(X), y)
        g_eta = torch.autograd.grad(loss, list(moved.parameters()))
        losses.append(loss.item())
        pairs = zip(g_eta, g, strict=True)
        changes.append(
            torch.sqrt(sum(((a - b) ** 2).sum() for a, b in pairs)).item())
    everything = [loss0.item()] + losses
    assert got["losses"] == pytest.approx(losses, rel=1e-5)
    assert got["loss_range"] == pytest.approx(
        max(everything) - min(everything), rel=1e-4)
    assert got["grad_change"] == pytest.approx(max(changes), rel=1e-4)
    assert got["beta"] == pytest.approx(
        max(c / (eta * g_norm.item())
            for c, eta in zip(changes, steps, strict=True)), rel=1e-4)
    assert unchanged(net, before)
    with pytest.raises(ValueError, match="positive"):
        landscape_probe(net, X, y, [0.0, 1.0])


def test_scale_weights_before_bn_leaves_the_loss_unchanged():
    net = deep_mlp(3, 8, norm="batchnorm")
    X, y = batch(32)
    before = state(net)
    losses, grads = [], []
    for c in (0.5, 1.0, 4.0):  # not tiny: eps would matter
        scaled = scale_weights(net, "linear2", c)
        loss = F.cross_entropy(scaled(X), y)
        grads.append(c * torch.autograd.grad(
            loss, scaled.linear2.weight)[0].norm().item())
        losses.append(loss.item())
    assert losses == pytest.approx([losses[1]] * 3, abs=1e-4)
    assert grads == pytest.approx([grads[1]] * 3, rel=1e-2)  # grad ~ 1/c
    assert unchanged(net, before)


def test_train_probed_steps_and_probes():
    X, y = batch(40)
    data = BatchIterator(X, y, 16)  # 3 batches per epoch
    net = deep_mlp(2, 8)
    seen = []
    out = train_probed(net, data, 0.1, 2, 4,
                       lambda n: seen.append(1) or len(seen))
    assert len(out["step_loss"]) == 6
    assert out["probe_steps"] == [0, 4, 6]
    assert out["probes"] == [1, 2, 3]


def test_train_probed_weight_decay_on_weight_matrices_only():
    X, y = batch(16)
    data = [(X, y)]  # one step
    torch.manual_seed(0)
    net = deep_mlp(2, 8, norm="batchnorm")
    plain, decayed = copy.deepcopy(net), copy.deepcopy(net)
    train_probed(plain, data, 0.1, 1, 10, lambda n: None)
    train_probed(decayed, data, 0.1, 1, 10, lambda n: None, weight_decay=0.5)
    for (name, p0), p1, p2 in zip(net.named_parameters(), plain.parameters(),
                                  decayed.parameters(), strict=True):
        # one SGD step: the decayed weight moved by an extra -lr * wd * W
        extra = -0.1 * 0.5 * p0 if p0.dim() >= 2 else torch.zeros_like(p0)
        assert torch.allclose(p2 - p1, extra, atol=1e-6), name
    with pytest.raises(ValueError, match="weight_decay"):
        train_probed(net, data, 0.1, 1, 10, lambda n: None, weight_decay=-1)


def test_batch_spread_is_the_noise_of_the_batch_statistics():
    net = deep_mlp(2, 8, norm="batchnorm")
    X, _ = batch(4)
    pool, _ = batch(64)
    before = state(net)
    gen = torch.Generator().manual_seed(0)
    got = batch_spread(net, X, pool, ["norm1", "norm2"], 8, 10, gen)
    assert set(got) == {"norm1", "norm2"} and got["norm1"].shape == (4, 8)
    assert (got["norm1"] > 0).all()
    assert unchanged(net, before)  # BN running statistics included
    clones = pool[:1].expand(64, -1, -1, -1)
    same = batch_spread(net, X, clones, ["norm1"], 8, 5)
    assert same["norm1"].abs().max() < 1e-5  # the same company every time
    small = batch_spread(net, X, pool, ["norm1"], 2, 20, gen)["norm1"].mean()
    large = batch_spread(net, X, pool, ["norm1"], 32, 20, gen)["norm1"].mean()
    assert large < small
    with pytest.raises(ValueError, match="batch_size >= 2"):
        batch_spread(net, X, pool, ["norm1"], 1, 5)


def test_variance_shift_of_dropout_before_bn():
    X, _ = batch(64)
    batches = [X[:32], X[32:]]
    torch.manual_seed(0)
    net = deep_mlp(3, 16, norm="batchnorm", activation="relu", dropout=0.5)
    reestimate_running_stats(net, batches)  # training mode: dropout on
    ratio = variance_shift(net, batches)
    assert list(ratio) == ["norm1", "norm2", "norm3"]
    assert ratio["norm1"].shape == (16,)
    # no dropout before norm1; the others see dropout's larger variance
    assert ratio["norm1"].mean() == pytest.approx(1.0, abs=0.05)
    assert ratio["norm2"].mean() > 1.3 and ratio["norm3"].mean() > 1.3
    precise_bn(net, batches)  # eval-mode statistics: no shift left
    assert all(torch.allclose(r, torch.ones(16, dtype=r.dtype), atol=1e-4)
               for r in variance_shift(net, batches).values())
    scratch = nn.Sequential(nn.Flatten(), nn.Linear(784, 8), BatchNorm(8, 2))
    precise_bn(scratch, batches)
    assert variance_shift(scratch, batches)["2"] == pytest.approx(
        torch.ones(8, dtype=torch.float64), abs=1e-4)
