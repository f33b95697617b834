"""The chapter contract that a script can check (CONTRIBUTING.md): the
closing sections, a lean reading path, lean stored outputs."""
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks")
                   .glob("[0-9][0-9]_*.ipynb"))
HEADINGS = ("## Summary", "## 小结", "## Exercises", "## Further reading")
MAX_LINES = 25  # a visible code cell
MAX_BYTES = 1_000_000


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_closes_with_summary_exercises_and_reading(path):
    lines = [line.strip() for c in _cells(path) if c["cell_type"] == "markdown"
             for line in "".join(c["source"]).splitlines()]
    found = [h for h in HEADINGS if h in lines]
    missing = set(HEADINGS) - set(found)
    assert found == list(HEADINGS), f"{path.name}: missing {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_long_visible_code_cell(path):
    long = []
    for i, cell in enumerate(_cells(path)):
        meta = cell["metadata"]
        hidden = meta.get("jupyter", {}).get("source_hidden", False)
        answer = meta.get("nbgrader", {}).get("solution", False)
        lines = "".join(cell["source"]).count("\n") + 1
        if cell["cell_type"] == "code" and not hidden and not answer \
                and lines > MAX_LINES:
            long.append((i, lines))
    assert not long, (f"{path.name}: visible code cells over {MAX_LINES} "
                      f"lines (cell, lines): {long}; split them or collapse "
                      "a pure check")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_outputs_are_lean(path):
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is over 1 MB"
    text = path.read_text(encoding="utf-8")
    assert "application/vnd.jupyter.widget-state+json" not in text
    assert '"image/svg+xml"' not in text, f"{path.name}: store figures as PNG"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_code_cell_was_executed(path):
    """nbval does not compare a cell stored without an execution count (and
    fails one that has outputs): re-execute after adding or splitting one."""
    unrun = [i for i, c in enumerate(_cells(path))
             if c["cell_type"] == "code" and c.get("execution_count") is None]
    assert not unrun, f"{path.name}: code cells stored unexecuted: {unrun}"
