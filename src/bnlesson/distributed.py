"""Batch normalization across processes (chapter 08): a launcher for
``torch.distributed`` on one machine, synchronized BN from scratch, and the
workers the chapter runs.

* :func:`launch` runs a worker function in N processes joined in a gloo
  process group on 127.0.0.1 (the same code runs on a cluster under
  ``torchrun``) and returns each rank's result as data. It never hangs: a
  rank that fails or dies, or a run past ``timeout``, ends every process
  and raises :class:`WorkerError` with one line naming the rank.
* :class:`SyncBatchNorm` (with :class:`SyncBatchNormFunction` and
  :func:`merge_stats`) normalises with the statistics of the global batch:
  one all-gather of per-channel (count, mean, M2) in the forward pass, one
  all-reduce of (sum dy, sum dy * x_hat) in the backward pass.
* :func:`parity_worker` and :func:`train_worker` are what the chapter runs
  in the processes; :func:`parity_reference` and :func:`train_reference`
  are the single-process runs they are compared with.

Command line: ``python -m bnlesson.distributed -n 3`` runs the parity check
in 3 processes and prints its table; under ``torchrun --standalone
--nproc-per-node 3 -m bnlesson.distributed`` each rank joins torchrun's
group instead (rank 0 prints).
"""
from __future__ import annotations

import argparse
import ctypes
import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

__all__ = ["COMM", "SYNC_FUNCTIONS", "SyncBatchNorm", "SyncBatchNormFunction",
           "WorkerError", "fail_worker", "launch", "local_stats",
           "merge_stats", "moments_from_sums", "parity_reference",
           "parity_rows", "parity_worker", "rank_batches",
           "torch_sync_worker", "train_reference", "train_worker"]


class WorkerError(RuntimeError):
    """A distributed run failed: a rank raised or died, or time ran out."""


# --------------------------------------------------------------------------
# The launcher
# --------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(worker, nprocs: int, *args, timeout: float = 120.0,
           port: int | None = None):
    """Run ``worker(*args)`` in ``nprocs`` gloo processes; a list of their
    return values, rank 0 first.

    Each process gets one CPU thread and joins the group before ``worker``
    runs (``dist.get_rank()`` / ``dist.get_world_size()`` tell it which it
    is). ``worker`` must live in an importable module: the processes are
    fresh interpreters and cannot import a notebook. Arguments and return
    values travel with ``torch.save`` (tensors, numbers, lists, dicts).
    Raises :class:`WorkerError` if a rank raises or dies, or after
    ``timeout`` seconds, once every process has ended.
    """
    module = getattr(worker, "__module__", "__main__")
    if module == "__main__" or "<" in worker.__qualname__:
        raise TypeError("worker must be a function of an importable module "
                        "(fresh processes cannot import __main__)")
    if not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f"nprocs must be a positive int (got {nprocs!r})")
    port = free_port() if port is None else port
    with tempfile.TemporaryDirectory(prefix="bnlesson-dist-") as tmp:
        tmp = Path(tmp)
        torch.save({"worker": f"{module}:{worker.__qualname__}",
                    "args": args, "port": port, "world_size": nprocs,
                    "timeout": timeout}, tmp / "job.pt")
        procs = []
        try:
            for rank in range(nprocs):
                with open(tmp / f"rank{rank}.log", "wb") as log:
                    procs.append(subprocess.Popen(
                        [sys.executable, "-c", _CHILD, str(tmp), str(rank),
                         str(os.getpid())],
                        stdin=subprocess.DEVNULL, stdout=log,
                        stderr=subprocess.STDOUT, env=_child_env()))
            error = _wait(procs, tmp, time.monotonic() + timeout, timeout)
        finally:
            _stop(procs)
        if error:
            raise WorkerError(error)
        return [torch.load(tmp / f"rank{r}.pt", weights_only=False)
                for r in range(nprocs)]


_CHILD = "import sys, bnlesson.distributed as d; d._child(*sys.argv[1:])"


def _child_env() -> dict:
    """The parent's environment, one thread per process, and this
    checkout's package first on the path."""
    src = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH"))
                           if p)
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)


