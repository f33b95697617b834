"""Chapter 04's helpers: GhostBatch (images per normalization batch), the
cube read back from the figure, the batch-size sweep plot."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from bnlesson.models import GhostBatch, lenet  # noqa: E402
from bnlesson.norms import stats_group_ids  # noqa: E402
from bnlesson.plotting import (  # noqa: E402
    CUBE_METHODS,
    color_for,
    cube_shaded_columns,
    draw_norm_cube,
    plot_batch_size_sweep,
)


# --------------------------------------------------------------------------
# GhostBatch
# --------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["none", "layernorm", "instancenorm",
                                  "groupnorm"])
def test_ghost_batch_leaves_per_example_norms_unchanged(norm):
    torch.manual_seed(0)
    net = lenet(norm, activation="relu")
    X = torch.rand(12, 1, 28, 28)
    whole = net(X)
    chunked = GhostBatch(net, 4)(X)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)


def test_ghost_batch_gives_batch_norm_per_chunk_statistics():
    torch.manual_seed(0)
    net = lenet("batchnorm", activation="relu")
    X = torch.rand(12, 1, 28, 28)
    ghost = GhostBatch(net, 4)
    Y = ghost(X)
    # running statistics: one EMA update per chunk
    assert net[1].num_batches_tracked.item() == 3
    expected = torch.cat([net(chunk) for chunk in X.split(4)])
    torch.testing.assert_close(Y, expected)
    assert (Y - net(X)).abs().max() > 1e-3  # not the whole batch's statistics


def test_ghost_batch_eval_does_not_split_and_gradients_flow():
    torch.manual_seed(0)
    ghost = GhostBatch(lenet("batchnorm"), 2)
    X = torch.rand(6, 1, 28, 28)
    ghost.eval()
    torch.testing.assert_close(ghost(X), ghost.net(X))
    ghost.train()
    F.cross_entropy(ghost(X), torch.arange(6)).backward()
    assert ghost.net[0].weight.grad is not None
    assert "micro_batch=2" in repr(ghost)


def test_ghost_batch_rejects_bad_size():
    with pytest.raises(ValueError, match="micro_batch"):
        GhostBatch(lenet(), 0)


# --------------------------------------------------------------------------
# The cube, read back
# --------------------------------------------------------------------------
@pytest.mark.parametrize("method", CUBE_METHODS)
def test_cube_shaded_columns_read_back_the_drawn_cells(ax, method):
    draw_norm_cube(ax, method, num_channels=6, num_samples=5, num_groups=3)
    ids = stats_group_ids(method, (5, 6, 1, 1),
                          3 if method == "group" else None)[:, :, 0, 0]
    expected = {(c, n) for n, c in (ids == ids[0, 0]).nonzero().tolist()}
    assert cube_shaded_columns(ax) == expected


def test_cube_shaded_columns_empty_axes(ax):
    assert cube_shaded_columns(ax) == set()


# --------------------------------------------------------------------------
# Sweep over batch sizes
# --------------------------------------------------------------------------
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
