"""Time every cell of the graded chapters, as a grading machine runs them.

The data behind ``bnlesson.assignments.MEASURED`` (and so the time
limits): each chapter's solution notebook is executed in the quick profile
on one thread with the run cache off (the worst case: the first submission
on a fresh machine), and the slowest cell and the whole run are printed
next to the limits.

    OMP_NUM_THREADS=1 python benchmarks/grading_limits.py [CHAPTER ...]
"""
import os
import sys
import time
from datetime import datetime

os.environ.update(BNLESSON_PROFILE="quick", BNLESSON_PROGRESS="0",
                  BNLESSON_NO_CACHE="1")

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from bnlesson.assignments import graded_chapters, time_limits  # noqa: E402


def seconds(cell) -> float:
    stamps = cell.metadata.get("execution", {})
    start = stamps.get("iopub.execute_input")
    end = stamps.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00"))
            - parse(start.replace("Z", "+00:00"))).total_seconds()


def main(selected) -> int:
    print(f"{'chapter':32s} {'slowest cell':>14s} {'whole run':>10s}   limits")
    for path in graded_chapters():
        if selected and not any(path.stem.startswith(s) for s in selected):
            continue
        nb = nbformat.read(path, as_version=4)
        start = time.monotonic()
        NotebookClient(nb, timeout=1800, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}
                       ).execute()
        total = time.monotonic() - start
        slowest, index = max((seconds(c), i) for i, c in enumerate(nb.cells)
                             if c.cell_type == "code")
        cell_limit, nb_limit = time_limits(path.stem)
        print(f"{path.stem:32s} {slowest:7.1f} s [{index:2d}] {total:8.1f} s"
              f"   {cell_limit} s / {nb_limit} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
