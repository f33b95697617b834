"""Figure helpers draw on the given ax, keep one colour per variant."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from bnlesson.models import NORM_CHOICES  # noqa: E402
from bnlesson.plotting import (  # noqa: E402
    COLORS,
    CUBE_METHODS,
    color_for,
    draw_norm_cube,
    plot_curves,
    plot_layer_bars,
    plot_percentiles,
)
from bnlesson.train import History  # noqa: E402


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
