"""Session-wide settings for `python -m pytest` (unit tests and nbval).

Set before any notebook kernel starts, so the kernels inherit them: the
committed outputs are the quick profile's, without progress bars. Numbers
in the outputs are compared with the tolerances stored in each cell
(`tests/nbval_numeric.py`), so any CPU, thread count or GPU passes.
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "tests"))
pytest_plugins = ["nbval_numeric"]

os.environ["BNLESSON_PROFILE"] = "quick"
os.environ.setdefault("BNLESSON_PROGRESS", "0")
