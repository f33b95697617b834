"""nbval, with numbers compared to a tolerance stored in the cell.

Strict nbval compares every output as exact text. Another CPU or thread
count changes the last digits of a trained network's numbers, so a cell may
carry, in its metadata, how far its printed numbers may move::

    "nbval_tolerance": {"abs": 0.02, "int": 1, "decades": 1, "zero": 1e-06}

- ``abs``: numbers with a decimal point (``0.516``) may differ by this much;
- ``int``: whole numbers (``42``) by this much;
- ``decades``: numbers in e-notation (``3.2e-07``, ``<= 1e-06``) by this
  power of ten (1: 1e-07 may print as 1e-06, not as 1e-05);
- ``zero``: an exact ``0`` may print as an e-notation number up to this.

Everything else is compared exactly, as nbval does: the text around the
numbers (labels, columns, rows, lines; only the width of runs of spaces,
which a wider number shifts, may change), how many numbers there are,
stderr, which outputs exist (a figure that disappears). Cells without the
key are exact. The tolerances are measured, not guessed: ``tests/spread.py``.

How: before nbval compares a cell, each new number within tolerance of the
stored one is replaced by the stored text, so nbval's own comparison and
diff report what is left, i.e. exactly the numbers that moved too far.
"""
from __future__ import annotations

import copy
import math
import re

from nbval.plugin import IPyNbCell

#: A number that is not part of a name (``conv1``, ``K_200``, ``x100``),
#: with the "<= " of a bound (``<= 1e-06``, which may also print as ``0``).
NUMBER = re.compile(
    r"(?<![\w.])(?:<= )?[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
KEY = "nbval_tolerance"
#: Outputs nbval does not compare (figures as PNG, widget ids).
NOT_COMPARED = ("image/png", "image/jpeg",
                "application/vnd.jupyter.widget-view+json")


def split_numbers(text: str) -> tuple[list[str], list[str]]:
    """The text between the numbers, and the numbers, both as strings."""
    return NUMBER.split(text), NUMBER.findall(text)


def same_text(a: list[str], b: list[str]) -> bool:
    """Whether two lists of text pieces agree, up to the width of spaces."""
    return [re.sub(" +", " ", x) for x in a] == \
        [re.sub(" +", " ", x) for x in b]


def value(number: str) -> float:
    """The value of a printed number (a bound ``<= x`` counts as x)."""
    return float(number.removeprefix("<= "))


def kind(number: str) -> str:
    """How a printed number is compared: "decades", "int" or "abs"."""
    if "e" in number.lower():
        return "decades"
    return "abs" if "." in number else "int"


def within(ref: str, new: str, tol: dict) -> bool:
    """Whether the printed number ``new`` is within ``tol`` of ``ref``."""
    if ref == new:
        return True
    x, y = value(ref), value(new)
    if "decades" in (kind(ref), kind(new)):
        if x == 0 or y == 0:
            return abs(x + y) <= tol.get("zero", 0)
        return (x > 0) == (y > 0) and \
            abs(math.log10(x / y)) <= tol.get("decades", 0) + 1e-9
    return abs(x - y) <= tol.get(kind(ref), 0) * (1 + 1e-9)


def reconcile(ref: str, new: str, tol: dict) -> str:
    """``new`` with each number that is within ``tol`` of ``ref``'s number
    at the same place written as in ``ref``; unchanged if the text around
    the numbers differs."""
    ref_text, ref_nums = split_numbers(ref)
    new_text, new_nums = split_numbers(new)
    if not same_text(ref_text, new_text):
        return new
    out = [ref_text[0]]
    for r, n, text in zip(ref_nums, new_nums, ref_text[1:], strict=True):
        out += [r if within(r, n, tol) else n, text]
    return "".join(out)


def _texts(outputs):
    """(key, text) of every compared text output, in nbval's order."""
    for out in outputs:
        if out.get("output_type") == "stream":
            yield out["name"], out, "text"
        for mime, value in out.get("data", {}).items():
            if mime not in NOT_COMPARED and isinstance(value, str):
                yield mime, out["data"], mime


def compared_texts(cell):
    """[(key, text)] of a cell's compared outputs; None if nbval ignores
    the cell's output."""
    tags = cell.metadata.get("tags", [])
    markers = ("NBVAL_IGNORE_OUTPUT", "NBVAL_SKIP")
    if {"nbval-ignore-output", "nbval-skip"} & set(tags) or \
            any(m in cell.source for m in markers):
        return None
    streams, data = {}, []  # nbval joins a cell's streams by name
    for key, holder, field in _texts(cell.outputs):
        if field == "text":
            streams[key] = streams.get(key, "") + holder[field]
        else:
            data.append((key, holder[field]))
    return list(streams.items()) + data


_compare_outputs = IPyNbCell.compare_outputs


def compare_outputs(self, test, ref, skip_compare=None):
    tol = self.cell.metadata.get(KEY)
    if tol:
        test = copy.deepcopy(test)
        refs = {}
        for key, holder, field in _texts(ref):
            refs.setdefault(key, []).append(holder[field])
        for key, holder, field in _texts(test):
            if refs.get(key):
                holder[field] = reconcile(refs[key].pop(0), holder[field], tol)
    return _compare_outputs(self, test, ref, skip_compare)


IPyNbCell.compare_outputs = compare_outputs
