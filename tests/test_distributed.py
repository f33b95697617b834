"""bnlesson.distributed: the launcher's failure handling (bounded time, the
failed rank named, no processes left) and sync BN's parity with one-process
BN, in 2-4 gloo processes on 127.0.0.1."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from bnlesson import distributed as D
from bnlesson.checks import compare

# Starting a process costs an `import torch` (1-5 s on a busy 2-core
# machine); every launch here gets this bound, enforced twice: by the
# launcher's timeout and by an alarm around the test.
BOUND = 60


@contextlib.contextmanager
def bounded(seconds=BOUND):
    """Fail the test (instead of hanging) if the block runs too long."""
    def expire(signum, frame):
        raise TimeoutError(f"test ran past its bound of {seconds} s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
def started(monkeypatch):
    """The processes each launch starts (to check that none survive)."""
    procs = []
    real = subprocess.Popen

    def recording(*args, **kwargs):
        procs.append(real(*args, **kwargs))
        return procs[-1]
    monkeypatch.setattr(D.subprocess, "Popen", recording)
    return procs


def gone(pid):
    """True if no process ``pid`` exists (not even a zombie)."""
    return not os.path.exists(f"/proc/{pid}")


@pytest.mark.parametrize("sizes", [(4, 4), (1, 5, 0, 3)])
def test_sync_bn_parity(sizes):
    with bounded():
        results = D.launch(D.parity_worker, len(sizes), sizes,
                           timeout=BOUND - 5)
    rows = D.parity_rows(results, D.parity_reference(sizes))
    assert [r.name for r in rows] == [
        "output", "input grad", "gamma grad", "beta grad", "running mean",
        "running var"]
    for row in rows:
        assert row.close and row.max_diff < 1e-5, row
    # every rank ends with the same (global) running statistics
    for r in results[1:]:
        assert torch.equal(r["running var"], results[0]["running var"])


@pytest.mark.parametrize("how, rank, message", [
    ("raise", 1, "rank 1 of 3 failed: ValueError: rank 1 gives up"),
    ("exit", 0, "rank 0 of 2 failed: died (exit code 3)"),
])
def test_failed_rank_ends_every_process(started, how, rank, message):
    start = time.monotonic()
    nprocs = int(message.split(" of ")[1][0])
    with bounded(), pytest.raises(D.WorkerError) as info:
        D.launch(D.fail_worker, nprocs, rank, how, timeout=BOUND - 5)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert time.monotonic() - start < BOUND - 5  # not by the timeout
    assert len(started) == nprocs and all(gone(p.pid) for p in started)


def test_hang_times_out(started):
    start = time.monotonic()
    with bounded(), pytest.raises(D.WorkerError, match=r"^timed out after "
                                  r"8 s: rank\(s\) 0, 1 of 2 still running"):
        D.launch(D.fail_worker, 2, 1, "hang", timeout=8)
    assert time.monotonic() - start < 8 + 5
    assert all(gone(p.pid) for p in started)


def test_failed_rendezvous_names_rank_0(started):
    with socket.socket() as busy, bounded():
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(D.WorkerError, match="^rank 0 of 2 failed: .*"
                           "address already in use"):
            D.launch(D.fail_worker, 2, 99, port=busy.getsockname()[1],
                     timeout=BOUND - 5)
    assert all(gone(p.pid) for p in started)


def test_killed_launcher_leaves_no_orphans(tmp_path):
    """kill -9 of the launching process (a notebook kernel) kills its
    workers too (PR_SET_PDEATHSIG)."""
    pids = tmp_path / "pids"
    script = (
        "import subprocess, sys\n"
        "from bnlesson import distributed as D\n"
        "real = subprocess.Popen\n"
        "def rec(*a, **k):\n"
        "    p = real(*a, **k)\n"
        f"    open({str(pids)!r}, 'a').write(f'{{p.pid}}\\n')\n"
        "    return p\n"
        "D.subprocess.Popen = rec\n"
        "D.launch(D.fail_worker, 2, 1, 'hang', timeout=300)\n")
    with bounded():
        parent = subprocess.Popen([sys.executable, "-c", script],
                                  env=D._child_env())
        while not pids.exists() or len(pids.read_text().split()) < 2:
            time.sleep(0.1)
        parent.kill()
        parent.wait()
        children = [int(p) for p in pids.read_text().split()]
        while not all(_dead(pid) for pid in children):
            time.sleep(0.1)


def _dead(pid):
    """Gone, or a zombie waiting for init to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_launch_refuses_main_and_bad_nprocs():
    def local():
        pass
    with pytest.raises(TypeError, match="importable module"):
        D.launch(local, 2)
    with pytest.raises(ValueError, match="nprocs"):
        D.launch(D.fail_worker, 0)


