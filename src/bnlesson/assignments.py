"""The chapters as nbgrader assignments (teacher side; needs ``.[teach]``).

The notebooks in ``notebooks/`` are the *solution* (source) versions;
graded tasks are marked with nbgrader's conventions (see CONTRIBUTING.md).
nbgrader does all the work; this module only sets it up and runs it:

    python -m bnlesson.assignments            # = make assignments
    python -m bnlesson.assignments nbgrader autograde \
        02_batch_norm_from_scratch

The first command lays out an nbgrader course folder (``course/`` in the
checkout, or ``--course DIR``): ``nbgrader_config.py`` (rewritten every
time: absolute root, time limits, feedback without hidden tests),
``course_config.py`` (yours, never overwritten), ``source/<chapter>/``, and
runs ``nbgrader generate_assignment`` for each chapter, which fills in the
gradebook and ``release/<chapter>/`` (the student versions, with checksums).
It also writes ``student_env/``: the package as a wheel (mini data set
included; no notebooks, no tests, no nbgrader) and an environment file.

The second runs any nbgrader command in the course folder with this
interpreter (no activated environment needed: nbgrader calls ``alembic``
from the PATH). Before ``autograde`` it looks for notebooks that a download
renamed (``02_batch_norm_from_scratch (1).ipynb``) and grades them under the
chapter's name, and for cells that lost their nbgrader marks; it says so.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from bnlesson.utils import repo_root

#: Seconds of the slowest cell and of the whole solution run, measured with
#: ``benchmarks/grading_limits.py``: quick profile, one thread, no run cache
#: (the first submission on a fresh 2-core machine).
MEASURED = {
    "01_deep_network_problems": (9.9, 20.1),
    "02_batch_norm_from_scratch": (2.2, 7.9),
    "03_lenet_with_and_without_bn": (81.5, 138.8),
    "04_normalization_family": (66.6, 72.0),
    "05_running_statistics_kalman": (30.9, 69.1),
    "06_why_batch_norm_works": (23.1, 48.1),
    "07_batch_norm_in_practice": (36.7, 115.3),
    "08_sync_batch_norm": (52.5, 148.3),
}


def time_limits(chapter: str) -> tuple[int, int]:
    """(seconds per cell, seconds per submission) for grading ``chapter``:
    three times the measured time, rounded up to 10 s, at least 30 s and
    60 s."""
    cell, whole = MEASURED[chapter]
    return (max(30, math.ceil(3 * cell / 10) * 10),
            max(60, math.ceil(3 * whole / 10) * 10))


COURSE_ID = "bnlesson"


# --------------------------------------------------------------------------
# Reading the nbgrader markup of a notebook
# --------------------------------------------------------------------------
def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def points(nb) -> tuple[float, float]:
    """(autograded points, points graded by hand) of a notebook."""
    auto = manual = 0.0
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade"):
            if meta.get("solution"):
                manual += float(meta.get("points", 0))
            else:
                auto += float(meta.get("points", 0))
    return auto, manual


def graded_chapters(notebooks: Path | None = None) -> list[Path]:
    folder = notebooks or repo_root() / "notebooks"
    return [p for p in sorted(folder.glob("[0-9][0-9]_*.ipynb"))
            if any(nbgrader_meta(c) for c in nbformat.read(p, 4).cells)]


# --------------------------------------------------------------------------
# The course folder
# --------------------------------------------------------------------------
def default_course() -> Path:
    top = repo_root()
    return (top / "course") if top else Path("course").resolve()


def config_text(course: Path) -> str:
    limits = "".join(
        f"    {c!r}: {time_limits(c)[0]},  # slowest cell {m[0]} s\n"
        for c, m in MEASURED.items())
    totals = "".join(
        f"    {c!r}: {time_limits(c)[1]},  # whole run {m[1]} s\n"
        for c, m in MEASURED.items())
    return f'''\
# Written by `make assignments` (python -m bnlesson.assignments) and
# rewritten by every build: put your own settings (exchange, course id,
# late penalty, other limits) in course_config.py, loaded at the end.
c = get_config()  # noqa: F821
c.CourseDirectory.root = {str(course)!r}
c.CourseDirectory.course_id = {COURSE_ID!r}

# Grading: each submission runs with its chapter's limits, in seconds. A
# cell that takes longer is interrupted and fails, so it costs the points of
# its own task only; once the whole-submission limit is spent, each cell
# left gets one second. The limits are 3x the times of the solution run
# (quick profile, one thread, no run cache: benchmarks/grading_limits.py),
# at least 30 s per cell and 60 s per submission.
from nbconvert.preprocessors import (ClearMetadataPreprocessor,
                                    CSSHTMLHeaderPreprocessor)
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata,
                                    ClearOutput, DeduplicateIds, GetGrades,
                                    IgnorePattern, LimitOutput,
                                    OverwriteKernelspec, SaveAutoGrades)
from bnlesson.grading import (ChapterExecute, FeedbackWithoutHiddenTests,
                              RestoreMissingCells)

c.Autograde.sanitize_preprocessors = [
    ClearOutput, DeduplicateIds, OverwriteKernelspec, RestoreMissingCells,
    CheckCellMetadata]
c.Autograde.autograde_preprocessors = [
    ChapterExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
    SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.ChapterExecute.cell_timeouts = {{
{limits}}}
c.ChapterExecute.notebook_timeouts = {{
{totals}}}
# the kernel of the Python that runs nbgrader (the course's environment)
c.ChapterExecute.kernel_name = "python3"
# a graded cell that lost its nbgrader marks is put back from the source
c.RestoreMissingCells.add_missing_cells = True

# Feedback: hidden tests cut out, a failed test shows its message only.
c.GenerateFeedback.preprocessors = [
    GetGrades, FeedbackWithoutHiddenTests, CSSHTMLHeaderPreprocessor]

load_subconfig("course_config.py")  # noqa: F821
'''


COURSE_CONFIG = '''\
# Your settings for this course; `make assignments` never overwrites this
# file. See assignments/README.md.
c = get_config()  # noqa: F821
# c.CourseDirectory.course_id = "bnlesson"
# c.Exchange.root = "/srv/nbgrader/exchange"       # JupyterHub exchange
# c.LateSubmissionPlugin.penalty_method = "zero"   # late submissions score 0
'''


def nbgrader_env() -> dict:
    """The environment for nbgrader and its kernels: this interpreter's
    scripts first on the PATH, the quick profile, no progress bars."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.update(BNLESSON_PROFILE="quick", BNLESSON_PROGRESS="0")
    return env


