"""Student versions built with nbgrader, and the tests that grade them.

For every chapter with graded cells:
- the student version holds no solution code, no hidden tests, no outputs;
  every answer cell raises NotImplementedError (or asks for a written
  answer) and test cells are locked;
- executing the student version, every graded test cell fails;
- putting the reference solutions back makes every graded test pass (round
  trip), and each typical wrong answer in ``tests/wrong_answers/<chapter>.py``
  fails the test of the answer it replaces.
"""
import copy
import re
import runpy
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader")

from bnlesson import assignments as asg  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WRONG = Path(__file__).resolve().parent / "wrong_answers"
CHAPTERS = asg.graded_chapters(NOTEBOOKS)
ids = [p.stem for p in CHAPTERS]
BEGIN_MARKERS = ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS")
END_MARKERS = ("### END SOLUTION", "### END HIDDEN TESTS")


def _solution_lines(source_nb):
    """Non-trivial lines between the solution markers of the source."""
    lines = []
    for cell in source_nb.cells:
        inside = False
        for line in cell.source.splitlines():
            code = line.strip()
            if any(marker in code for marker in BEGIN_MARKERS):
                inside = True
            elif any(marker in code for marker in END_MARKERS):
                inside = False
            elif inside and len(code) > 12 and not code.startswith("#"):
                lines.append(code)
    return lines


# --------------------------------------------------------------------------
# fast checks on a tiny notebook (no kernel)
# --------------------------------------------------------------------------
def _tiny():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}

    def meta(grade_id, solution, grade, points=None):
        m = {"grade_id": grade_id, "solution": solution, "grade": grade,
             "locked": not solution, "schema_version": 3}
        if points is not None:
            m["points"] = points
        return {"nbgrader": m}

    nb.cells = [
        nbformat.v4.new_code_cell(
            "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
            "    ### END SOLUTION", metadata=meta("double", True, False)),
        nbformat.v4.new_code_cell(
            "assert double(2) == 4\n### BEGIN HIDDEN TESTS\n"
            "assert double(-3) == -6\n### END HIDDEN TESTS",
            metadata=meta("test_double", False, True, 2)),
        nbformat.v4.new_markdown_cell(
            "Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
            metadata=meta("why", True, True, 1)),
    ]
    return nb


def test_student_version_of_tiny_notebook():
    source = _tiny()
    student = asg.student_version(source)
    assert "return 2 * x" in source.cells[0].source  # source untouched
    assert "raise NotImplementedError()" in student.cells[0].source
    assert "return 2 * x" not in student.cells[0].source
    assert "double(-3)" not in student.cells[1].source
    assert student.cells[1].metadata["editable"] is False
    assert "YOUR ANSWER HERE" in student.cells[2].source
    assert asg.points(student) == {"test_double": 2.0, "why": 1.0}
    assert [(t.grade_id, t.answer_indices) for t in asg.tasks(student)] == \
        [("test_double", [0])]


def test_merge_answers_keeps_hidden_tests_and_rejects_foreign_notebook():
    source = _tiny()
    student = asg.student_version(source)
    merged = asg.merge_answers(source, student)
    assert "raise NotImplementedError()" in merged.cells[0].source
    assert "double(-3)" in merged.cells[1].source
    with pytest.raises(ValueError, match="no answer cell 'double'"):
        asg.merge_answers(source, nbformat.v4.new_notebook())


# --------------------------------------------------------------------------
# the chapters
# --------------------------------------------------------------------------
def test_some_chapters_are_graded():
    assert CHAPTERS, "no chapter notebook carries nbgrader cells"


