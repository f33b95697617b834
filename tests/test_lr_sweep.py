"""Learning-rate sweeps (chapter 03): the sweep figure."""
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from bnlesson.plotting import COLORS, plot_sweep  # noqa: E402


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
