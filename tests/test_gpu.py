"""The library on a CUDA GPU: same results as on the CPU, tensors stay on
the device, nothing silently falls back to the CPU.

Skipped where no GPU is present (CI, most laptops). Run on a GPU machine
with ``python -m pytest tests/test_gpu.py``. Tolerances: outputs and
gradients agree with PyTorch's own CUDA kernels to atol = rtol = 1e-4 in
float32 (cuDNN and our reductions sum in different orders), 1e-10 in
float64; CPU and GPU training runs agree to 1e-3 in final test accuracy
after one epoch on 1,000 images.
"""
import pytest
import torch
import torch.nn.functional as F

from bnlesson import norms, running
from bnlesson.data import BatchIterator, load_tensors
from bnlesson.diagnostics import ActivationStats
from bnlesson.models import NORM_CHOICES, GhostBatch, lenet
from bnlesson.train import evaluate_accuracy, train
from bnlesson.utils import use_deterministic_gpu

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU")
CUDA = torch.device("cuda")
F32 = dict(atol=1e-4, rtol=1e-4)
F64 = dict(atol=1e-10, rtol=1e-10)


def small_data(n=1000, batch_size=100, shuffle=True):
    X, y = load_tensors("mini", "train")
    return BatchIterator(X[:n], y[:n], batch_size, shuffle=shuffle)


@pytest.mark.parametrize("shape", [(64, 12), (16, 6, 10, 10)])
def test_lecture_batch_norm_matches_torch_on_gpu(shape):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(shape, generator=gen).to(CUDA)
    C = shape[1]
    stat = (1, C) if len(shape) == 2 else (1, C, 1, 1)
    gamma, beta = torch.ones(stat, device=CUDA), torch.zeros(stat, device=CUDA)
    mean, var = torch.zeros(stat, device=CUDA), torch.ones(stat, device=CUDA)
    with torch.enable_grad():
        X.requires_grad_()
        Y, new_mean, new_var = norms.batch_norm(X, gamma, beta, mean, var,
                                                1e-5, 0.9)
    expected = F.batch_norm(X.detach(), None, None, training=True, eps=1e-5)
    assert Y.device.type == new_mean.device.type == "cuda"
    torch.testing.assert_close(Y.detach(), expected, **F32)


@pytest.mark.parametrize("num_dims,shape", [(2, (32, 7)), (4, (8, 5, 6, 6))])
def test_corrected_batch_norm_module_on_gpu(num_dims, shape):
    torch.manual_seed(0)
    ours = norms.BatchNorm(shape[1], num_dims).to(CUDA)
    ref = ours.to_torch().to(CUDA)
    for buffer in ours.buffers():
        assert buffer.device.type == "cuda"
    X = torch.randn(shape, device=CUDA)
    for _ in range(3):  # training steps update the running statistics
        torch.testing.assert_close(ours(X), ref(X), **F32)
    converted = ours.to_torch()
    torch.testing.assert_close(converted.running_mean, ref.running_mean,
                               **F32)
    torch.testing.assert_close(converted.running_var, ref.running_var, **F32)
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(X), ref(X), **F32)


def test_lecture_module_moves_its_moving_statistics_to_the_gpu():
    layer = norms.LectureBatchNorm(6, 4).to(CUDA)
    Y = layer(torch.randn(4, 6, 5, 5, device=CUDA))
    assert Y.device.type == "cuda"
    assert layer.moving_mean.device.type == "cuda"


@pytest.mark.parametrize("shape", [(256, 120), (32, 16, 8, 8)])
def test_closed_form_batch_norm_on_gpu(shape):
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(shape, generator=gen).to(CUDA).requires_grad_()
    gamma = torch.rand(shape[1], generator=gen).to(CUDA).requires_grad_()
    beta = torch.randn(shape[1], generator=gen).to(CUDA).requires_grad_()
    dY = torch.randn(shape, generator=gen).to(CUDA)
    ours = norms.batch_norm_closed_form(X, gamma, beta)
    ref = F.batch_norm(X, None, None, gamma, beta, training=True)
    torch.testing.assert_close(ours, ref, **F32)
    for g_ours, g_ref in zip(torch.autograd.grad(ours, (X, gamma, beta), dY),
                             torch.autograd.grad(ref, (X, gamma, beta), dY),
                             strict=True):
        assert g_ours.device.type == "cuda"
        torch.testing.assert_close(g_ours, g_ref, **F32)


