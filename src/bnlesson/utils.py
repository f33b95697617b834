"""Reproducibility and device helpers shared by every chapter.

The notebooks are regression-tested with strict nbval, so a rerun must print
the same digits: seeds are fixed and so is the number of CPU threads (the
order of floating-point reductions depends on it).
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

#: Threads used for CPU math. Fixed (not "all cores") so results do not
#: depend on the machine's core count; 2 matches a small laptop and CI.
NUM_THREADS = int(os.environ.get("BNLESSON_THREADS", "2"))


def set_seed(seed: int = 0) -> None:
    """Seed Python's, NumPy's and PyTorch's random generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(num_threads: int = NUM_THREADS) -> None:
    """Fix PyTorch's intra-op thread count (results depend on it)."""
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    torch.set_num_threads(num_threads)


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


def setup(seed: int = 0, num_threads: int = NUM_THREADS) -> torch.device:
    """One call for a notebook's setup cell: seed, threads, device.

    Returns the device to train on.
    """
    set_threads(num_threads)
    set_seed(seed)
    return get_device()
