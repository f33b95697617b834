"""Student versions of the chapters, and grading, with nbgrader's own tools.

The chapter notebooks in ``notebooks/`` are the *solution* (source)
versions: graded tasks are marked with nbgrader's conventions
(``### BEGIN SOLUTION`` / ``### END SOLUTION``, ``### BEGIN HIDDEN TESTS`` /
``### END HIDDEN TESTS`` and ``metadata.nbgrader``, schema version 3).

    python -m bnlesson.assignments            # = make assignments
    python -m bnlesson.assignments grade SUBMITTED.ipynb

``make assignments`` writes an nbgrader course folder to
``build/assignments/``: ``source/<chapter>/`` (solution copies, what
``nbgrader generate_assignment`` and ``nbgrader autograde`` read) and
``release/<chapter>/`` (student versions, made here with nbgrader's
preprocessors: solutions replaced by ``raise NotImplementedError()``, hidden
tests and outputs removed, test cells locked). ``grade`` puts a student's
answer cells into the source notebook (so hidden tests run too), executes it
and prints the points per task — no nbgrader database needed.

nbgrader is an optional extra (``pip install -e .[teach]``): only building
and grading need it, not doing the assignment.
"""
from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from bnlesson.utils import atomic_write, repo_root

NBGRADER_SCHEMA = 3


# --------------------------------------------------------------------------
# Reading the nbgrader markup of a notebook
# --------------------------------------------------------------------------
def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_answer(cell) -> bool:
    """A cell the student writes (code or markdown)."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell) -> bool:
    """An autograded test cell (code, graded, not an answer)."""
    meta = nbgrader_meta(cell)
    return (cell.cell_type == "code" and bool(meta.get("grade"))
            and not meta.get("solution"))


def is_manual(cell) -> bool:
    """A written answer graded by hand (markdown, graded and an answer)."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and bool(meta.get("solution")) \
        and cell.cell_type == "markdown"


def is_graded_notebook(nb) -> bool:
    return any(nbgrader_meta(c) for c in nb.cells)


@dataclass
class Task:
    """One graded test cell and the answer cells it checks."""
    grade_id: str
    points: float
    test_index: int
    answer_indices: list[int]


def tasks(nb) -> list[Task]:
    """Autograded tasks: each test cell checks the answer cells written
    since the previous test cell."""
    found, pending = [], []
    for i, cell in enumerate(nb.cells):
        if is_answer(cell) and cell.cell_type == "code":
            pending.append(i)
        elif is_test(cell):
            meta = nbgrader_meta(cell)
            found.append(Task(meta["grade_id"], float(meta.get("points", 0)),
                              i, pending))
            pending = []
    return found


def points(nb) -> dict[str, float]:
    """Points per graded cell (autograded tests and written answers)."""
    return {nbgrader_meta(c)["grade_id"]:
            float(nbgrader_meta(c).get("points", 0))
            for c in nb.cells if nbgrader_meta(c).get("grade")}


# --------------------------------------------------------------------------
# Building the student version
# --------------------------------------------------------------------------
def student_version(nb):
    """The student notebook, made by nbgrader's preprocessors from ``nb``
    (which is not modified)."""
    from nbgrader.preprocessors import (
        CheckCellMetadata,
        ClearHiddenTests,
        ClearMarkScheme,
        ClearOutput,
        ClearSolutions,
        LockCells,
    )
    nb = copy.deepcopy(nb)
    resources = {}
    for pp in (CheckCellMetadata(), LockCells(), ClearSolutions(),
               ClearOutput(), ClearHiddenTests(), ClearMarkScheme(),
               CheckCellMetadata()):
        nb, resources = pp.preprocess(nb, resources)
    return nb


def write_notebook(nb, path: Path) -> None:
    """Write atomically (temporary file + rename)."""
    atomic_write(path, nbformat.writes(nb).encode("utf-8"))