def _wait(procs, tmp: Path, deadline: float, timeout: float) -> str | None:
    """None when every process exited cleanly, else the one-line error."""
    while True:
        codes = [p.poll() for p in procs]
        if any(c not in (None, 0) for c in codes):
            time.sleep(0.2)  # let a first failure's peers report theirs
            return _first_failure(procs, tmp)
        if all(c == 0 for c in codes):
            return None
        if time.monotonic() > deadline:
            running = [r for r, c in enumerate(codes) if c is None]
            return (f"timed out after {timeout:g} s: rank(s) "
                    f"{', '.join(map(str, running))} of {len(procs)} still "
                    f"running (a rendezvous or collective that never ends?)")
        time.sleep(0.02)


def _first_failure(procs, tmp: Path) -> str:
    """The root cause: a rank that died without a report (killed, exited,
    failed to start) -- its peers' errors are only the consequence -- else
    the rank that raised first."""
    silent, raised = [], []  # (rank, message), (time, rank, message)
    for rank, p in enumerate(procs):
        code, err = p.poll(), tmp / f"rank{rank}.err"
        if err.exists():
            when, message = err.read_text().split("\t", 1)
            raised.append((float(when), rank, message))
        elif code not in (None, 0):
            how = (f"killed by {signal.Signals(-code).name}" if code < 0
                   else f"exit code {code}")
            lines = (tmp / f"rank{rank}.log").read_text(
                errors="replace").strip().splitlines()
            last = f": {lines[-1].strip()}" if lines else ""
            silent.append((rank, f"died ({how}){last}"))
    rank, message = silent[0] if silent else min(raised)[1:]
    return f"rank {rank} of {len(procs)} failed: {message}"


