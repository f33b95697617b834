"""Fashion-MNIST, offline by default.

Two subsets:

* ``"mini"``: 10,000 training and 2,000 test images (equal per class) in the
  original IDX gzip format, shipped in ``data/mini/`` so every notebook runs
  with no network. ``python -m bnlesson.data make-mini`` re-makes it from the
  full set, byte for byte.
* ``"full"``: the 60,000 / 10,000 images. Looked up, in order, in the cache
  ``data/FashionMNIST/raw/`` (torchvision's layout, so
  ``d2l.load_data_fashion_mnist`` run from ``notebooks/`` finds it through
  ``../data``), in a system copy (Debian's ``dataset-fashion-mnist`` package:
  ``/usr/share/datasets/fashion-mnist/``), then downloaded from the official
  mirror. Every file is verified against the SHA-256 of its decompressed IDX
  bytes, and the cache is filled atomically (temporary file + rename).
  ``fetch`` replaces a corrupt cached file from the next source; the
  loaders refuse it.

Nothing is read or downloaded at import time.

Command line::

    python -m bnlesson.data fetch      # get, verify, repair the full set
    python -m bnlesson.data verify     # check the mini subset
    python -m bnlesson.data make-mini  # re-make data/mini from the full set
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import sys
import urllib.error
import urllib.request
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from bnlesson.utils import atomic_write, env, repo_root

#: Class names, index = label.
CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle boot")

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: SHA-256 of the *decompressed* official IDX files. (Checksums of the .gz
#: files would reject Debian's copy, which is recompressed.)
FULL_SHA256 = {
    "train-images-idx3-ubyte":
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte":
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte":
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte":
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_DIRS = ("/usr/share/datasets/fashion-mnist",)
#: Examples per class in the shipped mini subset.
MINI_PER_CLASS = {"train": 1000, "test": 200}
MINI_SEED = 0
MANIFEST = "SHA256SUMS"
#: How to mend a corrupt cached file (the loaders refuse it).
REPAIR = "python -m bnlesson.data fetch (make data) replaces it"


class DataError(RuntimeError):
    """The data could not be found, fetched or verified."""


# --------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------
def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, ``$BNLESSON_DATA``, or the checkout's
    ``data/``."""
    if root is not None:
        return Path(root)
    if env("BNLESSON_DATA"):
        return Path(env("BNLESSON_DATA"))
    top = repo_root()
    if top is None:
        return Path.home() / ".cache" / "bnlesson" / "data"
    return top / "data"


def mini_dir(root=None) -> Path:
    """Folder of the shipped mini subset: ``mini/`` in the data folder, or,
    where that is missing and the package was installed from the wheel, the
    copy inside the package."""
    folder = data_root(root) / "mini"
    installed = Path(__file__).parent / "mini"
    if not folder.is_dir() and installed.is_dir():
        return installed
    return folder


def cache_dir(root=None) -> Path:
    """Cache of the full set, in torchvision's ``FashionMNIST/raw`` layout."""
    return data_root(root) / "FashionMNIST" / "raw"


def system_dirs() -> list[Path]:
    """System copies to look in (``$BNLESSON_SYSTEM_DATA``, ``:``-separated,
    replaces the default Debian location)."""
    value = env("BNLESSON_SYSTEM_DATA")
    dirs = value.split(os.pathsep) if value is not None else SYSTEM_DIRS
    return [Path(d) for d in dirs if d]


def mirror_url() -> str:
    """Download mirror (``$BNLESSON_MIRROR`` overrides the official one)."""
    url = env("BNLESSON_MIRROR") or MIRROR
    return url if url.endswith("/") else url + "/"


# --------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _gunzip(raw: bytes, where: str) -> bytes:
    """``raw`` decompressed; a clear error when it is not complete gzip."""
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{where} is not a complete gzip file ({exc})") \
            from exc


