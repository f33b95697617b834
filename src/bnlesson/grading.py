"""nbgrader add-ons named in the course's ``nbgrader_config.py``.

* :class:`ChapterExecute` runs a submission with the time limits of its
  chapter: one per cell and one for the whole notebook. A cell that runs
  out of time is interrupted and fails (so only its task loses points);
  once the notebook's time is spent, every cell left gets a second.
* :class:`RestoreMissingCells` is nbgrader's ``OverwriteCells`` that puts
  back a graded cell which lost its nbgrader marks after the nearest
  earlier cell of the source still there (nbgrader 0.9.6 looks only at the
  cell just before, and fails the whole submission with a ``KeyError`` when
  that one is read-only or lost its marks too).
* :class:`FeedbackWithoutHiddenTests` prepares the feedback that students
  see: hidden tests are cut from the test cells, and an error in a test cell
  shows its message only, not the traceback (which quotes test code).

Teacher side only: this module imports nbgrader.
"""
from __future__ import annotations

import time

from nbgrader.preprocessors import ClearHiddenTests, Execute, OverwriteCells
from nbgrader.utils import is_grade, is_solution
from traitlets import Bool, Dict


class ChapterExecute(Execute):
    """nbgrader's ``Execute`` with per-chapter limits (seconds), keyed by
    assignment name; ``timeout`` is used for a chapter not listed."""

    cell_timeouts = Dict(help="seconds per cell, by chapter").tag(config=True)
    notebook_timeouts = Dict(
        help="seconds for a whole submission, by chapter").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        chapter = resources["nbgrader"]["assignment"]
        cell_limit = self.cell_timeouts.get(chapter, self.timeout)
        nb_limit = self.notebook_timeouts.get(chapter, 10 * cell_limit)
        deadline = time.monotonic() + nb_limit
        self.timeout_func = lambda cell: cell_timeout(cell_limit, deadline)
        self.error_on_timeout = {
            "ename": "CellTimeoutError",
            "evalue": f"stopped: out of time (this chapter allows "
                      f"{cell_limit} s per cell, {nb_limit} s per notebook); "
                      "an endless loop?",
            "traceback": []}
        return super().preprocess(nb, resources, km)


def cell_timeout(cell_limit: float, deadline: float) -> int:
    """The time a cell gets: its chapter's limit, at most what is left of
    the notebook's, at least one second."""
    return max(1, int(min(cell_limit, deadline - time.monotonic())))


class RestoreMissingCells(OverwriteCells):
    """``OverwriteCells`` whose missing graded cells go after the nearest
    earlier source cell present in the submission (or first)."""

    def add_missing_grade_cells(self, nb, resources):
        source = self.gradebook.find_notebook(self.notebook_id,
                                              self.assignment_id)
        order = [c.name for c in source.source_cells]
        graded = {c.name: c for c in source.grade_cells}
        answers = {c.name for c in source.solution_cells}
        for k, name in enumerate(order):
            present = {c.metadata.get("nbgrader", {}).get("grade_id"): i
                       for i, c in enumerate(nb.cells)}
            if name not in graded or name in present:
                continue
            self.log.warning(
                "Missing grade cell %s encountered, adding to notebook", name)
            earlier = [present[n] for n in order[:k] if n in present]
            cell = self.missing_cell_transform(
                source.source_cells[k], graded[name].max_score,
                is_solution=name in answers)
            nb.cells.insert(earlier[-1] + 1 if earlier else 0, cell)
        return nb, resources


class FeedbackWithoutHiddenTests(ClearHiddenTests):
    """Hidden tests out of the test cells' source, and only ``Error:
    message`` from a failed test cell (a traceback quotes the test's
    source lines)."""

    enforce_metadata = Bool(False).tag(config=True)  # cut them from any cell

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if (cell.cell_type == "code" and is_grade(cell)
                and not is_solution(cell)):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
