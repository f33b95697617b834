"""Tests of bnlesson.data: the shipped subset, lookup order, verification,
atomic caching and the error messages."""
import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bnlesson import data

SYSTEM_COPY = Path("/usr/share/datasets/fashion-mnist")
needs_system_copy = pytest.mark.skipif(
    not (SYSTEM_COPY / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed")


# --------------------------------------------------------------------------
# helpers (the fixtures fake_full, isolated, mirror and system_copy are in
# tests/conftest.py)
# --------------------------------------------------------------------------
def _leftovers(folder: Path):
    """Temporary files an interrupted write would leave behind."""
    return sorted(p.name for p in folder.rglob("*.part"))


def _fill(folder: Path, files: dict, gz: bool = False) -> Path:
    """Write ``files`` ({name: bytes}) into ``folder``, gzipped if ``gz``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return folder


def _flipped(raw: bytes) -> bytes:
    """``raw`` with its last byte changed: same size, wrong checksum."""
    return raw[:-1] + bytes([raw[-1] ^ 0xFF])


def _corrupt_cache(root: Path, files: dict) -> Path:
    """The cache of ``root`` filled with ``files``, one of them corrupted;
    returns the corrupted file."""
    broken = _fill(data.cache_dir(root), files) / "t10k-labels-idx1-ubyte"
    broken.write_bytes(_flipped(files[broken.name]))
    return broken


# --------------------------------------------------------------------------
# the shipped mini subset
# --------------------------------------------------------------------------
def test_mini_shapes_types_and_strata():
    train_iter, test_iter = data.load_fashion_mnist(256)
    X, y = next(iter(train_iter))
    assert X.shape == (256, 1, 28, 28) and X.dtype == torch.float32
    assert y.shape == (256,) and y.dtype == torch.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert train_iter.num_examples == 10_000
    assert test_iter.num_examples == 2_000
    assert len(train_iter) == 40 and len(test_iter) == 8
    assert torch.bincount(train_iter.y).tolist() == [1000] * 10
    assert torch.bincount(test_iter.y).tolist() == [200] * 10
    sizes = [len(yb) for _, yb in test_iter]
    assert sizes[-1] == 2000 - 7 * 256  # last batch kept, like drop_last=False


def test_train_reshuffles_test_does_not():
    train_iter, test_iter = data.load_fashion_mnist(100)
    first = [yb for _, yb in train_iter][0]
    second = [yb for _, yb in train_iter][0]
    assert not torch.equal(first, second)
    a = torch.cat([yb for _, yb in test_iter])
    b = torch.cat([yb for _, yb in test_iter])
    assert torch.equal(a, b)


def test_shuffle_follows_torch_seed():
    train_iter, _ = data.load_fashion_mnist(64)
    torch.manual_seed(3)
    a = next(iter(train_iter))[1]
    torch.manual_seed(3)
    b = next(iter(train_iter))[1]
    assert torch.equal(a, b)


def test_resize_like_d2l():
    train_iter, _ = data.load_fashion_mnist(8, resize=32)
    X, _ = next(iter(train_iter))
    assert X.shape == (8, 1, 32, 32)
    with pytest.raises(ValueError, match="resize"):
        data.load_fashion_mnist(8, resize=-1)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "256"])
def test_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size"):
        data.load_fashion_mnist(bad)


def test_unknown_subset_is_a_clear_error():
    with pytest.raises(ValueError, match="'mini'.*'full'.*'small'"):
        data.load_fashion_mnist(32, subset="small")


def test_corrupted_mini_names_file_and_checksum(tmp_path):
    root = tmp_path / "data"
    (root / "mini").mkdir(parents=True)
    for f in data.mini_dir().iterdir():
        (root / "mini" / f.name).write_bytes(f.read_bytes())
    name = "t10k-labels-idx1-ubyte"
    path = root / "mini" / (name + ".gz")
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[100] ^= 1
    path.write_bytes(data.gzip_bytes(bytes(raw)))
    expected = data._read_manifest(data.mini_dir())[name]
    with pytest.raises(data.DataError, match=f"{name}.*{expected}"):
        data.load_tensors("mini", "test", root)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    root = tmp_path / "data"
    (root / "mini").mkdir(parents=True)
    for f in data.mini_dir().iterdir():
        (root / "mini" / f.name).write_bytes(f.read_bytes())
    path = root / "mini" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(data.DataError,
                       match="t10k-images.*not a complete gzip"):
        data.load_tensors("mini", "test", root)


def test_idx_round_trip_and_bad_header():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(data.parse_idx(data.encode_idx(array)), array)
    with pytest.raises(data.DataError, match="truncated"):
        data.parse_idx(data.encode_idx(array)[:-1], "x")
    with pytest.raises(data.DataError, match="magic"):
        data.parse_idx(b"\x01\x02\x03\x04", "x")


# --------------------------------------------------------------------------
# the full set: lookup order, verification, atomic cache, errors
# --------------------------------------------------------------------------
def test_nothing_anywhere_lists_three_ways(isolated, fake_full):
    with pytest.raises(data.DataError) as info:
        data.fetch(isolated)
    message = str(info.value)
    assert "1. put the IDX files" in message
    assert "2. install a system copy" in message and "apt-get" in message
    assert "3. download it" in message
    assert "download of http://127.0.0.1" in message
    assert "subset='mini'" in message
    assert _leftovers(isolated) == []


def test_system_copy_fills_cache(tmp_path, isolated, fake_full, monkeypatch):
    system = _fill(tmp_path / "system", fake_full, gz=True)
    monkeypatch.setenv("BNLESSON_SYSTEM_DATA", str(system))
    sources = data.fetch(isolated)
    assert set(sources.values()) == {f"system:{system}"}
    for name, raw in fake_full.items():
        assert (data.cache_dir(isolated) / name).read_bytes() == raw
    # second time: straight from the cache
    assert set(data.fetch(isolated).values()) == {"cache"}


def test_download_good_truncated_corrupted(isolated, fake_full, mirror):
    name = "train-images-idx3-ubyte"
    packed = {n + ".gz": gzip.compress(raw) for n, raw in fake_full.items()}

    # truncated download: clear error, nothing left in the cache
    mirror.update(packed)
    mirror[name + ".gz"] = packed[name + ".gz"][:50]
    with pytest.raises(data.DataError,
                       match=f"{name}.gz is not a complete gzip"):
        data.fetch(isolated)
    assert not (data.cache_dir(isolated) / name).exists()
    assert _leftovers(isolated) == []

    # corrupted download (valid gzip, wrong bytes): checksum error
    mirror[name + ".gz"] = gzip.compress(_flipped(fake_full[name]))
    with pytest.raises(data.DataError,
                       match=f"{name} fails its checksum.*"
                             f"{data.FULL_SHA256[name]}"):
        data.fetch(isolated)
    assert not (data.cache_dir(isolated) / name).exists()

    # good download: verified, cached, then loadable
    mirror.update(packed)
    sources = data.fetch(isolated)
    assert all(s.startswith("download:http://127.0.0.1")
               for s in sources.values())
    data._load_tensors.cache_clear()
    X, y = data.load_tensors("full", "train", isolated)
    assert X.shape == (20, 1, 28, 28) and y.tolist() == list(range(10)) * 2
    assert _leftovers(isolated) == []


def test_fetch_repairs_corrupt_cache_from_system_copy(isolated, fake_full,
                                                     system_copy, capsys):
    broken = _corrupt_cache(isolated, fake_full)
    assert data.main(["fetch", "--root", str(isolated)]) == 0
    assert broken.read_bytes() == fake_full[broken.name]
    out = capsys.readouterr().out
    assert f"replaced corrupt cached file {broken} from system:" in out
    # the good cached files stay as they are
    assert set(data.fetch(isolated).values()) == {"cache"}
    assert _leftovers(isolated) == []


def test_fetch_repairs_truncated_cache_by_download(isolated, fake_full,
                                                  mirror, capsys):
    mirror.update({n + ".gz": gzip.compress(raw)
                   for n, raw in fake_full.items()})
    cache = _fill(data.cache_dir(isolated), fake_full, gz=True)
    truncated = cache / "train-images-idx3-ubyte.gz"
    truncated.write_bytes(truncated.read_bytes()[:100])
    sources = data.fetch(isolated)
    assert sources["train-images-idx3-ubyte"].startswith("download:")
    assert list(sources.values()).count("cache") == 3
    assert not truncated.exists()  # the verified plain file replaces it
    assert (cache / "train-images-idx3-ubyte").read_bytes() == \
        fake_full["train-images-idx3-ubyte"]
    out = capsys.readouterr().out
    assert f"replaced corrupt cached file {truncated}" in out


def test_corrupt_cache_stays_when_every_source_is_bad(
        isolated, fake_full, system_copy, mirror):
    broken = _corrupt_cache(isolated, fake_full)
    corrupt = broken.read_bytes()
    (system_copy / broken.name).write_bytes(corrupt)
    mirror[broken.name + ".gz"] = gzip.compress(corrupt)[:20]
    with pytest.raises(data.DataError) as info:
        data.fetch(isolated)
    message = str(info.value)
    for where in (f"cache {broken.parent}", f"system:{system_copy}"):
        assert f"{where}: {broken.name} fails its checksum" in message
    assert f"{broken.name}.gz is not a complete gzip" in message
    assert broken.read_bytes() == corrupt  # nothing unverified replaced it
    assert _leftovers(isolated) == []


def test_loader_refuses_corrupt_cache(isolated, fake_full, system_copy):
    broken = _corrupt_cache(isolated, fake_full)
    with pytest.raises(data.DataError, match="fails its checksum") as info:
        data.load_fashion_mnist(8, subset="full", root=isolated)
    assert "\n" not in str(info.value) and "make data" in str(info.value)
    assert broken.read_bytes() == _flipped(fake_full[broken.name])


def test_unwritable_cache_is_a_clear_error(tmp_path, system_copy):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    # (a file in the way also fails for root, unlike chmod)
    with pytest.raises(data.DataError,
                       match="cannot write to .*BNLESSON_DATA"):
        data.fetch(blocker)


def test_cli_fetch_prints_sources(tmp_path, isolated, system_copy,
                                 monkeypatch, capsys):
    assert data.main(["fetch", "--root", str(isolated)]) == 0
    out = capsys.readouterr().out
    assert f"system:{system_copy}" in out and "verified" in out
    monkeypatch.setenv("BNLESSON_SYSTEM_DATA", "")
    assert data.main(["fetch", "--root", str(tmp_path / "empty"),
                      "--no-download"]) == 1
    assert "three ways" in capsys.readouterr().err


def test_make_mini_is_deterministic(tmp_path, fake_full, monkeypatch):
    monkeypatch.setattr(data, "MINI_PER_CLASS", {"train": 2, "test": 1})
    _fill(data.cache_dir(tmp_path), fake_full)
    a = data.make_mini(tmp_path, tmp_path / "a")
    b = data.make_mini(tmp_path, tmp_path / "b")
    for f in a.iterdir():
        assert f.read_bytes() == (b / f.name).read_bytes()
    labels = data.parse_idx(gzip.decompress(
        (a / "train-labels-idx1-ubyte.gz").read_bytes()))
    assert np.bincount(labels).tolist() == [2] * 10


def test_import_reads_and_downloads_nothing(tmp_path):
    code = (
        "import urllib.request\n"
        "def boom(*a, **k): raise AssertionError('network used at import')\n"
        "urllib.request.urlopen = boom\n"
        "import bnlesson, bnlesson.data, bnlesson.lessons\n")
    env = dict(os.environ, BNLESSON_DATA=str(tmp_path / "d"))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert not (tmp_path / "d").exists()


# --------------------------------------------------------------------------
# the real full set (CI installs Debian's copy)
# --------------------------------------------------------------------------
@needs_system_copy
def test_real_full_set_from_system_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("BNLESSON_SYSTEM_DATA", str(SYSTEM_COPY))
    root = tmp_path / "data"
    data.fetch(root, download=False)
    X, y = data.load_tensors("full", "train", root)
    assert X.shape == (60_000, 1, 28, 28)
    assert torch.bincount(y).tolist() == [6000] * 10
    # torchvision (and so d2l, via ../data) finds the cache without download
    import torchvision
    ds = torchvision.datasets.FashionMNIST(root=str(root), train=False,
                                           download=False)
    assert len(ds) == 10_000


@needs_system_copy
def test_shipped_mini_is_remade_byte_for_byte(tmp_path, monkeypatch):
    monkeypatch.setenv("BNLESSON_SYSTEM_DATA", str(SYSTEM_COPY))
    out = data.make_mini(tmp_path / "data", tmp_path / "mini")
    for f in data.mini_dir().glob("*.gz"):
        assert (out / f.name).read_bytes() == f.read_bytes(), f.name
    assert (out / "SHA256SUMS").read_text() == \
        (data.mini_dir() / "SHA256SUMS").read_text()


@needs_system_copy
def test_d2l_loader_finds_cache_from_notebooks_folder(tmp_path, monkeypatch):
    """d2l.load_data_fashion_mnist reads ../data relative to the notebook:
    after a fetch into <checkout>/data it must not try to download."""
    import warnings
    monkeypatch.setenv("BNLESSON_SYSTEM_DATA", str(SYSTEM_COPY))
    data.fetch(tmp_path / "data", download=False)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    import urllib.request

    def no_network(*args, **kwargs):
        raise AssertionError("d2l tried to download the data")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    from d2l import torch as d2l
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # d2l's 4 workers on a 2-core CPU
        train_iter, test_iter = d2l.load_data_fashion_mnist(256)
    assert len(train_iter.dataset) == 60_000
    assert len(test_iter.dataset) == 10_000
