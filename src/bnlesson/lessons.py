"""Execute the whole series headless and report per-chapter timings.

    python -m bnlesson.lessons                 # quick profile, all chapters
    python -m bnlesson.lessons --profile full  # the lecture's full-size runs
    python -m bnlesson.lessons 03 05           # only chapters 03 and 05
    python -m bnlesson.lessons --profile full --out results/full

Executed copies go to ``build/lessons/<profile>/`` (the committed notebooks
are never overwritten unless ``--out notebooks``), without execution
timestamps or progress-bar widgets. A full-profile copy opens with a note of
where, when and how long it ran (also in its metadata, ``bnlesson_run``).
Exit status 1 if any chapter fails.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

from bnlesson.utils import env, repo_root


def notebooks_dir() -> Path:
    top = repo_root()
    if top is None or not (top / "notebooks").is_dir():
        raise SystemExit("error: cannot find the notebooks/ folder; run "
                         "from a checkout of the repository")
    return top / "notebooks"


def chapter_notebooks(selected=()) -> list[Path]:
    """Chapter notebooks (``NN_*.ipynb``) in order, optionally filtered by
    their number prefix."""
    paths = sorted(p for p in notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    if selected:
        paths = [p for p in paths if p.name[:2] in selected]
        if not paths:
            raise SystemExit(f"error: no chapter matches {list(selected)}")
    return paths


def execute(path: Path, out_dir: Path, profile: str, timeout: int):
    """Run one notebook in its own folder; write the result to out_dir.

    Returns (seconds, error message or None).
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    metadata = dict(nb.metadata)  # nbclient writes its own kernelspec
    os.environ["BNLESSON_PROFILE"] = profile
    # "python3" is the kernel of the interpreter running this command, so
    # the run uses this environment whatever kernels are registered.
    # The kernel's own log (e.g. ipykernel's notice that it listens on
    # local TCP) is noise here; cell output and errors are unaffected.
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            extra_arguments=["--IPKernelApp.log_level=ERROR"],
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except Exception as exc:  # report and go on with the next chapter
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1]}"
    seconds = time.perf_counter() - start
    nb.metadata = metadata
    if profile == "full":
        note_run(nb, seconds)
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(clean(nb), out_dir / path.name)
    return seconds, error


def run_record(seconds: float) -> dict:
    """Where, when and how long a chapter ran: the machine, the device, the
    torch version, the UTC date and the run time in seconds."""
    import torch

    from bnlesson.utils import get_device

    device = get_device()
    threads = torch.get_num_threads()
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU, {threads} thread{'s' if threads > 1 else ''}")
    machine = f"{_cpu_name()}, {os.cpu_count()} cores, {platform.system()}"
    return {"machine": machine,
            "device": name, "torch": torch.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%d"), "seconds": round(seconds)}


def _cpu_name() -> str:
    try:  # Linux names the model; platform.processor() often says nothing
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def note_run(nb, seconds: float) -> None:
    """Open ``nb`` with a note of its run (and keep it in its metadata)."""
    import nbformat

    run = run_record(seconds)
    nb.metadata["bnlesson_run"] = run
    text = (f"> **Full-profile run** ({run['date']}): {run['seconds']:,} s on "
            f"{run['machine']}; device {run['device']}; torch {run['torch']}. "
            "Made with `python -m bnlesson.lessons --profile full --out "
            "results/full`; the numbers in the prose are the quick profile's "
            "unless they say otherwise.")
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(text, id="fullrun0"))


def clean(nb):
    """Drop what only this run has: execution timestamps, widget state and
    progress-bar widgets (nbval ignores them; they bloat the file)."""
    widget = "application/vnd.jupyter.widget-view+json"
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if widget not in o.get("data", {})]
    nb.metadata.pop("widgets", None)
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bnlesson.lessons",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("chapters", nargs="*",
                        help="chapter numbers to run (default: all)")
    parser.add_argument("--profile", choices=("quick", "full"),
                        default=env("BNLESSON_PROFILE", "quick"))
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default build/lessons/PROFILE)")
    parser.add_argument("--timeout", type=int, default=3600,
                        help="per-cell timeout in seconds")
    args = parser.parse_args(argv)
    out_dir = args.out or (notebooks_dir().parent / "build" / "lessons"
                           / args.profile)
    paths = chapter_notebooks(args.chapters)
    print(f"Running {len(paths)} chapter(s), profile {args.profile!r}, "
          f"into {out_dir}", flush=True)
    rows = []
    for path in paths:
        seconds, error = execute(path, out_dir, args.profile, args.timeout)
        rows.append((path.stem, seconds, error))
        print(f"  {path.stem:45s} {seconds:7.1f} s  "
              f"{'ok' if error is None else 'FAILED'}", flush=True)
    print(_table(rows))
    return 1 if any(error for _, _, error in rows) else 0


def _table(rows) -> str:
    lines = ["", f"{'chapter':45s} {'seconds':>8s}  status",
             "-" * 62]
    for name, seconds, error in rows:
        lines.append(f"{name:45s} {seconds:8.1f}  "
                     f"{'ok' if error is None else 'failed'}")
        if error:
            lines.append(f"    {error}")
    total = sum(s for _, s, _ in rows)
    lines += ["-" * 62, f"{'total':45s} {total:8.1f}  "
              f"{sum(e is None for _, _, e in rows)}/{len(rows)} ok"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
