"""Fixtures shared by the unit tests."""
import matplotlib

matplotlib.use("Agg")  # no display; set before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from bnlesson.plotting import FIGSIZE  # noqa: E402


@pytest.fixture
def ax(monkeypatch):
    def no_show(*args, **kwargs):
        raise AssertionError("helpers must not call plt.show()")

    monkeypatch.setattr(plt, "show", no_show)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    yield ax
    plt.close(fig)


@pytest.fixture(scope="module")
def one_thread():
    """One PyTorch thread for a module of tests on tiny models: as fast as
    two, and no stall when other processes hold the second core. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty run cache for the test, with caching allowed."""
    monkeypatch.setenv("BNLESSON_CACHE_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("BNLESSON_NO_CACHE", raising=False)
    return tmp_path / "runs"
