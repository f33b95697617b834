"""Batch norm with a closed-form backward pass against autograd.

    python benchmarks/bench_bn.py             # exit 1 if the check fails
    python benchmarks/bench_bn.py --no-check  # only report

For each shape, one forward and one backward pass (given dY) of:

* ``closed form``: ``bnlesson.norms.batch_norm_closed_form``, which saves
  one tensor of X's size (x_hat) for its written-out backward;
* ``autograd``: the lecture's formula (``bnlesson.norms.batch_norm``,
  batch statistics) differentiated by autograd, which keeps every
  intermediate tensor it needs;
* ``F.batch_norm``: PyTorch's fused kernel, for reference.

Reported per implementation: time per call, the fastest of ``--repeat``
blocks of back-to-back calls (information only, no target), and peak extra
memory: the most memory the pass holds on top of what existed before it
(X, gamma, beta, dY), X.grad included. On CUDA from the allocator's peak
statistics; on the CPU from the profiler's allocation events
(``profile_memory=True``), summed in time order.

Check: the closed form needs less extra memory than autograd, per shape.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# The profiler's C++ side logs every start and stop to stderr unless told
# otherwise; this must be set before torch is imported.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from bnlesson.norms import batch_norm, batch_norm_closed_form  # noqa: E402

SHAPES = [(256, 120), (256, 16, 8, 8), (64, 64, 56, 56)]


def autograd_formula(X, gamma, beta):
    """The lecture's batch_norm in training mode, through autograd."""
    shape = (1, -1) + (1,) * (X.dim() - 2)  # (1, C) or (1, C, 1, 1)
    gamma, beta = gamma.view(shape), beta.view(shape)
    unused = torch.zeros_like(gamma)  # the moving statistics
    Y, _, _ = batch_norm(X, gamma, beta, unused, unused, 1e-5, 0.9,
                         training=True)
    return Y


IMPLEMENTATIONS = {
    "closed form": batch_norm_closed_form,
    "autograd": autograd_formula,
    "F.batch_norm": lambda X, gamma, beta: F.batch_norm(
        X, None, None, gamma, beta, training=True),
}


def make_inputs(shape, device):
    """X (shape), gamma and beta (C,), all requiring grad; dY like X."""
    gen = torch.Generator().manual_seed(0)
    X = (3 * torch.randn(shape, generator=gen) + 1).to(device)
    C = shape[1]
    gamma = (torch.rand(C, generator=gen) + 0.5).to(device)
    beta = torch.randn(C, generator=gen).to(device)
    dY = torch.randn(shape, generator=gen).to(device)
    return [t.requires_grad_() for t in (X, gamma, beta)], dY


def forward_backward(fn, inputs, dY) -> None:
    for t in inputs:
        t.grad = None
    fn(*inputs).backward(dY)


def seconds(fn, inputs, dY, calls: int) -> float:
    """Mean seconds per call over ``calls`` back-to-back calls."""
    if dY.is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        forward_backward(fn, inputs, dY)
    if dY.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / calls


def peak_extra_bytes(fn, inputs, dY) -> int:
    """Peak bytes allocated during one forward + backward, over the start."""
    for t in inputs:
        t.grad = None
    if dY.is_cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        forward_backward(fn, inputs, dY)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with profile(activities=[ProfilerActivity.CPU],
                 profile_memory=True) as prof:
        forward_backward(fn, inputs, dY)
    events = sorted((e for e in prof.profiler.kineto_results.events()
                     if e.name() == "[memory]"), key=lambda e: e.start_ns())
    current = peak = 0
    for event in events:  # nbytes: + for an allocation, - for a free
        current += event.nbytes()
        peak = max(peak, current)
    return peak


def measure(device, repeat: int) -> dict:
    """{shape: {implementation: (seconds per call, peak extra bytes)}}.

    One timing is a block of back-to-back calls (about 2 million elements
    in all, so small shapes run hot, as in a training loop); the fastest of
    ``repeat`` blocks counts. Rounds go over every shape and implementation
    in turn, so the blocks of one measurement spread over the whole run.
    """
    inputs = {shape: make_inputs(shape, device) for shape in SHAPES}
    calls = {shape: max(1, 2_000_000 // inputs[shape][1].numel())
             for shape in SHAPES}
    times = {(shape, name): [] for shape in SHAPES for name in IMPLEMENTATIONS}
    for _ in range(repeat + 1):  # the first round warms up
        for shape in SHAPES:
            for name, fn in IMPLEMENTATIONS.items():
                times[shape, name].append(
                    seconds(fn, *inputs[shape], calls[shape]))
    return {shape: {name: (min(times[shape, name][1:]),
                           peak_extra_bytes(fn, *inputs[shape]))
                    for name, fn in IMPLEMENTATIONS.items()}
            for shape in SHAPES}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-check", action="store_true",
                        help="report only; do not fail the memory check")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=20,
                        help="timed blocks per measurement (fastest counts)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    print(f"forward + backward, {torch.get_num_threads()} threads, {device},"
          f" best of {args.repeat} blocks; ms per call, extra MiB")
    names = list(IMPLEMENTATIONS)
    print(f"{'shape':18s} " + " ".join(f"{name:>21s}" for name in names))
    failed = []
    for shape, result in measure(device, args.repeat).items():
        ours, theirs = result["closed form"][1], result["autograd"][1]
        ok = ours < theirs
        if not ok:
            failed.append(str(shape))
        cells = [f"{ms * 1e3:9.3f} ms {mem / 2**20:7.2f}"
                 for ms, mem in result.values()]
        print(f"{str(shape):18s} " + " ".join(f"{c:>21s}" for c in cells)
              + f"  memory closed/autograd {ours / theirs:.2f}"
              + ("" if ok else "  FAILED"), flush=True)
    if failed and not args.no_check:
        print(f"the closed form does not use less extra memory than "
              f"autograd for: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
