"""Measure how far each printed number moves between numeric configurations.

    python tests/spread.py run      # execute every chapter under each config
    python tests/spread.py record   # compare them -> tests/spread.json
    python tests/spread.py apply    # write the tolerances into the notebooks

PyTorch picks its CPU kernels by instruction set and thread count, so the
same chapter prints slightly different numbers on another machine. ``run``
simulates other machines on this one (``CONFIGS``), with the run cache off,
into ``build/spread/<config>/``. ``record`` lines up every number of every
compared output with the committed one and writes, per cell, the largest
move seen (``tests/spread.json``); text that differs is listed there too and
must be fixed in the notebook, not tolerated. ``apply`` sets each cell's
``nbval_tolerance`` metadata to ``SAFETY`` times that move, rounded up
(``tests/nbval_numeric.py`` reads it). Cells whose numbers never moved stay
exact. A copy made before an edit of a cell, or of a cell above it, is not
compared from there on; ``apply`` never lowers a stored tolerance (a
partial re-run measures fewer machines): to re-derive one from scratch,
delete it and re-run every configuration.
"""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).parent))
from nbval_numeric import compared_texts, kind, same_text, split_numbers, value  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "spread"
RECORD = Path(__file__).with_name("spread.json")
#: Simulated machines: instruction-set levels and thread counts.
#: The committed outputs are this machine's default (all cores), made with
#: ``python -m bnlesson.lessons --out notebooks``; these are compared to them.
CONFIGS = {
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "avx2, 1 thread": {"ATEN_CPU_CAPABILITY": "avx2",
                       "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"},
    "default ISA, SSE4.1": {"ATEN_CPU_CAPABILITY": "default",
                            "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "avx512, 3 threads": {"ATEN_CPU_CAPABILITY": "avx512",
                          "OMP_NUM_THREADS": "3"},
    "4 threads, SSE4.1": {"ONEDNN_MAX_CPU_ISA": "SSE41",
                          "OMP_NUM_THREADS": "4"},
}
#: Tolerance = SAFETY x the largest move measured over the simulated
#: machines and the copies made elsewhere (a GPU, another CPU and torch
#: version), so a machine not measured may move somewhat further.
SAFETY = 2


def folder(name: str) -> Path:
    return OUT / name.replace(",", "").replace(" ", "-").replace(".", "")


def run_config(name: str) -> str:
    env = {**os.environ, "BNLESSON_NO_CACHE": "1", "BNLESSON_PROGRESS": "0",
           "BNLESSON_DEVICE": "cpu", **CONFIGS[name]}
    env.pop("BNLESSON_PROFILE", None)
    cmd = [sys.executable, "-m", "bnlesson.lessons", "--out",
           str(folder(name))] + sys.argv[2:]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return f"== {name}\n{done.stdout}{done.stderr}"


def run() -> None:
    """One-thread configs two at a time (2 cores), the others one by one."""
    single = [n for n, c in CONFIGS.items() if c.get("OMP_NUM_THREADS") == "1"]
    with ThreadPoolExecutor(2) as pool:
        for log in pool.map(run_config, single):
            print(log, flush=True)
    for name in CONFIGS:
        if name not in single:
            print(run_config(name), flush=True)


KINDS = ("abs", "int", "decades", "bins", "zero")
#: An order of magnitude printed as a bin, e.g. "<= 1e-06" (checks.diff_bound)
BIN = re.compile(r"(<= )?1e[-+]?\d+")


def _moves(ref: str, new: str):
    """{kind: largest move} of the numbers of ``new`` against ``ref`` (see
    ``nbval_numeric``), or None when the text around them differs."""
    ref_text, ref_nums = split_numbers(ref)
    new_text, new_nums = split_numbers(new)
    if not same_text(ref_text, new_text):
        return None
    moves = dict.fromkeys(KINDS, 0.0)
    for a, b in zip(ref_nums, new_nums, strict=True):
        if a == b:
            continue
        x, y = value(a), value(b)
        if "decades" in (kind(a), kind(b)):
            if x == 0 or y == 0:
                moves["zero"] = max(moves["zero"], abs(x + y))
            elif x * y < 0:
                moves["decades"] = math.inf
            else:
                k = "bins" if BIN.fullmatch(a) and BIN.fullmatch(b) \
                    else "decades"
                moves[k] = max(moves[k], abs(math.log10(x / y)))
        else:
            moves[kind(a)] = max(moves[kind(a)], abs(x - y))
    return moves