def run_nbgrader(args, cwd: Path, capture: bool = False):
    """``nbgrader ARGS`` in ``cwd`` with this interpreter."""
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd,
                          env=nbgrader_env(), text=True,
                          capture_output=capture)


def build(course: Path | None = None, notebooks: Path | None = None,
          chapters=(), wheel: bool = True) -> list[Path]:
    """Lay out the course folder and generate the student versions; return
    them."""
    course = (course or default_course()).resolve()
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(config_text(course))
    if not (course / "course_config.py").exists():
        (course / "course_config.py").write_text(COURSE_CONFIG)
    released = []
    for path in graded_chapters(notebooks):
        if chapters and path.stem not in chapters:
            continue
        (course / "source" / path.stem).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, course / "source" / path.stem / path.name)
        release = course / "release" / path.stem
        kept = release.with_name(release.name + ".previous")
        if release.exists():  # nbgrader deletes it when it fails
            shutil.copytree(release, kept, dirs_exist_ok=True)
        result = run_nbgrader(["generate_assignment", path.stem, "--force"],
                              course, capture=True)
        if result.returncode:
            sys.stderr.write(result.stdout + result.stderr)
            if kept.exists():
                shutil.rmtree(release, ignore_errors=True)
                kept.rename(release)
            raise SystemExit(f"nbgrader generate_assignment {path.stem} "
                             "failed; the student version released before "
                             "is kept")
        shutil.rmtree(kept, ignore_errors=True)
        released.append(release / path.name)
    if wheel:
        student_env(course / "student_env")
    return released


