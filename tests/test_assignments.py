"""The chapters as nbgrader assignments, tested with the real nbgrader CLI.

- The course folder that ``python -m bnlesson.assignments`` lays out, with
  the PATH of an environment that is not activated: an absolute root, the
  time limits, and for every chapter one student version made by
  ``nbgrader generate_assignment`` (checksums, no solutions, no hidden
  tests, locked test and question cells).
- Every graded chapter's layout: a name cell, the total in the
  introduction, "### Task N (k points)" headings that add up to it, written
  questions in locked cells with a separate answer cell.
- Every chapter's scoring on small cases, in one kernel: the reference
  answers pass each test, the unanswered student version and each typical
  wrong answer or shortcut (a call into the library or PyTorch) in
  ``tests/wrong_answers/`` fail it.
- The students' environment: a wheel with the package and the mini data
  set and nothing of the course, which runs the student version of
  chapter 02 in a fresh environment away from the checkout.
- Chapter 02 end to end: release, fetch and submit as two students through
  a local exchange, more submissions as an LMS download would give them,
  collect, autograde, export to CSV, generate feedback; every score in the
  CSV and every feedback file are checked.
"""
import copy
import csv
import html
import os
import re
import runpy
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader")

from nbgrader.utils import determine_grade  # noqa: E402

from bnlesson import assignments as asg  # noqa: E402
from bnlesson import checks  # noqa: E402
from bnlesson.grading import cell_timeout  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WRONG = Path(__file__).resolve().parent / "wrong_answers"
CHAPTERS = asg.graded_chapters(NOTEBOOKS)
IDS = [p.stem for p in CHAPTERS]
CH02 = "02_batch_norm_from_scratch"


def meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_answer(cell):
    return bool(meta(cell).get("solution"))


def is_test(cell):
    return bool(meta(cell).get("grade")) and not meta(cell).get("solution")


def hidden_lines(nb):
    """Non-trivial lines of the hidden tests that are not part of a line
    outside them."""
    hidden, shown = [], set()
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif (inside and len(line.strip()) > 15
                  and not line.strip().startswith("#")):
                hidden.append(line.strip())
            else:
                shown.add(line.strip())
    return [line for line in hidden if not any(line in s for s in shown)]


# --------------------------------------------------------------------------
# The course folder
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """All chapters built with nbgrader, from an environment that is not
    activated (its bin folder is not on the PATH)."""
    folder = tmp_path_factory.mktemp("course")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", "/usr/bin:/bin")
        released = asg.build(folder, NOTEBOOKS, wheel=False)
    assert [p.parent.name for p in released] == IDS
    return folder


def test_course_folder(course):
    config = (course / "nbgrader_config.py").read_text()
    assert f"c.CourseDirectory.root = {str(course)!r}" in config
    assert set(asg.MEASURED) == set(IDS)
    for chapter in IDS:
        cell, whole = asg.time_limits(chapter)
        assert f"{chapter!r}: {cell}," in config
        assert f"{chapter!r}: {whole}," in config
        assert 3 * asg.MEASURED[chapter][0] <= cell
        assert 3 * asg.MEASURED[chapter][1] <= whole
    done = asg.run_nbgrader(["db", "assignment", "list"], course, capture=True)
    assert done.returncode == 0, done.stderr
    assert "is not absolute" not in done.stdout + done.stderr
    for chapter in IDS:
        assert chapter in done.stdout


@pytest.mark.parametrize("chapter", IDS)
def test_student_version(course, chapter):
    name = f"{chapter}.ipynb"
    source = nbformat.read(course / "source" / chapter / name, 4)
    student = nbformat.read(course / "release" / chapter / name, 4)
    text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    for line in hidden_lines(source):
        assert line not in text, f"hidden test leaked: {line!r}"
    for cell in student.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None
        if meta(cell):
            assert meta(cell).get("checksum"), "no nbgrader checksum"
        if is_answer(cell):
            stub = ("raise NotImplementedError()" if cell.cell_type == "code"
                    else "YOUR ANSWER HERE")
            assert stub in cell.source, meta(cell)["grade_id"]
        if meta(cell).get("locked"):
            assert cell.metadata.get("editable") is False


RUN_STUDENT_VERSION = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], 4)
NotebookClient(nb, kernel_name="python3", timeout=300,
               allow_errors=True).execute()
print(sorted(c.metadata.get("nbgrader", {}).get("grade_id", str(i))
             for i, c in enumerate(nb.cells)
             if any(o.output_type == "error" for o in c.get("outputs", []))))