@pytest.mark.parametrize("path", CHAPTERS, ids=ids)
def test_student_version_is_clean(path):
    source = nbformat.read(path, as_version=4)
    student = asg.student_version(source)
    text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    for line in _solution_lines(source):
        assert line not in text, f"solution line leaked: {line!r}"
    for cell in student.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None
        if asg.is_answer(cell):
            stub = ("raise NotImplementedError()" if cell.cell_type == "code"
                    else "YOUR ANSWER HERE")
            assert stub in cell.source, asg.nbgrader_meta(cell)["grade_id"]
        if asg.is_test(cell):
            assert cell.metadata.get("editable") is False
    meta = [asg.nbgrader_meta(c) for c in source.cells if asg.nbgrader_meta(c)]
    assert all(m["schema_version"] == asg.NBGRADER_SCHEMA for m in meta)
    grade_ids = [m["grade_id"] for m in meta]
    assert len(set(grade_ids)) == len(grade_ids), "duplicate grade_id"
    assert any(asg.is_manual(c) for c in source.cells), "no written question"
    assert all(t.answer_indices for t in asg.tasks(source))


@pytest.mark.parametrize("path", CHAPTERS, ids=ids)
def test_executed_student_version_fails_every_test(path):
    student = asg.student_version(nbformat.read(path, as_version=4))
    asg.execute(student, path.parent)
    failed = {gid for gid, (got, _) in asg.score(student).items() if got == 0}
    assert failed == {t.grade_id for t in asg.tasks(student)}


@pytest.mark.parametrize("path", CHAPTERS, ids=ids)
def test_round_trip_and_wrong_answers(path):
    """Reference solutions put back into the student version pass every
    test (hidden ones included); each typical wrong answer fails."""
    source = nbformat.read(path, as_version=4)
    student = asg.student_version(source)
    reference = {asg.nbgrader_meta(c)["grade_id"]: c.source
                 for c in source.cells if asg.is_answer(c)}
    for cell in student.cells:
        if asg.is_answer(cell):
            cell.source = reference[asg.nbgrader_meta(cell)["grade_id"]]
    graded = asg.merge_answers(source, student)

    wrong_file = WRONG / f"{path.stem}.py"
    wrong = (runpy.run_path(str(wrong_file))["WRONG"]
             if wrong_file.exists() else {})
    task_of = {i: t for t in asg.tasks(graded) for i in [t.test_index]}
    answer_ids = {asg.nbgrader_meta(c)["grade_id"]
                  for c in graded.cells if asg.is_answer(c)}
    assert set(wrong) <= answer_ids, "wrong answers for unknown answer cells"
    checked = set()

    from nbclient import NotebookClient
    client = NotebookClient(graded, kernel_name="python3", timeout=1200,
                            allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        for i, cell in enumerate(graded.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, i)
            if i not in task_of:
                continue
            task = task_of[i]
            assert not asg.cell_failed(cell), \
                f"{task.grade_id} fails with the reference"
            for a in task.answer_indices:
                gid = asg.nbgrader_meta(graded.cells[a])["grade_id"]
                for label, code in wrong.get(gid, {}).items():
                    probe = nbformat.v4.new_code_cell(code)
                    client.execute_cell(probe, i)
                    test = copy.deepcopy(cell)
                    client.execute_cell(test, i)
                    assert asg.cell_failed(test), \
                        f"{task.grade_id} accepts the wrong answer {label!r}"
                    checked.add(gid)
                    for b in task.answer_indices:  # restore the reference
                        client.execute_cell(copy.deepcopy(graded.cells[b]), b)
            again = copy.deepcopy(cell)
            client.execute_cell(again, i)
            assert not asg.cell_failed(again), task.grade_id
    assert checked == set(wrong)
    assert all(got == possible for got, possible in asg.score(graded).values())


def test_build_writes_course_folder(tmp_path):
    released = asg.build(tmp_path, NOTEBOOKS)
    assert {p.parent.name for p in released} == set(ids)
    for p in released:
        assert (tmp_path / "source" / p.parent.name / p.name).is_file()
        assert not re.search(r"BEGIN (SOLUTION|HIDDEN TESTS)", p.read_text())
    assert (tmp_path / "nbgrader_config.py").is_file()
    assert not list(tmp_path.rglob("*.part"))
