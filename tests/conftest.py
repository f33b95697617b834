"""Fixtures shared by the unit tests (the only place that defines any)."""
import http.server
import socket
import threading

import matplotlib

matplotlib.use("Agg")  # no display; set before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from bnlesson import data  # noqa: E402
from bnlesson.plotting import FIGSIZE  # noqa: E402


# --------------------------------------------------------------------------
# Running the tests
# --------------------------------------------------------------------------
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
def seeded():
    """The global RNG seeded with 0 before the test."""
    torch.manual_seed(0)


@pytest.fixture
def ax(monkeypatch):
    def no_show(*args, **kwargs):
        raise AssertionError("helpers must not call plt.show()")

    monkeypatch.setattr(plt, "show", no_show)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    yield ax
    plt.close(fig)


# --------------------------------------------------------------------------
# Training: toy data, an empty run cache
# --------------------------------------------------------------------------
@pytest.fixture
def toy_data():
    """``toy_data(num_examples, seed=0)``: easy synthetic images, class k
    lights up row block k. X (N, 1, 28, 28) float32, y (N,) int64."""
    def make(num_examples, seed=0):
        gen = torch.Generator().manual_seed(seed)
        y = torch.randint(0, 10, (num_examples,), generator=gen)
        X = 0.3 * torch.rand(num_examples, 1, 28, 28, generator=gen)
        for i, label in enumerate(y.tolist()):
            X[i, 0, 2 * label:2 * label + 3] += 0.7
        return X, y
    return make


@pytest.fixture
def iters(toy_data):
    """(train_iter, test_iter): 96 shuffled toy examples in batches of 16,
    40 test examples."""
    return (data.BatchIterator(*toy_data(96), 16, shuffle=True),
            data.BatchIterator(*toy_data(40, seed=1), 16))


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty run cache for the test, with caching allowed."""
    monkeypatch.setenv("BNLESSON_CACHE_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("BNLESSON_NO_CACHE", raising=False)
    return tmp_path / "runs"


# --------------------------------------------------------------------------
# Data: a tiny synthetic "full" data set, a local HTTP mirror
# --------------------------------------------------------------------------
@pytest.fixture
def fake_full(monkeypatch):
    """Synthetic IDX files (20 train / 10 test) whose checksums replace the
    official ones; returns {name: decompressed bytes}."""
    rng = np.random.default_rng(1)
    files = {}
    for split, n in (("train", 20), ("test", 10)):
        img_name, lbl_name = data.SPLIT_FILES[split]
        files[img_name] = data.encode_idx(
            rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        files[lbl_name] = data.encode_idx(np.arange(n, dtype=np.uint8) % 10)
    monkeypatch.setattr(data, "FULL_SHA256",
                        {k: data.sha256(v) for k, v in files.items()})
    return files


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """An empty data root, no system copy, a mirror nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    monkeypatch.setenv("BNLESSON_SYSTEM_DATA", "")
    monkeypatch.setenv("BNLESSON_MIRROR", f"http://127.0.0.1:{free_port}/")
    return tmp_path / "data"


@pytest.fixture
def mirror(monkeypatch):
    """A local HTTP server on 127.0.0.1 serving the dict it returns."""
    served = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = served.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep pytest's output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("BNLESSON_MIRROR",
                       f"http://127.0.0.1:{server.server_address[1]}/")
    yield served
    server.shutdown()
    server.server_close()


@pytest.fixture
def system_copy(tmp_path, fake_full, monkeypatch):
    """A system copy of the fake full set (plain IDX files), in use."""
    folder = tmp_path / "system"
    folder.mkdir()
    for name, raw in fake_full.items():
        (folder / name).write_bytes(raw)
    monkeypatch.setenv("BNLESSON_SYSTEM_DATA", str(folder))
    return folder