"""


def test_student_environment(course, tmp_path):
    """The wheel holds the package and the mini data set, nothing of the
    course; installed in a fresh environment (its dependencies borrowed
    from this one), it runs chapter 02's student version away from the
    checkout: only the test cells fail, on the missing answers."""
    wheel = asg.student_env(tmp_path / "env")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bnlesson/mini/SHA256SUMS" in names and "bnlesson/norms.py" in names
    assert not [n for n in names
                if n.endswith(".ipynb") or "wrong_answers" in n]
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("METADATA"))).decode()
    for line in metadata.splitlines():
        if re.search(r"Requires-Dist: (nbgrader|pytest|nbval)", line):
            assert "extra ==" in line, line
    yml = (tmp_path / "env" / "environment-student.yml").read_text()
    assert f"./{wheel.name}" in yml

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv],
                   check=True)
    python = str(venv / "bin" / "python")
    purelib = subprocess.run(
        [python, "-c",
         "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "--python", python,
                    "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   env=env, check=True)
    # after the install, so that pip sees no other bnlesson
    Path(purelib, "deps.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n")
    student = tmp_path / "student"
    student.mkdir()
    notebook = student / f"{CH02}.ipynb"
    notebook.write_bytes(
        (course / "release" / CH02 / f"{CH02}.ipynb").read_bytes())
    env.update(BNLESSON_CACHE_DIR=str(tmp_path / "runs"),
               BNLESSON_DATA=str(tmp_path / "data"))
    done = subprocess.run(
        [python, "-c", "import bnlesson; print(bnlesson.__file__)"],
        cwd=student, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.startswith(str(venv))
    done = subprocess.run(
        [python, "-c", RUN_STUDENT_VERSION, notebook.name], cwd=student,
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    failed = sorted(["test_ch02_bn_forward", "test_ch02_moving_average",
                     "test_ch02_bn_backward"])
    assert done.stdout.strip() == str(failed), done.stdout


# --------------------------------------------------------------------------
# The layout of a graded chapter
# --------------------------------------------------------------------------
HEADING = re.compile(r"^### Task (\d+) \((\d+) points?\): \S", re.M)


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_name_cell_total_and_headings(path):
    nb = nbformat.read(path, 4)
    name = nb.cells[1]
    assert meta(name).get("grade_id", "").endswith("_name") and \
        name.cell_type == "markdown" and is_answer(name), "no name/ID cell"
    graded = [c for c in nb.cells
              if meta(c).get("grade") and meta(c).get("points")]
    total = sum(meta(c)["points"] for c in graded)
    assert f"**{total} points**" in " ".join(nb.cells[0].source.split()), \
        "the introduction does not state the total"
    headings = [(i, m) for i, c in enumerate(nb.cells)
                if c.cell_type == "markdown"
                for m in HEADING.finditer(c.source)]
    assert [int(m[1]) for _, m in headings] == list(range(1, len(graded) + 1))
    for i, m in headings:  # the points of the next graded cell
        following = next(c for c in nb.cells[i + 1:] if meta(c).get("grade"))
        assert meta(following)["points"] == int(m[2]), m[0]
    markdown = "\n".join(c.source for c in nb.cells
                         if c.cell_type == "markdown")
    assert not re.search(
        r"Your turn|Graded (task|question)|### Task(:| \d+ —)", markdown)


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_written_questions_in_locked_cells(path):
    nb = nbformat.read(path, 4)
    for i, cell in enumerate(nb.cells):
        if (cell.cell_type == "markdown" and is_answer(cell)
                and meta(cell)["points"]):
            grade_id = meta(cell)["grade_id"]
            question = nb.cells[i - 1]
            assert meta(question).get("locked"), grade_id
            assert not meta(question)["grade"], grade_id
            assert HEADING.match(question.source), grade_id
            outside = re.sub(r"### BEGIN SOLUTION.*### END SOLUTION", "",
                             cell.source, flags=re.S)
            assert not outside.strip(), f"question text in {grade_id}"


# --------------------------------------------------------------------------
# No shortcuts: checks.forbidden
# --------------------------------------------------------------------------
def test_forbidden_blocks_aliases_and_restores():
    import torch
    import torch.nn.functional as F

    from bnlesson import norms
    from bnlesson.norms import BatchNormFunction, batch_norm_closed_form

    X = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    g = torch.ones(3)
    namespace = {"bn": F.batch_norm, "closed": batch_norm_closed_form, "F": F}
    with checks.forbidden(checks.NORM_FUNCTIONS + checks.AUTOGRAD_FUNCTIONS,
                          namespace):
        for call in (lambda: F.batch_norm(X, None, None, training=True),
                     lambda: torch.nn.BatchNorm1d(3)(X),
                     lambda: namespace["bn"](X, None, None, training=True),
                     lambda: namespace["closed"](X, g, g),
                     lambda: BatchNormFunction.apply(X, g, g, 1e-5),
                     lambda: norms.NORM_AXES["layer"],
                     lambda: X.requires_grad_().sum().backward()):
            with pytest.raises(RuntimeError,
                               match="not available in this task"):
                call()
    assert namespace["bn"] is F.batch_norm
    assert "apply" not in vars(BatchNormFunction)
    assert torch.allclose(batch_norm_closed_form(X, g, 0 * g),
                          F.batch_norm(X, None, None, g, 0 * g, training=True),
                          atol=1e-6)
    for name in (checks.NORM_FUNCTIONS + checks.AUTOGRAD_FUNCTIONS
                 + checks.RUNNING_FUNCTIONS):
        owner, attr = checks._owner(name)
        assert hasattr(owner, attr), name


def test_cell_timeout_keeps_to_the_submission_limit():
    import time
    now = time.monotonic()
    assert cell_timeout(30, now + 1000) == 30
    assert 9 <= cell_timeout(30, now + 10) <= 10
    assert cell_timeout(30, now - 5) == 1


# --------------------------------------------------------------------------
# Scoring on small cases, every chapter
# --------------------------------------------------------------------------
#: What the test cells need besides the setup cell: a source cell (found
#: by a needle) or code of our own standing in for expensive cells.
CONTEXT = {
    "01_deep_network_problems": ["X, y = X_train[:256]"],
    "02_batch_norm_from_scratch": [],
    "03_lenet_with_and_without_bn": [
        "#code\nthreshold = 0.5\nSWEEP_ACC = {"
        "'none': {0.3: 0.1, 1.0: 0.7, 3.0: 0.6, 10.0: 0.1,"
        " 100.0: float('nan')},"
        " 'batchnorm': {0.3: 0.8, 1.0: 0.8, 10.0: 0.75, 30.0: 0.7,"
        " 100.0: 0.1}}"],
    "04_normalization_family": ["def normalize(X, dims"],
    "05_running_statistics_kalman": [],
    "06_why_batch_norm_works": [],
    "07_batch_norm_in_practice": [],
    "08_sync_batch_norm": [],
}


def _failed(cell) -> bool:
    score, possible = determine_grade(cell)
    return score < possible


@pytest.mark.parametrize("path", CHAPTERS, ids=IDS)
def test_scoring_small_cases(course, path):
    """In one kernel: the setup cells and the context, then per task the
    reference answers (the test passes), the student version's stubs and
    each wrong answer or shortcut (the test fails)."""
    from nbclient import NotebookClient

    source = nbformat.read(path, 4)
    student = nbformat.read(course / "release" / path.stem / path.name, 4)
    stubs = {meta(c)["grade_id"]: c.source for c in student.cells
             if is_answer(c) and c.cell_type == "code"}
    wrong = runpy.run_path(str(WRONG / f"{path.stem}.py"))["WRONG"]
    assert set(wrong) <= set(stubs), "wrong answers for unknown answer cells"

    setup = next(i for i, c in enumerate(source.cells)
                 if "parameters" in c.metadata.get("tags", []))
    context = [source.cells[setup]]
    for cell in source.cells[setup + 1:]:  # setup: imports, then sizes
        if cell.cell_type != "code":
            break
        context.append(cell)
    for needle in CONTEXT[path.stem]:
        context.append(
            nbformat.v4.new_code_cell(needle) if needle.startswith("#code")
            else next(c for c in source.cells if needle in c.source))
    scratch = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")])
    client = NotebookClient(scratch, kernel_name="python3",
                            timeout=300, allow_errors=True,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})

    def run(code_or_cell):
        cell = copy.deepcopy(code_or_cell) if isinstance(code_or_cell, dict) \
            else nbformat.v4.new_code_cell(code_or_cell)
        client.execute_cell(cell, 0)
        return cell

    checked, answers = set(), []
    with client.setup_kernel():
        for cell in context:
            assert not any(o.output_type == "error" for o in run(cell).outputs)
        for cell in source.cells:
            if cell.cell_type != "code":
                continue
            if is_answer(cell):
                answers.append(meta(cell)["grade_id"])
                run(cell)
            elif is_test(cell):
                task = meta(cell)["grade_id"]
                assert not _failed(run(cell)), \
                    f"{task} fails with the reference"
                for grade_id in answers:
                    cases = {"unanswered": stubs[grade_id],
                             **wrong.get(grade_id, {})}
                    for label, code in cases.items():
                        run(code)
                        assert _failed(run(cell)), f"{task} accepts {label!r}"
                        run(next(c for c in source.cells
                                 if meta(c).get("grade_id") == grade_id))
                    checked.add(grade_id)
                answers = []
    assert checked == set(stubs)


# --------------------------------------------------------------------------
# Chapter 02 end to end
# --------------------------------------------------------------------------
def _reference(grade_id):
    nb = nbformat.read(NOTEBOOKS / f"{CH02}.ipynb", 4)
    return next(c.source for c in nb.cells
                if meta(c).get("grade_id") == grade_id)


def _answer(nb, grade_id, code):
    cell = next(c for c in nb.cells if meta(c).get("grade_id") == grade_id)
    cell.source = code
    return nb.cells.index(cell)


FORWARD = "ch02_bn_forward"
MOVING = "ch02_moving_average"
BACKWARD = "ch02_bn_backward"


def _submission(student_nb, student):
    """The student's notebook, changed as `student` did; return it and the
    file name it is handed in under."""
    nb = copy.deepcopy(student_nb)
    name = f"{CH02}.ipynb"
    _answer(nb, "ch02_name", "**Name and student ID**\n\n"
            f"{student.title()}, 2024{len(student):04d}")
    for grade_id in (FORWARD, MOVING, BACKWARD):
        _answer(nb, grade_id, _reference(grade_id))
    _answer(nb, "ch02_q_gamma",
            "The output's standard deviation is about |gamma|.")
    if student == "alice":  # a helper function in a cell of her own
        i = _answer(nb, BACKWARD, '''\
def bn_backward(dY, X, gamma, eps=1e-5):
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    std, X_hat = centred(X, dims, eps)
    dX = gamma / std * (dY - dY.mean(dim=dims, keepdim=True)
                        - X_hat * (dY * X_hat).mean(dim=dims, keepdim=True))
    dgamma = (dY * X_hat).sum(dim=dims, keepdim=True)
    return dX, dgamma, dY.sum(dim=dims, keepdim=True)''')
        nb.cells.insert(i, nbformat.v4.new_code_cell('''\
def centred(X, dims, eps):
    mean = X.mean(dim=dims, keepdim=True)
    std = torch.sqrt(((X - mean) ** 2).mean(dim=dims, keepdim=True) + eps)
    return std, (X - mean) / std'''))
    elif student == "bob":
        # divides by the variance; a download renamed the file
        _answer(nb, FORWARD, _reference(FORWARD).replace(
            "torch.sqrt(var + eps)", "(var + eps)"))
        name = f"{CH02} (1).ipynb"
    elif student == "carol":  # wrong axis; momentum on the new value
        _answer(nb, FORWARD, _reference(FORWARD).replace(
            "dims = (0,) if X.dim() == 2 else (0, 2, 3)", "dims = 0"))
        _answer(nb, MOVING, _reference(MOVING).replace(
            "momentum * moving_mean + (1.0 - momentum) * mean",
            "(1.0 - momentum) * moving_mean + momentum * mean").replace(
            "momentum * moving_var + (1.0 - momentum) * var_unbiased",
            "(1.0 - momentum) * moving_var + momentum * var_unbiased"))
    elif student == "dave":  # loops forever; raises
        _answer(nb, MOVING, "def update_moving_stats(*args, **kwargs):\n"
                            "    while True:\n        pass")
        _answer(nb, BACKWARD, "def bn_backward(dY, X, gamma, eps=1e-5):\n"
                              "    raise ValueError('not done yet')")
    elif student == "erin":  # PyTorch, then the library, do the work
        _answer(nb, FORWARD, '''\
def bn_forward(X, gamma, beta, eps=1e-5):
    dims = (0,) if X.dim() == 2 else (0, 2, 3)
    Y = F.batch_norm(X, None, None, gamma.reshape(-1), beta.reshape(-1),
                     training=True, eps=eps)
    mean = X.mean(dim=dims, keepdim=True)
    return Y, mean, X.var(dim=dims, correction=0, keepdim=True)''')
        shortcuts = runpy.run_path(
            str(WRONG / "02_batch_norm_from_scratch.py"))["WRONG"]
        _answer(nb, BACKWARD, shortcuts[BACKWARD][
            "shortcut: the library's closed form"].strip())
    elif student == "grace":  # her answer cells lost their nbgrader marks
        for grade_id in (FORWARD, MOVING, BACKWARD, "ch02_q_gamma"):
            cell = next(c for c in nb.cells
                        if meta(c).get("grade_id") == grade_id)
            cell.metadata = {}
    return nb, name


#: Autograded points (bn_forward 4, update_moving_stats 2, bn_backward 4).
EXPECTED = {"alice": 10, "bob": 6, "carol": 4, "dave": 4, "erin": 2,
            "grace": 10}


def test_chapter_02_end_to_end(course, tmp_path, capfd):
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    (course / "course_config.py").write_text(  # the teacher's settings win
        f"c = get_config()\nc.Exchange.root = {str(exchange)!r}\n"
        f"c.ChapterExecute.cell_timeouts = {{{CH02!r}: 15}}"
        "  # dave's loop: 15 s\n")
    flags = [f"--Exchange.root={exchange}", f"--course={asg.COURSE_ID}"]

    def nbgrader(*args, cwd=course):
        done = asg.run_nbgrader([*args], cwd, capture=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    nbgrader("release_assignment", CH02)
    # two students through the exchange
    for student in ("alice", "bob"):
        home = tmp_path / student
        home.mkdir()
        nbgrader("fetch_assignment", CH02, *flags, cwd=home)
        fetched = home / CH02 / f"{CH02}.ipynb"
        nb, name = _submission(nbformat.read(fetched, 4), student)
        fetched.unlink()
        nbformat.write(nb, home / CH02 / name)
        nbgrader("submit", CH02, f"--student={student}", *flags, cwd=home)
    nbgrader("collect", CH02)
    # the others as an LMS download gives them
    released = nbformat.read(course / "release" / CH02 / f"{CH02}.ipynb", 4)
    for student in EXPECTED:
        if student not in ("alice", "bob"):
            nb, name = _submission(released, student)
            folder = course / "submitted" / student / CH02
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / name)

    capfd.readouterr()
    args = ["--course", str(course), "nbgrader", "autograde", CH02]
    assert asg.main(args) == 0
    log = capfd.readouterr()
    assert f"bob: '{CH02} (1).ipynb' is graded as '{CH02}.ipynb'" in log.out
    assert ("grace: cells without their nbgrader marks: ch02_bn_backward"
            in log.out)

    nbgrader("export", f"--to={tmp_path / 'grades.csv'}")
    with open(tmp_path / "grades.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["assignment"] == CH02]
    scores = {r["student_id"]: float(r["score"]) for r in rows}
    assert scores == EXPECTED, scores
    assert {float(r["max_score"]) for r in rows} == {14.0}

    nbgrader("generate_feedback", CH02)
    pages = {p.parts[-3]: p.read_text()
             for p in (course / "feedback").rglob("*.html")}
    assert set(pages) == set(EXPECTED)
    secret = hidden_lines(nbformat.read(NOTEBOOKS / f"{CH02}.ipynb", 4))
    for student, page in pages.items():
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        # the visible code shows
        assert 'print("bn_forward: visible tests passed")' in text
        for line in secret:
            assert line not in text, f"{student}'s feedback shows {line!r}"
    carol = html.unescape(re.sub(r"<[^>]+>", "", pages["carol"]))
    assert "AssertionError: conv input: one mean and var per channel" in carol
    assert "new_mean: momentum=0.9 weights the OLD value" in carol
    erin = html.unescape(re.sub(r"<[^>]+>", "", pages["erin"]))
    for name in ("torch.nn.functional.batch_norm",
                 "bnlesson.norms.batch_norm_closed_form"):
        assert f"{name} is not available in this task" in erin
    dave = html.unescape(re.sub(r"<[^>]+>", "", pages["dave"]))
    assert "ValueError: not done yet" in dave
    assert ("CellTimeoutError: stopped: out of time "
            "(this chapter allows 15 s per cell") in dave


def test_failed_build_keeps_the_release(course, tmp_path):
    """A chapter that nbgrader refuses (here: two cells with one grade_id)
    fails the build, and the student version released before stays."""
    chapter = "05_running_statistics_kalman"
    release = course / "release" / chapter / f"{chapter}.ipynb"
    before = release.read_bytes()
    nb = nbformat.read(NOTEBOOKS / f"{chapter}.ipynb", 4)
    answers = [c for c in nb.cells if is_answer(c) and c.cell_type == "code"]
    meta(answers[1])["grade_id"] = meta(answers[0])["grade_id"]
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / f"{chapter}.ipynb")
    with pytest.raises(SystemExit, match="released before is kept"):
        asg.build(course, tmp_path / "notebooks", chapters=[chapter],
                  wheel=False)
    assert release.read_bytes() == before
    name = f"{chapter}.ipynb"
    shutil.copyfile(NOTEBOOKS / name, course / "source" / chapter / name)
