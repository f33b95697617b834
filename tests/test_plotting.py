"""Figure helpers draw on the given ax, keep one colour per variant."""
import math

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from bnlesson.models import NORM_CHOICES
from bnlesson.norms import stats_group_ids
from bnlesson.plotting import (
    COLORS,
    CUBE_METHODS,
    color_for,
    cube_shaded_columns,
    draw_norm_cube,
    plot_batch_size_sweep,
    plot_curves,
    plot_layer_bars,
    plot_layer_series,
    plot_lines,
    plot_percentiles,
    plot_sweep,
)
from bnlesson.train import History


def test_every_norm_variant_has_a_colour():
    assert set(NORM_CHOICES) <= set(COLORS)
    assert len(set(COLORS.values())) == len(COLORS)
    assert color_for("BN") == color_for("batchnorm") == COLORS["batchnorm"]
    assert color_for("group") == COLORS["groupnorm"]
    with pytest.raises(ValueError, match="batchnorm"):
        color_for("dropout")


def test_plot_curves_colours_variants(ax):
    histories = {"batchnorm": History(test_acc=[0.5, 0.7, 0.8]),
                 "none": History(test_acc=[0.1, 0.2, 0.4]),
                 "lr=0.1": History(test_acc=[0.2, 0.3, 0.3])}
    assert plot_curves(ax, histories) is ax
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == list(histories)
    assert list(lines[0].get_xdata()) == [1, 2, 3]
    assert to_rgba(lines[0].get_color()) == to_rgba(COLORS["batchnorm"])
    assert to_rgba(lines[1].get_color()) == to_rgba(COLORS["none"])
    assert ax.get_ylabel() == "test accuracy"


def test_plot_curves_errors(ax):
    with pytest.raises(ValueError, match="record_steps"):
        plot_curves(ax, {"bn": History(test_acc=[0.5])}, "step_loss")
    with pytest.raises(ValueError, match="test_acc"):
        plot_curves(ax, {}, "accuracy")


def test_plot_percentiles_band_and_median(ax):
    assert plot_percentiles(ax, [0, 10, 20], [0.1, 0.2, 0.3],
                            [0.4, 0.5, 0.6], [0.7, 0.8, 0.9], label="act1",
                            color="C3") is ax
    line, = ax.get_lines()
    assert list(line.get_ydata()) == [0.4, 0.5, 0.6]
    assert len(ax.collections) == 1
    with pytest.raises(ValueError, match="one value per step"):
        plot_percentiles(ax, [0, 1], [0], [0], [0])


def test_plot_layer_bars(ax):
    values = {"linear1": 1e-4, "linear2": 1e-3, "output": 1e-2}
    assert plot_layer_bars(ax, values, log=True, ylabel="grad norm") is ax
    assert len(ax.patches) == 3
    assert [t.get_text() for t in ax.get_xticklabels()] == list(values)
    assert ax.get_yscale() == "log"


def test_plot_layer_series_draws_one_line_per_layer_and_a_guide(ax):
    series = {"linear1": [1e-5, 2e-5, 3e-5], "linear2": [1e-3, 2e-3, 1e-3],
              "output": [1e-2, 1e-2, 2e-2]}
    assert plot_layer_series(ax, [0, 5, 10], series, guide=1e-3,
                             ylabel="update / data") is ax
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == \
        ["linear1", "linear2", "output", "0.001"]
    assert len({tuple(line.get_color()) for line in lines[:3]}) == 3
    assert list(lines[0].get_xdata()) == [0, 5, 10]
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "update / data"
    assert ax.get_legend() is not None


def test_plot_layer_series_checks_lengths(ax):
    with pytest.raises(ValueError, match="2 values for 3 steps"):
        plot_layer_series(ax, [0, 1, 2], {"a": [1.0, 2.0]})
    plot_layer_series(ax, [0, 1], {"a": [1.0, 2.0]}, log=False, legend=False)
    assert ax.get_yscale() == "linear" and ax.get_legend() is None


@pytest.mark.parametrize("method, shaded_columns", [
    ("batch", 6), ("layer", 4), ("instance", 1), ("group", 2),
    ("BatchNorm", 6)])
def test_norm_cube_shades_the_shared_statistics(ax, method, shaded_columns):
    # one column per (channel, sample); batch shades a channel of all 6
    # samples, layer all 4 channels of one sample, group 2 of them
    assert draw_norm_cube(ax, method, num_channels=4, num_samples=6,
                          num_groups=2) is ax
    fill = to_rgba(color_for(method))
    shaded = [p for p in ax.patches if p.get_facecolor() == fill]
    assert len(ax.patches) == 4 * 6 * 3  # 3 visible faces per column
    assert len(shaded) == 3 * shaded_columns
    assert ax.get_title().endswith("Norm")


def test_norm_cube_errors(ax):
    with pytest.raises(ValueError, match=", ".join(CUBE_METHODS)):
        draw_norm_cube(ax, "dropout")
    with pytest.raises(ValueError, match="num_groups"):
        draw_norm_cube(ax, "group", num_channels=4, num_groups=3)


@pytest.mark.parametrize("method", CUBE_METHODS)
def test_cube_shaded_columns_read_back_the_drawn_cells(ax, method):
    draw_norm_cube(ax, method, num_channels=6, num_samples=5, num_groups=3)
    ids = stats_group_ids(method, (5, 6, 1, 1),
                          3 if method == "group" else None)[:, :, 0, 0]
    expected = {(c, n) for n, c in (ids == ids[0, 0]).nonzero().tolist()}
    assert cube_shaded_columns(ax) == expected


def test_cube_shaded_columns_empty_axes(ax):
    assert cube_shaded_columns(ax) == set()


def test_plot_batch_size_sweep(ax):
    results = {"BN": {2: [0.6, 0.7], 8: [0.2, 0.3], 32: [0.2, 0.2]},
               "GN": {2: 0.3, 32: 0.31}}
    assert plot_batch_size_sweep(ax, results) is ax
    bn, gn = ax.lines
    np.testing.assert_allclose(bn.get_xdata(), [2, 8, 32])
    np.testing.assert_allclose(bn.get_ydata(), [0.65, 0.25, 0.2])
    assert to_rgba(bn.get_color()) == to_rgba(color_for("batchnorm"))
    assert to_rgba(gn.get_color()) == to_rgba(color_for("groupnorm"))
    assert len(ax.collections) == 1  # a band only where there are seeds
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "8", "32"]
    assert ax.get_ylabel() == "test error"


def test_plot_batch_size_sweep_rejects_empty_variant(ax):
    with pytest.raises(ValueError, match="no batch sizes"):
        plot_batch_size_sweep(ax, {"BN": {}})


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


def test_plot_lines_draws_pairs_and_shared_x(ax):
    plot_lines(ax, {"a": [1.0, 2.0, 3.0], "b": ([1, 10, 100], [3, 2, 1]),
                    "BN": [0.5, 0.5, 0.5]},
               styles={"a": {"linestyle": "none", "marker": "."}},
               xlabel="k", ylabel="estimate", logx=True)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["a"].get_xdata()) == [1, 2, 3]
    assert list(lines["b"].get_xdata()) == [1, 10, 100]
    assert lines["a"].get_linestyle() == "None"
    assert lines["BN"].get_color() == COLORS["batchnorm"]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "k"
    with pytest.raises(ValueError, match="3 values for 2"):
        plot_lines(ax, {"c": [1, 2, 3]}, x=[1, 2])