def _read_maybe_gz(path: Path) -> bytes:
    """Bytes of ``path``, decompressed when it is gzip."""
    raw = path.read_bytes()
    return _gunzip(raw, str(path)) if raw[:2] == b"\x1f\x8b" else raw


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse IDX bytes (uint8 payload) into an array; images (N, 28, 28)."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DataError(f"{name} is not an unsigned-byte IDX file "
                        "(bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big")
                  for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(f"{name} holds {len(data)} bytes, its header "
                        f"{shape} needs {expected}: the file is truncated "
                        "or corrupted")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """Inverse of :func:`parse_idx` for uint8 arrays."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (no file name, mtime 0) so re-made files match."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0,
                       compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    """:func:`~bnlesson.utils.atomic_write`, with a clear error for a data
    folder that cannot be written."""
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise DataError(
            f"cannot write to {path.parent} ({exc.strerror or exc}); make it "
            "writable, or point BNLESSON_DATA (or root=...) at a writable "
            "folder") from exc


def _verified(data: bytes, name: str, expected: str, where: str) -> bytes:
    actual = sha256(data)
    if actual != expected:
        raise DataError(f"{where}: {name} fails its checksum (expected "
                        f"SHA-256 {expected}, got {actual}): corrupted or "
                        "truncated")
    return data


# --------------------------------------------------------------------------
# Finding the full set
# --------------------------------------------------------------------------
def _find(folder: Path, name: str) -> Path | None:
    """``name`` in ``folder``, plain or .gz, or None."""
    for path in (folder / name, folder / (name + ".gz")):
        if path.is_file():
            return path
    return None


def _download(url: str, timeout: float = 60.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _read_source(source: str, name: str) -> bytes | None:
    """Decompressed bytes of ``name`` from ``"system:<dir>"`` or
    ``"download:<url>"``; None when that system copy lacks the file."""
    kind, where = source.split(":", 1)
    if kind == "system":
        path = _find(Path(where), name)
        return None if path is None else _read_maybe_gz(path)
    try:
        packed = _download(where)
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(f"download of {where} failed: {exc}") from exc
    return _gunzip(packed, f"download of {where}")


def fetch(root=None, *, download: bool = True, repair: bool = True,
          verbose: bool = False) -> dict:
    """Make sure the verified full set is in the cache; return its sources.

    Returns ``{file name: "cache" | "system:<dir>" | "download:<url>"}``.
    A corrupt or truncated cached file is replaced from the next source
    (``repair=True``, like torchvision's ``download=True``) or refused
    (``repair=False``, what the loaders do). Raises :class:`DataError`
    (listing the three ways to get the data) when no source has a verified
    copy; the cache then keeps what it had.
    """
    cache = cache_dir(root)
    sources = {}
    for name, expected in FULL_SHA256.items():
        sources[name] = _fetch_one(name, expected, cache, download, repair)
        if verbose:
            print(f"{name:26s} {sources[name]}")
    return sources


def _fetch_one(name: str, expected: str, cache: Path, download: bool,
               repair: bool) -> str:
    """Where the verified ``name`` in ``cache`` came from (see fetch)."""
    errors = []
    cached = _find(cache, name)
    if cached is not None:
        try:
            _verified(_read_maybe_gz(cached), name, expected, f"cache {cache}")
            return "cache"
        except DataError as exc:
            if not repair:
                raise DataError(f"{exc}; {REPAIR}") from None
            errors.append(str(exc))
    sources = [f"system:{folder}" for folder in system_dirs()]
    if download:
        sources.append(f"download:{mirror_url()}{name}.gz")
    for source in sources:
        try:
            data = _read_source(source, name)
            if data is None:
                continue
            _verified(data, name, expected, source)
        except DataError as exc:
            errors.append(str(exc))
            continue
        _write(cache / name, data)
        if cached is not None:
            if cached != cache / name:
                cached.unlink()
            print(f"replaced corrupt cached file {cached} from {source}")
        return source
    raise DataError(_missing_message(name, cache, errors))


def _missing_message(name: str, cache: Path, errors: list[str]) -> str:
    looked = ", ".join(str(d) for d in system_dirs()) or "(none configured)"
    detail = "".join(f"\n  ({e})" for e in errors)
    return (
        f"Fashion-MNIST file {name}: no verified copy found.{detail}\n"
        "Get the full data set in one of three ways:\n"
        "  1. put the IDX files (.gz or decompressed) into the cache "
        f"{cache};\n"
        "  2. install a system copy: sudo apt-get install "
        f"dataset-fashion-mnist (looked in: {looked});\n"
        "  3. download it with network access: python -m bnlesson.data "
        "fetch (or make data).\n"
        "Without any of these, use subset='mini', which ships with the "
        "repository.")


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------
def _read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST
    if not path.is_file():
        raise DataError(f"{path} is missing: the mini subset is incomplete; "
                        "restore data/mini from the repository (git checkout "
                        "data/mini)")
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, fname = line.split()
            sums[fname.lstrip("*")] = digest
    return sums


def _load_split_bytes(subset: str, split: str, root) -> tuple[bytes, bytes]:
    if subset == "mini":
        folder = mini_dir(root)
        sums = _read_manifest(folder)
        out = []
        for name in SPLIT_FILES[split]:
            path = folder / (name + ".gz")
            if not path.is_file():
                raise DataError(f"{path} is missing; restore it with "
                                "git checkout data/mini")
            try:
                out.append(_verified(_read_maybe_gz(path), name, sums[name],
                                     f"mini subset {folder}"))
            except DataError as exc:
                raise DataError(f"{exc}; restore it with git checkout "
                                "data/mini") from None
        return tuple(out)
    fetch(root, repair=False)  # fills a missing file, refuses a corrupt one
    cache = cache_dir(root)
    return tuple(_read_maybe_gz(_find(cache, n)) for n in SPLIT_FILES[split])


@lru_cache(maxsize=8)
def _load_tensors(subset: str, split: str, root_key: str):
    images_b, labels_b = _load_split_bytes(subset, split, Path(root_key))
    images = parse_idx(images_b, SPLIT_FILES[split][0])
    labels = parse_idx(labels_b, SPLIT_FILES[split][1])
    if len(images) != len(labels):
        raise DataError(f"{subset}/{split}: {len(images)} images but "
                        f"{len(labels)} labels")
    X = torch.from_numpy(images.copy()).unsqueeze(1).float().div_(255)
    y = torch.from_numpy(labels.astype(np.int64))
    return X, y


def load_tensors(subset: str = "mini", split: str = "train", root=None):
    """The whole split in memory: ``X`` (N, 1, 28, 28) float32 in [0, 1],
    ``y`` (N,) int64. Loaded once per process and cached (do not modify the
    returned tensors in place)."""
    _check_subset(subset)
    if split not in SPLIT_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _load_tensors(subset, split, str(data_root(root).resolve()))


def _check_subset(subset):
    if subset not in ("mini", "full"):
        raise ValueError(
            f"subset must be 'mini' (shipped, offline) or 'full' (60,000 "
            f"images; see python -m bnlesson.data fetch), got {subset!r}")


class BatchIterator:
    """Mini-batches from tensors held in memory, like a ``DataLoader``.

    Iterating yields ``(X, y)``: X (B, 1, H, W) float32, y (B,) int64; the
    last batch may be smaller (like ``drop_last=False``). With
    ``shuffle=True`` each pass draws a new permutation from ``generator``
    (default: PyTorch's global generator, so ``torch.manual_seed`` fixes it).
    No worker processes: slicing preloaded tensors is faster than any
    loader on a 2-core laptop.
    """

    def __init__(self, X, y, batch_size, shuffle=False, resize=None,
                 generator=None):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, "
                             f"got {batch_size!r}")
        self.X, self.y = X, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.resize = _check_resize(resize)
        self.generator = generator

    @property
    def num_examples(self) -> int:
        return len(self.y)

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        n = len(self.y)
        order = (torch.randperm(n, generator=self.generator)
                 if self.shuffle else None)
        for start in range(0, n, self.batch_size):
            if order is None:
                X = self.X[start:start + self.batch_size]
                y = self.y[start:start + self.batch_size]
            else:
                idx = order[start:start + self.batch_size]
                X, y = self.X[idx], self.y[idx]
            if self.resize is not None:
                X = torch.nn.functional.interpolate(
                    X, size=self.resize, mode="bilinear", antialias=True,
                    align_corners=False)
            yield X, y

    def __repr__(self):
        return (f"BatchIterator({self.num_examples} examples, batch_size="
                f"{self.batch_size}, shuffle={self.shuffle})")


def _check_resize(resize):
    if resize is None:
        return None
    if isinstance(resize, int):
        resize = (resize, resize)
    if (not isinstance(resize, (tuple, list)) or len(resize) != 2
            or not all(isinstance(s, int) and s > 0 for s in resize)):
        raise ValueError(f"resize must be None, a positive int or (H, W), "
                         f"got {resize!r}")
    return tuple(resize)


def load_fashion_mnist(batch_size, resize=None, subset="mini", root=None):
    """``(train_iter, test_iter)`` shaped like ``d2l.load_data_fashion_mnist``.

    Batches: X (B, 1, 28, 28) float32 in [0, 1] (or ``resize`` × ``resize``),
    y (B,) int64. Train is reshuffled each pass, test is not.
    ``subset="mini"`` (default) uses the shipped 10,000/2,000 subset;
    ``"full"`` the 60,000/10,000 images (fetched and verified on first use).
    """
    _check_subset(subset)
    train = load_tensors(subset, "train", root)
    test = load_tensors(subset, "test", root)
    return (BatchIterator(*train, batch_size, shuffle=True, resize=resize),
            BatchIterator(*test, batch_size, shuffle=False, resize=resize))


# --------------------------------------------------------------------------
# The mini subset
# --------------------------------------------------------------------------
def stratified_indices(labels: np.ndarray, per_class: int,
                       seed: int = MINI_SEED) -> np.ndarray:
    """Sorted indices of ``per_class`` examples of every class, drawn with a
    fixed seed (deterministic: same labels → same indices)."""
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(10):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise DataError(f"class {c} has only {len(members)} examples, "
                            f"{per_class} requested")
        picks.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(picks))


def make_mini(root=None, out=None) -> Path:
    """Re-make the mini subset from the verified full set (deterministic)."""
    fetch(root, download=True)
    out = Path(out) if out is not None else mini_dir(root)
    cache = cache_dir(root)
    lines = []
    for split, (img_name, lbl_name) in SPLIT_FILES.items():
        images = parse_idx(_read_maybe_gz(_find(cache, img_name)), img_name)
        labels = parse_idx(_read_maybe_gz(_find(cache, lbl_name)), lbl_name)
        idx = stratified_indices(labels, MINI_PER_CLASS[split])
        for name, array in ((img_name, images[idx]), (lbl_name, labels[idx])):
            raw = encode_idx(array)
            _write(out / (name + ".gz"), gzip_bytes(raw))
            lines.append(f"{sha256(raw)}  {name}")
    _write(out / MANIFEST, ("\n".join(sorted(lines)) + "\n").encode())
    return out


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bnlesson.data", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("fetch", "verify", "make-mini"))
    parser.add_argument("--root", help="data folder (default: the repo's "
                        "data/ or $BNLESSON_DATA)")
    parser.add_argument("--no-download", action="store_true",
                        help="only look in the cache and system copies")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(f"Fashion-MNIST (full) -> {cache_dir(args.root)}")
            fetch(args.root, download=not args.no_download, verbose=True)
            print("all files present and verified (SHA-256)")
        elif args.command == "verify":
            for split in SPLIT_FILES:
                X, _ = load_tensors("mini", split, args.root)
                print(f"mini {split:5s}: {len(X):6d} images, verified")
        else:
            print(f"mini subset written to {make_mini(args.root)}")
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
