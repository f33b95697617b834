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
exact.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).parent))
from nbval_numeric import compared_texts, split_numbers  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "spread"
RECORD = Path(__file__).with_name("spread.json")
#: Simulated machines: instruction-set levels and thread counts.
CONFIGS = {
    "default": {},
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "4 threads": {"OMP_NUM_THREADS": "4"},
    "avx2, 1 thread": {"ATEN_CPU_CAPABILITY": "avx2",
                       "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"},
    "default ISA, SSE4.1": {"ATEN_CPU_CAPABILITY": "default",
                            "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "avx512, 3 threads": {"ATEN_CPU_CAPABILITY": "avx512",
                          "OMP_NUM_THREADS": "3"},
}
#: Tolerance = SAFETY x the largest move measured (machines not simulated
#: here, arm64 or a GPU, may move a little further).
SAFETY = 3


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


def _moves(ref: str, new: str):
    """(abs move of fixed-point numbers, decades of e-notation numbers), or
    None when the text around the numbers differs."""
    ref_text, ref_nums = split_numbers(ref)
    new_text, new_nums = split_numbers(new)
    if ref_text != new_text:
        return None
    fixed, decades = 0.0, 0.0
    for a, b in zip(ref_nums, new_nums, strict=True):
        if a == b:
            continue
        if "e" in a.lower() or "e" in b.lower():
            x, y = abs(float(a)), abs(float(b))
            decades = max(decades, math.inf if min(x, y) == 0
                          else abs(math.log10(x / y)))
        else:
            fixed = max(fixed, abs(float(a) - float(b)))
    return fixed, decades


def record() -> None:
    configs = [n for n in CONFIGS if folder(n).is_dir()]
    result = {"configs": {n: CONFIGS[n] for n in configs}, "safety": SAFETY,
              "notebooks": {}}
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        ref = nbformat.read(path, as_version=4)
        cells = {}
        for name in configs:
            copy = folder(name) / path.name
            if not copy.exists():
                continue
            new = nbformat.read(copy, as_version=4)
            pairs = zip(ref.cells, new.cells, strict=False)
            for i, (a, b) in enumerate(pairs):
                if a.cell_type != "code" or not a.outputs:
                    continue
                ref_texts, new_texts = compared_texts(a), compared_texts(b)
                if ref_texts is None:  # output not compared
                    continue
                entry = cells.setdefault(a.get("id", str(i)), {
                    "cell": i, "abs": 0.0, "decades": 0.0, "text differs": []})
                if [k for k, _ in ref_texts] != [k for k, _ in new_texts]:
                    entry["text differs"].append(name)
                    continue
                for (_, r), (_, t) in zip(ref_texts, new_texts, strict=True):
                    moved = _moves(r, t)
                    if moved is None:
                        entry["text differs"].append(name)
                        break
                    entry["abs"] = max(entry["abs"], moved[0])
                    entry["decades"] = max(entry["decades"], moved[1])
        result["notebooks"][path.name] = {
            k: v for k, v in cells.items()
            if v["abs"] or v["decades"] or v["text differs"]}
    RECORD.write_text(json.dumps(result, indent=1) + "\n")
    for nb, cells in result["notebooks"].items():
        for v in cells.values():
            print(f"{nb[:2]} cell {v['cell']:3d}: abs {v['abs']:.3g}, "
                  f"decades {v['decades']:.2g}"
                  + (f", TEXT DIFFERS in {v['text differs']}"
                     if v["text differs"] else ""))


def nice_ceil(x: float) -> float:
    """The smallest of 1, 2, 5 x 10^k that is >= x."""
    if x <= 0:
        return 0.0
    k = math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if m * 10 ** k >= x * (1 - 1e-9):
            return float(f"{m * 10 ** k:.1g}")


def apply() -> None:
    spread = json.loads(RECORD.read_text())["notebooks"]
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells = spread.get(path.name, {})
        for i, cell in enumerate(nb.cells):
            entry = cells.get(cell.get("id", str(i)))
            cell.metadata.pop("nbval_tolerance", None)
            if entry is None or cell.cell_type != "code":
                continue
            tol = {"abs": nice_ceil(SAFETY * entry["abs"]),
                   "decades": nice_ceil(SAFETY * entry["decades"])}
            tol = {k: v for k, v in tol.items() if v}
            if tol:
                cell.metadata["nbval_tolerance"] = tol
        nbformat.write(nb, path)


if __name__ == "__main__":
    {"run": run, "record": record, "apply": apply}[sys.argv[1]]()
