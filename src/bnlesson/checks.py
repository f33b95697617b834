"""Numerical comparisons that the chapters print and assert.

* :func:`compare` is Karpathy's ``cmp`` (makemore part 4): is a result
  exactly equal to a reference, close within a stated tolerance, and how far
  off at most; :func:`parity_table` prints a list of them.
* :func:`rel_error` is a relative error in the spirit of cs231n's
  ``rel_error``, scaled by the largest magnitude, so that entries near zero
  (where float rounding dominates) do not blow it up.
* :func:`forbidden` is for the graded tasks' tests: it runs a student's
  function with the reference implementations unavailable, so an answer
  that calls ``F.batch_norm`` or the library's own version fails.

Printed differences are rounded UP to a power of ten (:func:`diff_bound`,
e.g. ``"<= 1e-07"``): the last bits of a float result depend on the CPU's
vector instructions and thread count, so a raw maximum difference would not
reproduce digit for digit on another machine, while its order of magnitude
does.
"""
from __future__ import annotations

import contextlib
import importlib
import math
from dataclasses import dataclass

import torch

__all__ = ["AUTOGRAD_FUNCTIONS", "Comparison", "NORM_FUNCTIONS",
           "RUNNING_FUNCTIONS", "compare", "diff_bound", "forbidden",
           "parity_table", "rel_error"]


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


# --------------------------------------------------------------------------
# Graded tasks: answers must not call the reference implementation
# --------------------------------------------------------------------------
#: PyTorch's normalization functions (``nn.BatchNorm2d`` & co. call them) and
#: the library's own versions.
NORM_FUNCTIONS = (
    "torch.nn.functional.batch_norm", "torch.nn.functional.layer_norm",
    "torch.nn.functional.instance_norm", "torch.nn.functional.group_norm",
    "torch.batch_norm", "torch.layer_norm", "torch.instance_norm",
    "torch.group_norm", "torch.native_batch_norm", "torch.native_layer_norm",
    "torch.native_group_norm",
    "bnlesson.norms.batch_norm", "bnlesson.norms.batch_norm_closed_form",
    "bnlesson.norms.BatchNormFunction.apply",
    "bnlesson.norms.BatchNormFunction.backward",
    "bnlesson.norms.layer_norm", "bnlesson.norms.instance_norm",
    "bnlesson.norms.group_norm", "bnlesson.norms.NORM_AXES",
)
#: Ways of letting autograd compute a gradient.
AUTOGRAD_FUNCTIONS = (
    "torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward",
    "torch.autograd.functional.vjp", "torch.autograd.functional.jacobian",
    "torch.func.grad", "torch.func.vjp", "torch.func.jacrev",
)
#: The library's recursive estimators (chapter 05).
RUNNING_FUNCTIONS = (
    "bnlesson.running.cumulative_mean", "bnlesson.running.ema",
    "bnlesson.running.gain_filter", "bnlesson.running.kalman_1d",
)


_MISSING = object()


class _Unavailable:
    """Stands in for a forbidden function or value: any use raises."""

    def __init__(self, name):
        self._name = name

    def _refuse(self, *args, **kwargs):
        raise RuntimeError(f"{self._name} is not available in this task: "
                           "compute the result yourself")

    __call__ = __getitem__ = __iter__ = __len__ = _refuse

    def __getattr__(self, attr):
        self._refuse()


def _owner(name):
    """(object holding the attribute, attribute name) for a dotted name."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:-1]:
            owner = getattr(owner, part)
        return owner, parts[-1]
    raise ValueError(f"no module in {name!r}")


@contextlib.contextmanager
def forbidden(names, namespace=None):
    """While the block runs, the functions (or values) at the dotted
    ``names`` raise ``RuntimeError`` when used.

    A test calls the student's function inside the block, so an answer that
    calls a reference implementation fails, with a message naming it. Names
    in ``namespace`` (the notebook's ``globals()``) bound to the same objects
    are replaced too, so ``from torch.nn.functional import batch_norm`` does
    not get around it. Everything is restored afterwards.
    """
    saved = []  # (module, class or dict; key; original, or _MISSING)
    try:
        for name in names:
            owner, attr = _owner(name)
            current = getattr(owner, attr)
            stand_in = _Unavailable(name)
            # a class attribute may be inherited: restore it by deleting ours
            own = vars(owner).get(attr, _MISSING)
            saved.append((owner, attr, own))
            setattr(owner, attr, stand_in)
            for key, value in list((namespace or {}).items()):
                if value is current or (callable(value) and value == current):
                    saved.append((namespace, key, value))
                    namespace[key] = stand_in
        yield
    finally:
        for owner, key, original in reversed(saved):
            if isinstance(owner, dict):
                owner[key] = original
            elif original is _MISSING:
                delattr(owner, key)
            else:
                setattr(owner, key, original)
