"""Learning-rate sweeps (chapter 03): which runs count as trained, the
largest learning rate that trains, and the sweep figure."""
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from bnlesson.plotting import COLORS, plot_sweep  # noqa: E402
from bnlesson.train import History, largest_trainable_lr, sweep_accuracy  # noqa: E402


def test_sweep_accuracy_is_nan_for_a_diverged_run():
    ok = History(train_loss=[2.3, 0.6], train_acc=[0.1, 0.8],
                 test_acc=[0.2, 0.75])
    assert sweep_accuracy(ok) == 0.75
    for bad in (math.nan, math.inf):
        diverged = History(train_loss=[2.3, bad], train_acc=[0.1, 0.1],
                           test_acc=[0.2, 0.1])
        assert math.isnan(sweep_accuracy(diverged))
    # a loss that blew up once and came back still marks the run diverged
    spiked = History(train_loss=[math.inf, 0.5], train_acc=[0.1, 0.8],
                     test_acc=[0.1, 0.8])
    assert math.isnan(sweep_accuracy(spiked))


@pytest.mark.parametrize("final_acc, threshold, expected", [
    ({0.1: 0.6, 1.0: 0.8, 10.0: 0.1}, 0.5, 1.0),
    ({10.0: 0.1, 0.1: 0.6, 1.0: 0.8}, 0.5, 1.0),         # unsorted keys
    ({0.1: 0.6, 1.0: 0.5}, 0.5, 1.0),                    # boundary counts
    ({0.03: 0.1, 0.3: 0.7, 3.0: 0.6}, 0.5, 3.0),         # too small first
    ({0.1: 0.6, 1.0: math.nan, 3.0: math.nan}, 0.5, 0.1),  # diverged
    ({0.1: 0.2, 1.0: math.nan}, 0.5, None),              # nothing trains
    ({}, 0.5, None),
])
def test_largest_trainable_lr(final_acc, threshold, expected):
    assert largest_trainable_lr(final_acc, threshold) == expected




def test_plot_sweep_lines_diverged_marks_and_threshold(ax):
    results = {"batchnorm": {1.0: 0.8, 0.1: 0.7, 10.0: 0.6},
               "none": {0.1: 0.3, 1.0: 0.6, 10.0: math.nan}}
    assert plot_sweep(ax, results, threshold=0.5) is ax
    lines = {line.get_label(): line for line in ax.get_lines()}
    bn = lines["batchnorm"]
    assert list(bn.get_xdata()) == [0.1, 1.0, 10.0]  # sorted by x
    assert list(bn.get_ydata()) == [0.7, 0.8, 0.6]
    assert to_rgba(bn.get_color()) == to_rgba(COLORS["batchnorm"])
    cross = lines["none: diverged"]
    assert list(cross.get_xdata()) == [10.0] and list(cross.get_ydata()) == [0]
    assert to_rgba(cross.get_color()) == to_rgba(COLORS["none"])
    assert np.isnan(lines["none"].get_ydata()[-1])
    assert "threshold 0.5" in lines
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "learning rate"


def test_plot_sweep_linear_axis_and_own_colours(ax):
    plot_sweep(ax, {"lr=0.1": {1: 0.5, 2: 0.6}}, logx=False,
               xlabel="epochs", colors={"lr=0.1": "black"})
    line, = ax.get_lines()
    assert to_rgba(line.get_color()) == to_rgba("black")
    assert ax.get_xscale() == "linear" and ax.get_xlabel() == "epochs"
