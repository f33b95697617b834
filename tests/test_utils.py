"""Tests of bnlesson.utils: seeds, device, profile, environment, files."""
import random
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from bnlesson import utils

ROOT = Path(__file__).resolve().parents[1]


def test_set_seed_fixes_every_generator():
    utils.set_seed(3)
    first = (random.random(), torch.rand(2))
    utils.set_seed(3)
    second = (random.random(), torch.rand(2))
    assert first[0] == second[0] and torch.equal(first[1], second[1])


def test_device_can_be_forced(monkeypatch):
    monkeypatch.setenv("BNLESSON_DEVICE", "cpu")
    assert utils.get_device() == torch.device("cpu")
    assert utils.get_device("meta") == torch.device("meta")


def test_deterministic_gpu_mode_leaves_the_cpu_alone():
    # PyTorch's deterministic mode would fill every new CPU tensor (slow);
    # CPU kernels are deterministic for a fixed thread count anyway.
    before = torch.are_deterministic_algorithms_enabled()
    utils.use_deterministic_gpu(torch.device("cpu"))
    assert torch.are_deterministic_algorithms_enabled() == before


def test_figure_alt_text_lists_the_panel_titles():
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2)
    left.set_title("loss")
    right.set_title("accuracy")
    assert utils.figure_alt_text(fig) == "[figure: loss | accuracy]"
    plt.close(fig)
    right.set_title("")
    right.set(xlabel="epoch", ylabel="accuracy")
    assert utils.figure_alt_text(fig) == "[figure: loss | accuracy vs epoch]"
    plt.close(fig)
    fig, _ = plt.subplots(1, 3)
    assert utils.figure_alt_text(fig) == "[figure, 3 panels]"
    plt.close(fig)


def test_every_environment_variable_is_listed_and_documented():
    code = "".join(p.read_text() for p in (ROOT / "src").rglob("*.py"))
    used = set(re.findall(r"BNLESSON_[A-Z_]+", code))
    assert used <= set(utils.ENV_VARS)  # env() refuses any other name
    readme = (ROOT / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in utils.ENV_VARS)
    with pytest.raises(KeyError, match="BNLESSON_TYPO"):
        utils.env("BNLESSON_TYPO")


@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None), ("maybe", None), ("1", True), (" Yes ", True),
    ("on", True), ("0", False), ("FALSE", False), ("off", False)])
def test_env_flag(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("BNLESSON_NO_CACHE", raising=False)
    else:
        monkeypatch.setenv("BNLESSON_NO_CACHE", value)
    for default in (True, False):
        want = default if expected is None else expected
        assert utils.env_flag("BNLESSON_NO_CACHE", default) is want


def test_model_device_of_parameters_buffers_or_nothing():
    assert utils.model_device(nn.Linear(2, 2).to("meta")).type == "meta"
    assert utils.model_device(nn.BatchNorm1d(2, affine=False).to("meta")
                              ).type == "meta"  # buffers only
    assert utils.model_device(nn.ReLU()) == torch.device("cpu")


def test_repo_root_is_this_checkout():
    assert utils.repo_root() == ROOT


def test_atomic_write_replaces_or_leaves_no_partial_file(tmp_path,
                                                         monkeypatch):
    target = tmp_path / "sub" / "out.bin"
    utils.atomic_write(target, b"old")
    utils.atomic_write(target, b"new")
    assert target.read_bytes() == b"new"

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(utils.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        utils.atomic_write(target, b"x" * 1000)
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]
    assert target.read_bytes() == b"new"


def test_table_aligns_numbers_and_checks_row_length():
    text = utils.table(["variant", "acc", "n"], [("BN", 0.91234, 3),
                                                 ("none", 0.5, 12)])
    assert text.splitlines() == ["variant    acc   n",
                                 "------------------",
                                 "BN       0.912   3",
                                 "none     0.500  12"]
    with pytest.raises(ValueError, match="a row has 1 cells, the header 3"):
        utils.table(["a", "b", "c"], [("x",)])
