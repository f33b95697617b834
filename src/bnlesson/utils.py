"""Reproducibility and device helpers shared by every chapter.

Seeds are fixed, so a rerun on the same machine repeats. The thread count is
left to PyTorch (all cores, or ``OMP_NUM_THREADS`` / ``torch.set_num_threads``
set before ``setup``): other CPUs and thread counts change the last digits,
which the regression run tolerates (see ``tests/nbval_numeric.py``).
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

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
    name = prefer or os.environ.get("BNLESSON_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def get_profile(default: str = "quick") -> str:
    """The run profile: ``"quick"`` (default, mini data) or ``"full"``.

    Read from the environment variable ``BNLESSON_PROFILE`` so that nbval,
    papermill and ``python -m bnlesson.lessons`` can all choose it.
    """
    profile = os.environ.get("BNLESSON_PROFILE", default)
    if profile not in ("quick", "full"):
        raise ValueError(
            f"BNLESSON_PROFILE must be 'quick' or 'full', got {profile!r}; "
            "unset it for the default quick profile")
    return profile


#: Figure defaults: small PNGs keep the committed notebooks lean.
FIGURE_DPI = 72


def use_png_figures(dpi: int = FIGURE_DPI) -> None:
    """Inline PNG figures at a modest dpi (nbval skips PNG; SVG would be
    compared and differs run to run). Does nothing outside IPython."""
    import matplotlib
    matplotlib.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi,
                                "figure.figsize": (6.0, 3.5),
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