def graded_chapters(notebooks: Path | None = None) -> list[Path]:
    folder = notebooks or repo_root() / "notebooks"
    return [p for p in sorted(folder.glob("[0-9][0-9]_*.ipynb"))
            if is_graded_notebook(nbformat.read(p, as_version=4))]


def build(out: Path | None = None,
          notebooks: Path | None = None) -> list[Path]:
    """Write ``source/`` and ``release/`` for every graded chapter; return
    the student notebooks."""
    out = out or repo_root() / "build" / "assignments"
    released = []
    for path in graded_chapters(notebooks):
        nb = nbformat.read(path, as_version=4)
        write_notebook(nb, out / "source" / path.stem / path.name)
        target = out / "release" / path.stem / path.name
        write_notebook(student_version(nb), target)
        released.append(target)
    _write_config(out)
    return released


def _write_config(out: Path) -> None:
    config = (
        "# nbgrader course configuration written by make assignments\n"
        "c = get_config()  # noqa: F821\n"
        "c.CourseDirectory.root = '.'\n")
    atomic_write(out / "nbgrader_config.py", config.encode())


# --------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------
def merge_answers(source_nb, submitted_nb):
    """The source notebook with the student's answer cells (matched by
    ``grade_id``) in place of the reference solutions; tests, hidden tests
    included, come from the source."""
    answers = {nbgrader_meta(c)["grade_id"]: c for c in submitted_nb.cells
               if is_answer(c)}
    merged = copy.deepcopy(source_nb)
    for i, cell in enumerate(merged.cells):
        if is_answer(cell):
            grade_id = nbgrader_meta(cell)["grade_id"]
            if grade_id not in answers:
                raise ValueError(
                    f"the submission has no answer cell {grade_id!r}; was it "
                    "made from this chapter's student version?")
            merged.cells[i] = copy.deepcopy(answers[grade_id])
    return merged


def execute(nb, cwd: Path, timeout: int = 1800):
    """Execute ``nb`` (in place) with errors allowed; return it."""
    from nbclient import NotebookClient
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   allow_errors=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def cell_failed(cell) -> bool:
    return any(output.get("output_type") == "error"
               for output in cell.get("outputs", []))


def score(executed_nb) -> dict[str, tuple[float, float]]:
    """{grade_id: (points earned, points possible)} for autograded tests."""
    result = {}
    for task in tasks(executed_nb):
        cell = executed_nb.cells[task.test_index]
        result[task.grade_id] = (0.0 if cell_failed(cell) else task.points,
                                 task.points)
    return result


def grade(submitted: Path, source: Path | None = None) -> dict:
    submitted_nb = nbformat.read(submitted, as_version=4)
    if source is None:
        source = repo_root() / "notebooks" / submitted.name
    if not source.is_file():
        raise FileNotFoundError(
            f"no source notebook {source}; pass --source with the solution "
            "version of this chapter")
    merged = merge_answers(nbformat.read(source, as_version=4), submitted_nb)
    return score(execute(merged, source.parent))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bnlesson.assignments",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    b = sub.add_parser("build", help="build student versions (default)")
    b.add_argument("--out", type=Path, default=None)
    g = sub.add_parser("grade", help="grade a submitted notebook")
    g.add_argument("submission", type=Path)
    g.add_argument("--source", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "grade":
        result = grade(args.submission, args.source)
        for grade_id, (got, possible) in result.items():
            print(f"{grade_id:40s} {got:5.1f} / {possible:g}")
        total = sum(g for g, _ in result.values())
        possible = sum(p for _, p in result.values())
        print(f"{'autograded total':40s} {total:5.1f} / {possible:g}")
        print("(written answers are graded by hand)")
        return 0
    released = build(getattr(args, "out", None))
    for path in released:
        nb = nbformat.read(path, as_version=4)
        auto = sum(t.points for t in tasks(nb))
        manual = sum(float(nbgrader_meta(c).get("points", 0))
                     for c in nb.cells if is_manual(c))
        print(f"{path}: {auto:g} autograded + {manual:g} written points")
    if not released:
        print("no chapter has graded cells yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
