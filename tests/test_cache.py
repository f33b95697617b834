"""The run cache: one computation per configuration, read back from disk."""
import os

import pytest
import torch
from torch import nn

from bnlesson.cache import run_cache_dir, run_cached
from bnlesson.train import History


class Counter:
    """A compute function that counts its calls."""

    def __init__(self, value=None):
        self.calls = 0
        self.value = value if value is not None else {
            "loss": [1.5, 0.5], "weights": torch.arange(4.0)}

    def __call__(self):
        self.calls += 1
        return self.value


def entries(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_run_cache_dir_default_and_override(monkeypatch, cache_dir):
    assert run_cache_dir() == cache_dir
    monkeypatch.delenv("BNLESSON_CACHE_DIR")
    default = run_cache_dir()
    assert default.parts[-2:] == (".cache", "runs")
    assert (default.parent.parent / "pyproject.toml").is_file()


def test_run_cached_reuses_the_result(cache_dir):
    compute = Counter()
    first = run_cached({"model": "lenet", "lr": 1.0}, compute)
    second = run_cached({"lr": 1.0, "model": "lenet"}, compute)  # same key
    assert compute.calls == 1
    assert second["loss"] == first["loss"]
    assert torch.equal(second["weights"], first["weights"])
    run_cached({"model": "lenet", "lr": 0.5}, compute)
    assert compute.calls == 2
    assert len(entries(cache_dir)) == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_entry_is_recomputed(cache_dir, damage):
    compute = Counter()
    run_cached({"a": 1}, compute)
    path, = cache_dir.iterdir()
    data = path.read_bytes()
    damaged = {"truncate": data[:len(data) // 2],
               "garbage": b"\x00" * 100,
               "empty": b""}[damage]
    path.write_bytes(damaged)
    result = run_cached({"a": 1}, compute)
    assert compute.calls == 2
    assert torch.equal(result["weights"], torch.arange(4.0))
    run_cached({"a": 1}, compute)  # rewritten and valid again
    assert compute.calls == 2


def test_entry_under_the_wrong_name_is_not_trusted(cache_dir):
    run_cached({"a": 1}, Counter())
    first, = cache_dir.iterdir()
    run_cached({"a": 2}, Counter())
    second, = set(cache_dir.iterdir()) - {first}
    second.write_bytes(first.read_bytes())
    compute = Counter()
    run_cached({"a": 2}, compute)
    assert compute.calls == 1


def test_opt_out_by_environment(cache_dir, monkeypatch):
    compute = Counter()
    monkeypatch.setenv("BNLESSON_NO_CACHE", "1")
    run_cached({"a": 1}, compute)
    run_cached({"a": 1}, compute)
    assert compute.calls == 2
    assert entries(cache_dir) == []


def test_failing_compute_leaves_no_file(cache_dir):
    def compute():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_cached({"a": 1}, compute)
    assert entries(cache_dir) == []


def test_unstorable_result_raises_and_leaves_no_file(cache_dir):
    with pytest.raises(TypeError, match="to_dict"):
        run_cached({"a": 1}, Counter(value={"history": History()}))
    assert entries(cache_dir) == []


def test_failed_write_leaves_no_partial_file(cache_dir, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    result = run_cached({"a": 1}, Counter())
    assert result["loss"] == [1.5, 0.5]  # the result still comes back
    assert entries(cache_dir) == []


def test_config_must_be_json(cache_dir):
    with pytest.raises(TypeError, match="JSON"):
        run_cached({"net": nn.Linear(1, 1)}, Counter())