def test_merge_stats_is_global_mean_and_m2():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(11, 3, 2, 2, generator=gen, dtype=torch.float64)
    parts = [D.local_stats(p) for p in X.split([4, 0, 6, 1])]
    stacked = (torch.stack(s) for s in zip(*parts, strict=True))
    count, mean, m2 = D.merge_stats(*stacked)
    assert torch.equal(count, torch.full((3,), 44.0, dtype=torch.float64))
    assert torch.allclose(mean, X.mean((0, 2, 3)), atol=1e-12)
    assert torch.allclose(m2 / 43, X.var((0, 2, 3)), atol=1e-12)


def test_sum_of_squares_cancels_where_merge_does_not():
    gen = torch.Generator().manual_seed(0)
    X = 1e4 + torch.randn(4, 256, 1, generator=gen)  # float32, 4 ranks
    var = X.double().var().item()
    stats = [D.local_stats(p.unsqueeze(1)) for p in X]
    stacked = (torch.stack(s) for s in zip(*stats, strict=True))
    count, _, m2 = D.merge_stats(*stacked)
    sums = [(torch.tensor(float(p.numel())), p.sum(), (p * p).sum())
            for p in X]
    totals = (sum(s) for s in zip(*sums, strict=True))
    _, m2_naive = D.moments_from_sums(*totals)
    assert abs((m2 / (count - 1)).item() / var - 1) < 1e-3
    assert abs(m2_naive.item() / (count - 1).item() / var - 1) > 0.5


def test_sync_bn_in_one_process_is_batch_norm():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(),
                        nn.Flatten(), nn.Linear(12, 4), nn.BatchNorm1d(4))
    with torch.no_grad():
        net[1].running_mean.fill_(0.5)
    X = torch.randn(5, 1, 4, 4)
    ref = net(X)
    sync = D.SyncBatchNorm.convert_sync_batchnorm(net)
    assert [type(m).__name__ for m in sync if "Norm" in type(m).__name__] \
        == ["SyncBatchNorm", "SyncBatchNorm"]
    assert compare("out", sync(X), ref).exact
    with pytest.raises(ValueError, match=r"expected at least 2D input "
                                         r"\(got 1D input\)"):
        sync[1](torch.randn(3))


def test_rank_batches_deal_a_permutation():
    batches = [D.rank_batches(20, 2, r, 3, seed=0) for r in (0, 1)]
    assert [len(b) for b in batches] == [3, 3]
    dealt = torch.cat([torch.cat(b) for b in batches])
    assert len(set(dealt.tolist())) == 18


@pytest.mark.skipif(torch.cuda.device_count() < 2,
                    reason="needs 2 GPUs: nn.SyncBatchNorm runs on CUDA only")
def test_matches_torch_sync_batchnorm_on_two_gpus():
    with bounded(120):
        results = D.launch(D.torch_sync_worker, 2, timeout=110)
    for r in results:
        for name, (ours, theirs) in r.items():
            assert compare(name, ours, theirs).close, name
