"""The regression run still catches real regressions.

A copy of chapter 02 is mutated the way a regression would change it (a
claim that breaks, a changed or missing line of text, a new warning, a
figure that disappears, numbers that move too far) and run through the
same `pytest --nbval` as `make test`: exactly the mutated cells must fail.
The tolerance logic itself is checked without a kernel below.
"""
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from nbval_numeric import compared_texts, reconcile, within

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "notebooks" / "02_batch_norm_from_scratch.ipynb"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cell(nb, needle, where="output"):
    """Index of the first code cell whose stored output (or source) holds
    ``needle``."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        text = cell.source if where == "source" else "".join(
            o.get("text", "") + o.get("data", {}).get("text/plain", "")
            for o in cell.outputs)
        if needle in text:
            return i
    raise LookupError(f"no cell with {needle!r} in its {where}")


def _replace_output(cell, old, new):
    for out in cell.outputs:
        if old in out.get("text", ""):
            out["text"] = out["text"].replace(old, new, 1)
            return
    raise LookupError(old)


def _mutate(nb):
    """Apply one regression per cell; return {cell index: what changed}."""
    mutated = {}
    i = _cell(nb, "images (128, 1, 28, 28)")  # a claim breaks
    nb.cells[i].source += "\nassert False, 'a claim broke'"
    mutated[i] = "cell raises"
    i = _cell(nb, "each over N = 128 values")  # a label changed
    _replace_output(nb.cells[i], "each over", "each across")
    mutated[i] = "label changed"
    i = _cell(nb, "BatchNorm1d beta after SGD")  # a table row vanished
    cell = nb.cells[i]
    for out in cell.outputs:
        out["text"] = re.sub(r"BatchNorm1d beta after SGD[^\n]*\n", "",
                             out.get("text", ""))
    mutated[i] = "row disappeared"
    i = _cell(nb, "FC output:   |mean| per feature")  # a new warning
    nb.cells[i].source += "\nimport warnings; warnings.warn('new warning')"
    mutated[i] = "new stderr"
    i = _cell(nb, "plt.show()", where="source")  # a figure vanished
    nb.cells[i].source = nb.cells[i].source.replace("plt.show()",
                                                    "plt.close('all')")
    mutated[i] = "figure disappeared"
    i = _cell(nb, "conv: bnlesson vs F.batch_norm")  # e.g. 1e-07 -> 1e-03
    out = nb.cells[i].outputs[0]
    line = re.search(r"conv: bnlesson vs F.batch_norm[^\n]*", out["text"])[0]
    out["text"] = out["text"].replace(line, re.sub(
        r"<= 1e([-+]\d+)", lambda m: f"<= 1e{int(m[1]) + 4:+03d}", line))
    mutated[i] = "parity error grew 10^4-fold"
    i = _cell(nb, "std of output")  # a value 20 points off (channel 1)
    _replace_output(nb.cells[i], "1.000  -0.500", "0.800  -0.500")
    mutated[i] = "value moved by 0.2"
    return mutated


def test_mutated_chapter_fails_exactly_where_mutated(tmp_path):
    nb = nbformat.read(CHAPTER, as_version=4)
    mutated = _mutate(nb)
    copy = tmp_path / CHAPTER.name
    nbformat.write(nb, copy)
    report = tmp_path / "report.xml"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), "-p", "nbval_numeric", "-q",
         f"--junitxml={report}", str(copy)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    failed = set()
    for case in ET.parse(report).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(int(re.search(r"Cell (\d+)", case.get("name"))[1]))
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    # nbval names a cell by its index among the code cells
    expected = {code_cells.index(i) for i in mutated}
    assert failed == expected, (
        f"expected failures {sorted(mutated.items())} (code cells "
        f"{sorted(expected)}), got {sorted(failed)}\n{done.stdout[-3000:]}")
    assert len(code_cells) > len(mutated) + 5  # the rest of the chapter passed


@pytest.mark.parametrize("ref, new, tol, ok", [
    ("0.516", "0.507", {"abs": 0.01}, True),
    ("0.516", "0.316", {"abs": 0.05}, False),   # accuracy drops 20 points
    ("1e-07", "1e-06", {"decades": 1}, True),
    ("1e-07", "1e-03", {"decades": 3}, False),  # parity error grew 10^4
    ("0", "1e-07", {"zero": 1e-06}, True),
    ("0", "<= 1e-07", {"zero": 1e-06}, True),  # a bound, printed as 0
    ("<= 1e-07", "<= 1e-06", {"decades": 1}, True),
    ("0", "1e-05", {"zero": 1e-06}, False),
    ("42", "43", {"abs": 5}, False),            # whole numbers: "int"
    ("42", "43", {"int": 1}, True),
    ("3.2e-07", "-3.2e-07", {"decades": 1}, False),   # sign flipped
    ("0", "1e-07", {"decades": 9}, False),      # 0 is no power of ten
    ("0.516", "0.507", {}, False),              # no tolerance: exact
])
def test_within(ref, new, tol, ok):
    assert within(ref, new, tol) == ok


def test_reconcile_keeps_text_exact():
    tol = {"abs": 0.05}
    assert reconcile("acc 0.51 loss 1.20", "acc 0.53 loss 1.22", tol) == \
        "acc 0.51 loss 1.20"
    # the number that moved too far stays, so nbval's diff shows it
    assert reconcile("acc 0.51 loss 1.20", "acc 0.53 loss 1.90", tol) == \
        "acc 0.51 loss 1.90"
    # changed text: nothing is reconciled, nbval reports the difference
    assert reconcile("acc 0.51", "accuracy 0.53", tol) == "accuracy 0.53"
    assert reconcile("acc 0.51", "acc 0.53 0.1", tol) == "acc 0.53 0.1"
    # numbers inside names are text: conv1 vs conv2 is a change
    assert reconcile("conv1 0.5", "conv2 0.5", {"abs": 5}) == "conv2 0.5"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_tolerances_still_catch_regressions(path):
    """No stored tolerance lets an accuracy move 20 points (0.2, or 20 in a
    table in %) or an error magnitude grow 10^4-fold unnoticed. (Other
    chaotic quantities, e.g. a seed's weight norm, may move further.)"""
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        tol = cell.metadata.get("nbval_tolerance", {})
        assert set(tol) <= {"abs", "int", "decades", "zero"}, f"cell {i}"
        if cell.cell_type != "code":
            continue
        text = "".join(t for _, t in compared_texts(cell) or [])
        if "acc" in text or "error (%)" in text:
            assert tol.get("abs", 0) < (20 if "%" in text else 0.2), \
                f"cell {i}: {tol}"
        assert tol.get("decades", 0) < 4, f"cell {i}: {tol}"
