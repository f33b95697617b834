"""Numerical comparisons that the chapters print and assert.

* :func:`compare` is Karpathy's ``cmp`` (makemore part 4): is a result
  exactly equal to a reference, close within a stated tolerance, and how far
  off at most; :func:`parity_table` prints a list of them.
* :func:`rel_error` is a relative error in the spirit of cs231n's
  ``rel_error``, scaled by the largest magnitude, so that entries near zero
  (where float rounding dominates) do not blow it up.

Printed differences are rounded UP to a power of ten (:func:`diff_bound`,
e.g. ``"<= 1e-07"``): the last bits of a float result depend on the CPU's
vector instructions and thread count, so a raw maximum difference would not
reproduce digit for digit on another machine, while its order of magnitude
does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Comparison", "compare", "diff_bound", "parity_table", "rel_error"]


@dataclass(frozen=True)
class Comparison:
    """One row of a parity table (see :func:`compare`)."""
    name: str
    exact: bool
    close: bool
    max_diff: float
    atol: float
    rtol: float


def _as_float64(t) -> torch.Tensor:
    return torch.as_tensor(t).detach().to("cpu", torch.float64)


def compare(name: str, a, b, atol: float = 1e-5,
            rtol: float = 1e-5) -> Comparison:
    """Compare a result ``a`` with a reference ``b`` (tensors or numbers of
    the same shape).

    ``exact``: equal bit for bit (after moving both to the CPU);
    ``close``: ``|a - b| <= atol + rtol * |b|`` elementwise (computed in
    float64); ``max_diff``: the largest ``|a - b|``.
    """
    a64, b64 = _as_float64(a), _as_float64(b)
    if a64.shape != b64.shape:
        raise ValueError(
            f"{name}: shapes differ, {tuple(a64.shape)} vs "
            f"{tuple(b64.shape)}; compare tensors of the same shape")
    exact = torch.equal(torch.as_tensor(a).detach().cpu(),
                        torch.as_tensor(b).detach().cpu())
    max_diff = (a64 - b64).abs().max().item() if a64.numel() else 0.0
    close = bool(torch.allclose(a64, b64, atol=atol, rtol=rtol))
    return Comparison(name, exact, close, max_diff, atol, rtol)


def diff_bound(x: float, floor: float = 0.0) -> str:
    """``x >= 0`` rounded up to a power of ten, as text: ``0.0 -> "0"``,
    ``3.2e-07 -> "<= 1e-06"``, ``1e-06 -> "<= 1e-06"``; a nonzero ``x``
    below ``floor`` (a rounding level, which differs between CPUs) prints
    as ``floor``'s bin."""
    if math.isnan(x):
        return "nan"
    if x < 0:
        raise ValueError(f"diff_bound expects a difference >= 0, got {x}")
    if x == 0:
        return "0"
    if math.isinf(x):
        return "inf"
    exponent = math.ceil(math.log10(max(x, floor)))
    return f"<= 1e{exponent:+03d}"


def parity_table(rows, floor: float = 0.0) -> str:
    """A printable table of :class:`Comparison` rows: quantity, allclose
    with its tolerance, and the maximum difference (rounded up to a power of
    ten, see :func:`diff_bound`; "0" when exact). Whether two different
    implementations agree bit for bit depends on the CPU, so no column
    says "exact"; assert ``Comparison.exact`` where it is the claim."""
    rows = list(rows)
    width = max([len("quantity")] + [len(r.name) for r in rows])
    lines = [f"{'quantity':{width}s} | allclose (atol, rtol) | max |diff|",
             "-" * (width + 42)]
    for r in rows:
        tol = f"({r.atol:.0e}, {r.rtol:.0e})"
        lines.append(f"{r.name:{width}s} | {str(r.close):5s} {tol:15s} | "
                     f"{diff_bound(r.max_diff, floor)}")
    return "\n".join(lines)


def rel_error(a, b) -> float:
    """``max |a - b| / max(max |a|, max |b|)``: the largest error relative to
    the tensors' scale (0.0 when both are all zeros)."""
    a64, b64 = _as_float64(a), _as_float64(b)
    if a64.shape != b64.shape:
        raise ValueError(
            f"shapes differ, {tuple(a64.shape)} vs {tuple(b64.shape)}")
    if not a64.numel():
        return 0.0
    scale = max(a64.abs().max().item(), b64.abs().max().item())
    if scale == 0:
        return 0.0
    return (a64 - b64).abs().max().item() / scale
