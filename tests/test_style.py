"""The code passes ruff (configured in pyproject.toml), so that
``python -m pytest`` is the one command that checks it too."""
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ruff", reason="ruff is not installed "
                    "(pip install -c constraints.txt -e '.[test]')")

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache",
         "src", "tests", "benchmarks", "conftest.py"],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