def test_closed_form_batch_norm_gradcheck_on_gpu():
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(6, 3, 2, 2, generator=gen, dtype=torch.float64)
    gamma = torch.rand(3, generator=gen, dtype=torch.float64) + 0.5
    beta = torch.randn(3, generator=gen, dtype=torch.float64)
    inputs = tuple(t.to(CUDA).requires_grad_() for t in (X, gamma, beta))
    assert torch.autograd.gradcheck(
        lambda *a: norms.batch_norm_closed_form(*a, 1e-5), inputs)


def test_norm_family_matches_torch_on_gpu():
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(4, 8, 5, 5, generator=gen).to(CUDA)
    w = torch.rand(8, generator=gen).to(CUDA)
    b = torch.randn(8, generator=gen).to(CUDA)
    torch.testing.assert_close(norms.layer_norm(X, X.shape[1:]),
                               F.layer_norm(X, X.shape[1:]), **F32)
    torch.testing.assert_close(norms.instance_norm(X, weight=w, bias=b),
                               F.instance_norm(X, weight=w, bias=b), **F32)
    for groups in (1, 2, 8):
        torch.testing.assert_close(norms.group_norm(X, groups, w, b),
                                   F.group_norm(X, groups, w, b), **F32)


@pytest.mark.parametrize("norm", NORM_CHOICES)
def test_every_lenet_variant_runs_forward_and_backward_on_gpu(norm):
    net = lenet(norm).to(CUDA)
    X = torch.rand(8, 1, 28, 28, device=CUDA)
    loss = net(X).logsumexp(dim=1).mean()
    loss.backward()
    for param in net.parameters():
        assert param.grad is not None and param.grad.device.type == "cuda"


def test_training_on_gpu_matches_the_cpu_and_uses_the_cache(tmp_path,
                                                            monkeypatch):
    monkeypatch.setenv("BNLESSON_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("BNLESSON_NO_CACHE", raising=False)
    results = {}
    for device in ("cpu", "cuda"):
        net = lenet("batchnorm")
        history = train(net, small_data(), small_data(shuffle=False), 1, 0.5,
                        device, seed=0, progress=False,
                        cache={"test": "gpu"})
        assert next(net.parameters()).device.type == device
        results[device] = history.final["test_acc"]
    assert abs(results["cpu"] - results["cuda"]) <= 1e-3
    # A second call with the same configuration loads the stored run and
    # leaves the weights on the GPU.
    net = lenet("batchnorm")
    again = train(net, small_data(), small_data(shuffle=False), 1, 0.5,
                  "cuda", seed=0, progress=False, cache={"test": "gpu"})
    assert again.final["test_acc"] == results["cuda"]
    assert next(net.parameters()).device.type == "cuda"
    assert evaluate_accuracy(net, small_data(shuffle=False)) == pytest.approx(
        results["cuda"], abs=1e-3)


def test_lecture_bn_training_on_gpu_keeps_moving_statistics_there():
    net = lenet("lecture")
    train(net, small_data(), small_data(shuffle=False), 1, 0.5, CUDA, seed=0,
          progress=False)
    assert net[1].moving_mean.device.type == "cuda"


def test_precise_bn_and_ghost_batches_on_gpu():
    net = lenet("batchnorm").to(CUDA)
    data = list(small_data(shuffle=False))
    train(GhostBatch(net, 16), data, data, 1, 0.5, CUDA, seed=0,
          progress=False)
    running.precise_bn(net, data)
    exact = running.population_stats(net, data)
    layer = net[1]
    assert layer.running_mean.device.type == "cuda"
    name = next(iter(exact))
    torch.testing.assert_close(layer.running_mean.cpu(),
                               exact[name].mean.float().cpu(), atol=1e-4,
                               rtol=1e-4)


def test_activation_stats_on_gpu():
    net = lenet("none").to(CUDA)
    with ActivationStats(net, every=1) as stats:
        train(net, small_data(n=400), small_data(n=200, shuffle=False), 1,
              0.5, CUDA, seed=0, init=None, progress=False)
    for per_key in stats.activations.values():
        for values in per_key.values():
            assert len(values) == len(stats.steps) > 0
    assert all(v == v for v in stats.activations["2"]["p50"])  # no NaN


def test_setup_makes_gpu_training_repeatable():
    # What chapter 03 asserts: the lecture's module and the corrected one,
    # trained from the same seed, take exactly the same steps.
    use_deterministic_gpu(CUDA)
    losses = []
    for norm in ("lecture", "scratch", "scratch"):
        history = train(lenet(norm), small_data(), small_data(shuffle=False),
                        1, 1.0, CUDA, seed=0, progress=False,
                        record_steps=True)
        losses.append(history.step_loss)
    assert losses[1] == losses[2]
    assert losses[0] == losses[1]
