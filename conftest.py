"""Session-wide settings for `python -m pytest` (unit tests and nbval).

Set before any notebook kernel starts, so the kernels inherit them: the
committed outputs are the quick profile's, on the CPU, without progress bars.
"""
import os

os.environ["BNLESSON_PROFILE"] = "quick"
os.environ.setdefault("BNLESSON_DEVICE", "cpu")
os.environ.setdefault("BNLESSON_PROGRESS", "0")
