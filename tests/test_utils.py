"""Tests of bnlesson.utils: seeds, threads, device and profile choice."""
import random

import pytest
import torch

from bnlesson import utils


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


def test_profile_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("BNLESSON_PROFILE", "full")
    assert utils.get_profile() == "full"
    monkeypatch.setenv("BNLESSON_PROFILE", "fast")
    with pytest.raises(ValueError, match="'quick' or 'full'"):
        utils.get_profile()


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