def record() -> None:
    # the simulated machines, and copies made elsewhere (e.g. on a GPU)
    configs = [n for n in CONFIGS if folder(n).is_dir()] + sorted(
        p.name for p in OUT.iterdir()
        if p.is_dir() and p not in {folder(n) for n in CONFIGS})
    result = {"configs": {n: CONFIGS.get(n, "copy made elsewhere")
                          for n in configs}, "safety": SAFETY,
              "notebooks": {}}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        ref = nbformat.read(path, as_version=4)
        cells = {}
        for name in configs:
            where = folder(name) if name in CONFIGS else OUT / name
            copy = where / path.name
            if not copy.exists():
                continue
            copies = {c.get("id"): c
                      for c in nbformat.read(copy, as_version=4).cells}
            edited = False  # the copy was made before an edit of this cell
            for i, a in enumerate(ref.cells):  # or of one above it: skip
                b = copies.get(a.get("id"))
                if a.cell_type == "code":
                    edited = edited or b is None or a.source != b.source
                if a.cell_type != "code" or not a.outputs or edited:
                    continue
                ref_texts, new_texts = compared_texts(a), compared_texts(b)
                if ref_texts is None:  # output not compared
                    continue
                entry = cells.setdefault(a.get("id", str(i)), {
                    "cell": i, **dict.fromkeys(KINDS, 0.0),
                    "text differs": [], "compared": 0})
                entry["compared"] += 1
                if [k for k, _ in ref_texts] != [k for k, _ in new_texts]:
                    entry["text differs"].append(name)
                    continue
                for (_, r), (_, t) in zip(ref_texts, new_texts, strict=True):
                    moved = _moves(r, t)
                    if moved is None:
                        entry["text differs"].append(name)
                        break
                    for k in KINDS:
                        entry[k] = max(entry[k], moved[k])
        result["notebooks"][path.name] = cells
    RECORD.write_text(json.dumps(result, indent=1) + "\n")
    for nb, cells in result["notebooks"].items():
        for v in cells.values():
            if not (any(v[k] for k in KINDS) or v["text differs"]):
                continue
            print(f"{nb[:2]} cell {v['cell']:3d}: " + ", ".join(
                  f"{k} {v[k]:.2g}" for k in KINDS if v[k])
                  + (f", TEXT DIFFERS in {v['text differs']}"
                     if v["text differs"] else ""))


def tolerance(entry: dict) -> dict:
    """SAFETY x the largest move of each kind, rounded up to 3 digits; a
    bin one power of ten more than seen; an exact 0 up to 10x the largest
    value seen in its place."""
    def up(x):
        if x == 0:
            return 0.0
        unit = 10.0 ** (math.floor(math.log10(x)) - 2)
        return float(f"{math.ceil(x / unit - 1e-9) * unit:.3g}")
    tol = {k: up(SAFETY * entry[k]) for k in ("abs", "int", "decades")}
    tol["int"] = math.ceil(tol["int"])
    if entry["bins"]:
        tol["decades"] = max(tol["decades"], round(entry["bins"]) + 1)
    tol["zero"] = float(f"{10 * entry['zero']:.0e}")
    return {k: v for k, v in tol.items() if v}


def apply() -> None:
    spread = json.loads(RECORD.read_text())["notebooks"]
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells = spread.get(path.name, {})
        for i, cell in enumerate(nb.cells):
            entry = cells.get(cell.get("id", str(i)))
            if entry is None or cell.cell_type != "code":
                continue  # not measured since its last edit: keep as is
            # a partial re-run measures fewer machines: never shrink
            tol = dict(cell.metadata.get("nbval_tolerance", {}))
            for k, v in tolerance(entry).items():
                tol[k] = max(tol.get(k, 0), v)
            if tol:
                cell.metadata["nbval_tolerance"] = tol
        nbformat.write(nb, path)


if __name__ == "__main__":
    {"run": run, "record": record, "apply": apply}[sys.argv[1]]()