# --------------------------------------------------------------------------
# What students get besides the notebook
# --------------------------------------------------------------------------
STUDENT_ENV = '''\
# The students' environment: the bnlesson package and what it needs to run,
# nothing else (no notebooks, no tests, no nbgrader).
#   conda env create -f environment-student.yml
#   conda activate bnlesson-student
#   python -m ipykernel install --user --name bnlesson \
#       --display-name "Python 3.11 (bnlesson)"
# Without conda (Python 3.11):
#   python3.11 -m venv .venv
#   .venv/bin/pip install -c constraints.txt {wheel}
name: bnlesson-student
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
      - -c constraints.txt
      - ./{wheel}
'''


def student_env(out: Path) -> Path:
    """Build the wheel into ``out`` next to ``constraints.txt`` and
    ``environment-student.yml``; return the wheel."""
    top = repo_root()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(out), str(top)],
                   check=True, env=nbgrader_env())
    wheel = next(out.glob("bnlesson-*.whl"))
    shutil.copyfile(top / "constraints.txt", out / "constraints.txt")
    (out / "environment-student.yml").write_text(
        STUDENT_ENV.format(wheel=wheel.name))
    return wheel


# --------------------------------------------------------------------------
# Before autograde: notebooks renamed by a download
# --------------------------------------------------------------------------
def check_submissions(course: Path, chapter: str) -> list[str]:
    """Before autograding ``chapter``: a submission that lacks a notebook
    but holds one whose name starts like it (``NAME (1).ipynb``) gets a copy
    under the right name; one whose cells lost their nbgrader marks is
    named. Returns one message per finding."""
    sources = {p.name: nbformat.read(p, 4)
               for p in (course / "source" / chapter).glob("*.ipynb")}
    messages = []
    for folder in sorted((course / "submitted").glob(f"*/{chapter}")):
        student = folder.parent.name
        for name, source in sources.items():
            if not (folder / name).exists():
                found = [p for p in folder.glob("*.ipynb")
                         if p.name not in sources
                         and p.stem.startswith(Path(name).stem)]
                if len(found) != 1:
                    others = sorted(p.name for p in folder.glob("*.ipynb"))
                    messages.append(
                        f"{student}: no {name!r} in the submission (found "
                        f"{others or 'no notebook'}): it scores 0; rename "
                        "the file and autograde again")
                    continue
                shutil.copyfile(found[0], folder / name)
                messages.append(f"{student}: {found[0].name!r} is graded as "
                                f"{name!r} (renamed by a download?)")
            marked = {nbgrader_meta(c).get("grade_id")
                      for c in nbformat.read(folder / name, 4).cells}
            lost = sorted(nbgrader_meta(c)["grade_id"] for c in source.cells
                          if nbgrader_meta(c)
                          and nbgrader_meta(c)["grade_id"] not in marked)
            if lost:
                messages.append(
                    f"{student}: cells without their nbgrader marks: "
                    f"{', '.join(lost)} (tests are put back from the source, "
                    "the rest still grades; read written answers in the "
                    "notebook)")
    return messages


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bnlesson.assignments",
        description="Build the course folder (default), or run an nbgrader "
                    "command in it.")
    parser.add_argument("--course", type=Path, default=None,
                        help="course folder (default: course/ in the "
                             "checkout)")
    sub = parser.add_subparsers(dest="command")
    b = sub.add_parser("build", help="student versions (default)")
    b.add_argument("chapters", nargs="*", help="only these (default: all)")
    b.add_argument("--no-wheel", action="store_true",
                   help="skip the student environment")
    n = sub.add_parser("nbgrader", help="nbgrader ARGS in the course folder")
    n.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    course = (args.course or default_course()).resolve()

    if args.command == "nbgrader":
        if not (course / "nbgrader_config.py").is_file():
            parser.error(f"no course folder {course}: "
                         "run make assignments first")
        if args.args[:1] == ["autograde"]:
            chapters = [a for a in args.args[1:2] if not a.startswith("-")]
            for chapter in chapters:
                for message in check_submissions(course, chapter):
                    print(message, flush=True)
        return run_nbgrader(args.args, course).returncode

    released = build(course, chapters=getattr(args, "chapters", ()),
                     wheel=not getattr(args, "no_wheel", False))
    for path in released:
        auto, manual = points(nbformat.read(path, 4))
        print(f"{path.relative_to(course)}: {auto:g} autograded + "
              f"{manual:g} written points")
    print(f"course folder: {course}")
    if (course / "student_env").exists():
        print(f"student environment: {course / 'student_env'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