def _stop(procs, grace: float = 2.0) -> None:
    """End every process still running: SIGTERM, then SIGKILL."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    end = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this process when its parent dies, so a
    killed notebook leaves no orphans (and if it died already, go now)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def _child(tmp: str, rank: str, parent: str) -> None:
    """One process of :func:`launch`: join the group, run the worker, save
    its result (or write a one-line report and exit 1)."""
    _die_with_parent(int(parent))
    tmp, rank = Path(tmp), int(rank)
    torch.set_num_threads(1)
    try:
        job = torch.load(tmp / "job.pt", weights_only=False)
        module, _, name = job["worker"].partition(":")
        worker = getattr(importlib.import_module(module), name)
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{job['port']}", rank=rank,
            world_size=job["world_size"],
            timeout=timedelta(seconds=job["timeout"]))
        result = worker(*job["args"])
        dist.barrier()  # nobody leaves while a peer still needs the store
        dist.destroy_process_group()
        torch.save(result, tmp / f"rank{rank}.pt")
    except BaseException as error:  # noqa: B036 -- report anything, then go
        traceback.print_exc()
        line = (str(error).strip().splitlines() or [""])[0]
        (tmp / f"rank{rank}.err").write_text(
            f"{time.time()}\t{type(error).__name__}: {line}")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)  # no atexit handlers: a blocked peer must not hold us


# --------------------------------------------------------------------------
# Synchronized batch normalization from scratch
# --------------------------------------------------------------------------

#: Collectives of :class:`SyncBatchNormFunction` in this process: calls,
#: bytes sent by this rank, seconds spent waiting in them.
COMM = {"calls": 0, "bytes": 0, "seconds": 0.0}


#: The library's sync-BN math, unavailable while chapter 08's graded tests
#: run a student's answer (see ``bnlesson.checks.forbidden``).
SYNC_FUNCTIONS = (
    "bnlesson.distributed.merge_stats",
    "bnlesson.distributed.moments_from_sums",
    "bnlesson.distributed.SyncBatchNormFunction.apply",
    "bnlesson.distributed.SyncBatchNormFunction.backward",
)


def _collective(op, tensor, *rest, group=None) -> None:
    start = time.perf_counter()
    op(*rest, tensor, group=group)
    COMM["seconds"] += time.perf_counter() - start
    COMM["calls"] += 1
    COMM["bytes"] += tensor.numel() * tensor.element_size()


def local_stats(X):
    """Per-channel (count, mean, M2) of X (N, C, ...): three (C,) tensors;
    M2 is the sum of squared deviations from the mean (mean 0 if N = 0)."""
    dims = (0, *range(2, X.dim()))
    count = X.numel() // X.shape[1]
    mean = X.mean(dims) if count else X.new_zeros(X.shape[1])
    m2 = ((X - mean.view(_channel_shape(X))) ** 2).sum(dims)
    return torch.full_like(mean, count), mean, m2


def merge_stats(counts, means, m2s):
    """Chan et al.'s merge of per-rank statistics, each (R, C) -> the
    global (count, mean, M2), each (C,). No E[x^2] - E[x]^2: stable."""
    count = counts.sum(0)
    mean = (counts * means).sum(0) / count
    m2 = m2s.sum(0) + (counts * (means - mean) ** 2).sum(0)
    return count, mean, m2


def moments_from_sums(count, total, total_sq):
    """The textbook merge of all-reduced (count, sum x, sum x^2) -> (mean,
    M2) with M2 = sum x^2 - (sum x)^2 / count: cancels in float32 when the
    mean is large against the standard deviation."""
    mean = total / count
    return mean, total_sq - total * mean


def _channel_shape(X) -> tuple[int, ...]:
    return (1, X.shape[1]) + (1,) * (X.dim() - 2)


class SyncBatchNormFunction(torch.autograd.Function):
    """BN over the global batch of every rank in ``group`` (see
    :class:`SyncBatchNorm`). Each rank passes its own X (N_r, C, ...)."""

    @staticmethod
    def forward(ctx, X, weight, bias, running_mean, running_var, eps,
                momentum, group):
        shape = _channel_shape(X)
        local = torch.stack(local_stats(X))                  # (3, C)
        gathered = [torch.empty_like(local)
                    for _ in range(dist.get_world_size(group))]
        _collective(dist.all_gather, local, gathered, group=group)
        count, mean, m2 = merge_stats(*torch.stack(gathered).unbind(1))
        if count[0] < 2:
            raise ValueError("Expected more than 1 value per channel when "
                             "training")
        invstd = torch.rsqrt(m2 / count + eps)  # biased variance normalises
        X_hat = (X - mean.view(shape)) * invstd.view(shape)
        if running_mean is not None:  # unbiased: over the global count
            running_mean.lerp_(mean.to(running_mean.dtype), momentum)
            running_var.lerp_((m2 / (count - 1)).to(running_var.dtype),
                              momentum)
        ctx.save_for_backward(X_hat, weight, invstd, count)
        ctx.group = group
        return X_hat * weight.view(shape) + bias.view(shape)

    @staticmethod
    def backward(ctx, dY):
        X_hat, weight, invstd, count = ctx.saved_tensors
        shape, dims = _channel_shape(dY), (0, *range(2, dY.dim()))
        local = torch.stack([dY.sum(dims), (dY * X_hat).sum(dims)])  # (2, C)
        global_ = local.clone()
        _collective(dist.all_reduce, global_, group=ctx.group)
        sum_dy, sum_dy_xhat = (s.view(shape) for s in global_)
        dX = (weight * invstd / count).view(shape) * (
            count.view(shape) * dY - sum_dy - X_hat * sum_dy_xhat)
        # gamma, beta: this rank's share, as nn.SyncBatchNorm (DDP sums them)
        return dX, local[1], local[0], None, None, None, None, None


class SyncBatchNorm(_BatchNorm):
    """Batch normalization with the statistics of the global batch, like
    ``nn.SyncBatchNorm`` (same arguments, state and ``state_dict``), written
    from scratch with ``torch.distributed`` so it runs on CPUs with gloo.

    In training mode inside a process group of 2 or more ranks, every rank
    normalises with the mean and biased variance of all ranks' inputs
    together, and updates the running statistics with them (the unbiased
    variance over the global count); ranks may hold different batch sizes.
    Otherwise (eval mode, one process) it is plain batch normalization.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, process_group=None,
                 device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine,
                         track_running_stats, device=device, dtype=dtype)
        self.process_group = process_group

    def _check_input_dim(self, X):
        if X.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {X.dim()}D "
                             f"input)")

    def forward(self, X):
        """X: (N_r, C, ...) on this rank -> Y, same shape."""
        self._check_input_dim(X)
        if not (self.training and dist.is_initialized()
                and dist.get_world_size(self.process_group) > 1):
            return super().forward(X)
        factor = self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average
                factor = 1.0 / float(self.num_batches_tracked)
        weight = self.weight if self.affine else X.new_ones(X.shape[1])
        bias = self.bias if self.affine else X.new_zeros(X.shape[1])
        return SyncBatchNormFunction.apply(
            X, weight, bias, self.running_mean, self.running_var, self.eps,
            factor, self.process_group)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every BN layer replaced by a :class:`SyncBatchNorm`
        holding the same parameters and buffers (as PyTorch's helper)."""
        if isinstance(module, _BatchNorm):
            sync = cls(module.num_features, module.eps, module.momentum,
                       module.affine, module.track_running_stats,
                       process_group)
            sync.load_state_dict(module.state_dict())
            return sync.to(module.running_mean.device if
                           module.running_mean is not None else None)
        for name, child in module.named_children():
            module.add_module(name, cls.convert_sync_batchnorm(
                child, process_group))
        return module


# --------------------------------------------------------------------------
# Workers run by the chapter, and their single-process references
# --------------------------------------------------------------------------

def _parity_inputs(sizes, num_channels, seed, mean=5.0):
    """The global batch (sum(sizes), C, 4, 4), its output gradient, gamma,
    beta; all ranks draw the same from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    shape = (sum(sizes), num_channels, 4, 4)
    X = mean + 3 * torch.randn(shape, generator=gen)
    dY = torch.randn(shape, generator=gen)
    gamma = 1 + 0.5 * torch.randn(num_channels, generator=gen)
    beta = torch.randn(num_channels, generator=gen)
    return X, dY, gamma, beta


def _parity_outputs(bn, X, dY):
    """Forward and backward of ``bn`` (gamma, beta set) on X with gradient
    dY: output, input gradient, gamma and beta gradients, running stats."""
    X = X.clone().requires_grad_()
    Y = bn(X)
    Y.backward(dY)
    return {"output": Y.detach(), "input grad": X.grad,
            "gamma grad": bn.weight.grad, "beta grad": bn.bias.grad,
            "running mean": bn.running_mean, "running var": bn.running_var}


def _bn_with(num_channels, gamma, beta, cls=nn.BatchNorm2d):
    bn = cls(num_channels)
    with torch.no_grad():
        bn.weight.copy_(gamma)
        bn.bias.copy_(beta)
    return bn


def parity_worker(sizes, num_channels=3, seed=0, steps=2):
    """One rank of the parity check: :class:`SyncBatchNorm` on this rank's
    ``sizes[rank]`` examples of the global batch, ``steps`` times (so the
    running statistics are updated more than once). gamma/beta gradients
    are summed over the ranks, as DDP would."""
    rank = dist.get_rank()
    X, dY, gamma, beta = _parity_inputs(sizes, num_channels, seed)
    lo = sum(sizes[:rank])
    bn = _bn_with(num_channels, gamma, beta, SyncBatchNorm)
    for _ in range(steps):
        bn.zero_grad()
        out = _parity_outputs(bn, X[lo:lo + sizes[rank]],
                              dY[lo:lo + sizes[rank]])
    for name in ("gamma grad", "beta grad"):
        dist.all_reduce(out[name])
    return out


def parity_reference(sizes, num_channels=3, seed=0, steps=2):
    """The same as :func:`parity_worker`, in one process: ``nn.BatchNorm2d``
    on the concatenated batch; output and input gradient split by rank."""
    X, dY, gamma, beta = _parity_inputs(sizes, num_channels, seed)
    bn = _bn_with(num_channels, gamma, beta)
    for _ in range(steps):
        bn.zero_grad()
        out = _parity_outputs(bn, X, dY)
    for name in ("output", "input grad"):
        out[name] = list(out[name].split(list(sizes)))
    return out


def parity_rows(results, reference):
    """``checks.compare`` rows: each quantity, the ranks' results against
    the single-process reference (outputs and input gradients joined)."""
    from bnlesson.checks import compare
    rows = []
    for name, ref in reference.items():
        if isinstance(ref, list):
            got = torch.cat([r[name] for r in results])
            ref = torch.cat(ref)
        else:
            got = results[0][name]
        rows.append(compare(name, got, ref))
    return rows


def rank_batches(num_examples, world_size, rank, batch_size, seed, epoch=0):
    """Rank ``rank``'s mini-batches of indices for one epoch, as
    ``DistributedSampler`` (shuffled by ``seed + epoch``, drop_last) deals
    them: rank r gets every world_size-th index of one permutation."""
    sampler = DistributedSampler(range(num_examples), world_size, rank,
                                 shuffle=True, seed=seed, drop_last=True)
    sampler.set_epoch(epoch)
    idx = torch.tensor(list(sampler))
    return list(idx[:len(idx) // batch_size * batch_size].split(batch_size))


def _net(norm, seed):
    """ReLU LeNet with ``norm`` (``"sync"``: BN converted to
    :class:`SyncBatchNorm`), Xavier weights drawn from ``seed``."""
    from bnlesson.models import init_xavier, lenet
    torch.manual_seed(seed)
    net = init_xavier(lenet("batchnorm" if norm == "sync" else norm,
                            activation="relu"))
    return SyncBatchNorm.convert_sync_batchnorm(net) if norm == "sync" else net


def _train_data(config):
    from bnlesson.data import load_tensors
    X, y = load_tensors(config.get("subset", "mini"), "train")
    n = config["num_train"]
    return X[:n], y[:n]


def train_worker(configs):
    """One rank of data-parallel training, for each config in ``configs``
    (dicts: norm, batch_size per rank, num_steps, lr, seed, num_train,
    broadcast_buffers). LeNet under ``DistributedDataParallel``; the data
    dealt by :func:`rank_batches`. Returns, per config: this rank's final
    ``state_dict``, the loss of each step, seconds per step and the
    seconds / calls / bytes of the sync-BN collectives per step. After
    training, one eval-mode forward through DDP (which first broadcasts
    rank 0's buffers when ``broadcast_buffers``)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    results = []
    for c in configs:
        X, y = _train_data(c)
        net = DistributedDataParallel(
            _net(c["norm"], c["seed"]),
            broadcast_buffers=c.get("broadcast_buffers", True))
        opt = torch.optim.SGD(net.parameters(), lr=c["lr"])
        batches = _batches(len(y), world, rank, c)
        COMM.update(calls=0, bytes=0, seconds=0.0)
        losses = []
        dist.barrier()
        start = time.perf_counter()
        for idx in batches:
            loss = F.cross_entropy(net(X[idx]), y[idx])
            opt.zero_grad()
            loss.backward()  # DDP averages the gradients over the ranks
            opt.step()
            losses.append(loss.item())
        seconds = time.perf_counter() - start
        net.eval()  # DDP broadcasts rank 0's buffers before this forward
        with torch.no_grad():
            net(X[:2])
        results.append({"state": net.module.state_dict(), "losses": losses,
                        "step_seconds": seconds / len(batches),
                        "comm": dict(COMM, seconds=COMM["seconds"]
                                     / len(batches))})
    return results


def _batches(num_examples, world, rank, config):
    """``num_steps`` mini-batches of this rank, epoch after epoch."""
    batches, epoch = [], 0
    while len(batches) < config["num_steps"]:
        batches += rank_batches(num_examples, world, rank,
                                config["batch_size"], config["seed"], epoch)
        epoch += 1
    return batches[:config["num_steps"]]


def train_reference(config, world_size):
    """:func:`train_worker`'s run in one process on the same global batches
    (rank 0's examples first): per-replica BN as ``GhostBatch`` chunks of
    ``batch_size``; ``norm="sync"`` as plain BN over the global batch.
    Returns the trained net and the loss of each step."""
    from bnlesson.models import GhostBatch
    X, y = _train_data(config)
    sync = config["norm"] == "sync"
    net = _net("batchnorm" if sync else config["norm"], config["seed"])
    model = net if sync else GhostBatch(net, config["batch_size"])
    opt = torch.optim.SGD(net.parameters(), lr=config["lr"])
    per_rank = [_batches(len(y), world_size, r, config)
                for r in range(world_size)]
    losses = []
    for parts in zip(*per_rank, strict=True):
        idx = torch.cat(parts)
        loss = F.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net, losses


def fail_worker(rank_to_fail, how="raise"):
    """For tests and the chapter's demo: rank ``rank_to_fail`` raises
    (``how="raise"``), dies (``"exit"``) or hangs (``"hang"``); the others
    wait in a collective that can never complete."""
    if dist.get_rank() == rank_to_fail:
        if how == "raise":
            raise ValueError(f"rank {rank_to_fail} gives up on purpose")
        if how == "exit":
            os._exit(3)
        time.sleep(3600)
    dist.all_reduce(torch.ones(1))
    return dist.get_rank()


def torch_sync_worker(sizes=(3, 5), num_channels=3, seed=0):
    """One rank on GPU ``rank`` (needs one GPU per rank): this module's
    :class:`SyncBatchNorm` and ``nn.SyncBatchNorm`` over an NCCL group on
    the same input; per quantity, (ours, PyTorch's) on the CPU."""
    rank = dist.get_rank()
    device = torch.device("cuda", rank)
    torch.cuda.set_device(device)
    group = dist.new_group(backend="nccl")
    X, dY, gamma, beta = _parity_inputs(sizes, num_channels, seed)
    lo = sum(sizes[:rank])
    X, dY = X[lo:lo + sizes[rank]].to(device), dY[lo:lo + sizes[rank]]
    out = {}
    for cls in (SyncBatchNorm, nn.SyncBatchNorm):
        bn = _bn_with(num_channels, gamma, beta, cls).to(device)
        bn.process_group = group
        for name, value in _parity_outputs(bn, X, dY.to(device)).items():
            out.setdefault(name, []).append(value.cpu())
    return {name: tuple(pair) for name, pair in out.items()}


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def _parity_table(results, sizes) -> str:
    from bnlesson.checks import parity_table
    return (f"sync BN over {len(sizes)} ranks, sizes {list(sizes)}, against "
            f"one-process BN:\n"
            + parity_table(parity_rows(results, parity_reference(sizes))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bnlesson.distributed",
        description="Run the sync-BN parity check (or a worker "
                    "'module:function') in gloo processes on 127.0.0.1.")
    parser.add_argument("-n", "--nprocs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("worker", nargs="?", default=None,
                        help="module:function, called with no arguments; "
                             "default: the parity check")
    args = parser.parse_args(argv)
    if "RANK" in os.environ:  # one rank of torchrun's group
        torch.set_num_threads(1)
        dist.init_process_group("gloo")
        args.nprocs = dist.get_world_size()
    sizes = [3 + r for r in range(args.nprocs)]  # unequal on purpose
    if args.worker:
        module, _, name = args.worker.partition(":")
        worker, wargs = getattr(importlib.import_module(module), name), ()
    else:  # this module's own function, not __main__'s copy of it
        worker = importlib.import_module("bnlesson.distributed").parity_worker
        wargs = (sizes,)
    if "RANK" in os.environ:
        result = worker(*wargs)
        gathered = [None] * args.nprocs
        dist.all_gather_object(gathered, result)
        dist.destroy_process_group()
        results = gathered
        if int(os.environ["RANK"]) != 0:
            return 0
    else:
        try:
            results = launch(worker, args.nprocs, *wargs,
                             timeout=args.timeout)
        except WorkerError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    print(_parity_table(results, sizes) if not args.worker else results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
