"""Helpers shared by every chapter and module: seeds, device, environment,
files, figures.

Seeds are fixed, so a rerun on the same machine repeats. The thread count is
left to PyTorch (all cores, or ``OMP_NUM_THREADS`` / ``torch.set_num_threads``
set before ``setup``): other CPUs and thread counts change the last digits,
which the regression run tolerates (see ``tests/nbval_numeric.py``).
"""
from __future__ import annotations

import itertools
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

#: Every environment variable the package reads, with its meaning (the
#: README's table says the same).
ENV_VARS = {
    "BNLESSON_PROFILE": "run profile: quick (default) or full",
    "BNLESSON_DEVICE": "force a device, e.g. cpu (default: the GPU if any)",
    "BNLESSON_PROGRESS": "0 hides the progress bars",
    "BNLESSON_CACHE_DIR": "folder of cached runs (default: .cache/runs)",
    "BNLESSON_NO_CACHE": "1 never reads or writes cached runs",
    "BNLESSON_DATA": "data folder (default: the checkout's data/)",
    "BNLESSON_SYSTEM_DATA": "system copies of Fashion-MNIST, :-separated "
                            "(empty: none)",
    "BNLESSON_MIRROR": "download mirror of Fashion-MNIST",
}


def env(name: str, default: str | None = None) -> str | None:
    """The value of the package's environment variable ``name`` (a key of
    :data:`ENV_VARS`), or ``default`` when it is not set."""
    if name not in ENV_VARS:
        raise KeyError(f"{name} is not in bnlesson.utils.ENV_VARS")
    return os.environ.get(name, default)


def env_flag(name: str, default: bool) -> bool:
    """A yes/no environment variable: 1/true/yes/on or 0/false/no/off
    (any case); ``default`` when unset or anything else."""
    value = (env(name) or "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return default


def repo_root() -> Path | None:
    """The checkout holding this package (the folder with pyproject.toml)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    return None


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and
    ``os.replace``, so a crash never leaves a half-written file there."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".",
                               suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; data files are shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_device(net: nn.Module) -> torch.device:
    """The device of ``net``'s first parameter (or buffer); CPU if none."""
    for tensor in itertools.chain(net.parameters(), net.buffers()):
        return tensor.device
    return torch.device("cpu")


def table(header, rows, fmt: str = ".3f") -> str:
    """Rows as aligned text: the header, a rule, one line per row. Floats are
    printed with ``fmt``, other values with ``str``; the first column is
    left-aligned, the others right-aligned (numbers line up)."""
    cells = [[str(h) for h in header]]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"table: a row has {len(row)} cells, the header "
                             f"{len(header)}")
        cells.append([format(v, fmt) if isinstance(v, float) else str(v)
                      for v in row])
    widths = [max(len(r[j]) for r in cells) for j in range(len(header))]
    lines = ["  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w)
                       in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in cells]
    lines.insert(1, "-" * len(max(lines, key=len)))
    return "\n".join(lines)


def set_seed(seed: int = 0) -> None:
    """Seed Python's, NumPy's and PyTorch's random generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def get_device(prefer: str | None = None) -> torch.device:
    """The GPU when one is present, else the CPU.

    ``prefer`` (or the environment variable ``BNLESSON_DEVICE``) forces a
    device, e.g. ``"cpu"`` to reproduce the committed outputs exactly.
    """
    name = prefer or env("BNLESSON_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


#: Figure resolution: sharp on high-DPI screens, PNGs still small.
FIGURE_DPI = 110


def use_png_figures(dpi: int = FIGURE_DPI) -> None:
    """Inline PNG figures at a modest dpi (nbval skips PNG; SVG would be
    compared and differs run to run). Does nothing outside IPython."""
    import matplotlib

    from bnlesson.plotting import FIGSIZE
    matplotlib.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi,
                                "figure.figsize": FIGSIZE,
                                "axes.grid": True, "grid.alpha": 0.3})
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and "IPKernelApp" in shell.config:
        shell.run_line_magic("matplotlib", "inline")
        from matplotlib.figure import Figure
        from matplotlib_inline.backend_inline import set_matplotlib_formats
        set_matplotlib_formats("png")
        # The text shown beside each PNG (text-only viewers, diffs, nbval):
        # the panels' titles instead of "<Figure size 648x216 with 2 Axes>".
        shell.display_formatter.formatters["text/plain"].for_type(
            Figure, lambda fig, printer, cycle: printer.text(
                figure_alt_text(fig)))


def figure_alt_text(fig) -> str:
    """A short text stand-in for a figure, one entry per panel: its title,
    else "y label vs x label": ``"[figure: loss | accuracy vs epoch]"``;
    ``"[figure, 3 panels]"`` when no panel has either."""
    panels = []
    for ax in fig.axes:
        if ax.get_title():
            panels.append(ax.get_title())
        elif ax.get_ylabel() and ax.get_xlabel():
            panels.append(f"{ax.get_ylabel()} vs {ax.get_xlabel()}")
    if panels:
        return "[figure: " + " | ".join(panels) + "]"
    count = len(fig.axes)
    return f"[figure, {count} panel{'s' if count != 1 else ''}]"


def use_deterministic_gpu(device: torch.device) -> None:
    """On a CUDA device, pick deterministic kernels (cuDNN's and cuBLAS's),
    so that two runs of the same training give the same numbers there too.

    Without this, GPU kernels that sum with atomic additions (e.g. cuDNN's
    weight gradients) round differently from run to run, and two trainings
    a chapter claims to be identical drift apart. Ops with no deterministic
    version only warn. Does nothing on the CPU, whose kernels are already
    deterministic for a fixed thread count (and where PyTorch's
    deterministic mode would fill every new tensor, which costs time).
    """
    if device.type != "cuda":
        return
    # cuBLAS reads this when its first handle is made, i.e. at the first
    # matrix product, which comes after the setup cell.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False


def setup(seed: int = 0) -> torch.device:
    """One call for a notebook's setup cell: seeds, PNG figures,
    deterministic GPU kernels; returns the device to train on (the GPU
    when present). CPU threads stay as PyTorch chose them."""
    set_seed(seed)
    use_png_figures()
    device = get_device()
    use_deterministic_gpu(device)
    return device
