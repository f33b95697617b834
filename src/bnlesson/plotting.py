"""Figure helpers. Each takes a Matplotlib ``ax``, draws on it and returns
it; none calls ``plt.show()`` or sets the output format (the notebooks'
setup does: PNG, modest dpi).

One colour per variant across the whole series (:data:`COLORS`,
:func:`color_for`), so "with BN" looks the same in every chapter.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.patches import Polygon

from bnlesson.norms import stats_group_ids

#: Default figure size for one panel (inches).
FIGSIZE = (6, 3.5)

#: Colour of each variant, from Okabe & Ito's colour-blind-safe palette:
#: distinct hues for the three BN implementations (which chapter 03 draws on
#: top of each other) and for the other norms.
COLORS = {
    "none": "#7f7f7f",          # grey
    "batchnorm": "#0072B2",     # blue
    "scratch": "#E69F00",       # orange
    "lecture": "#000000",       # black
    "layernorm": "#009E73",     # bluish green
    "instancenorm": "#CC79A7",  # reddish purple
    "groupnorm": "#D55E00",     # vermillion
}

#: Other names accepted for the variants (case-insensitive).
ALIASES = {
    "plain": "none", "no norm": "none", "without bn": "none",
    "batch": "batchnorm", "bn": "batchnorm", "with bn": "batchnorm",
    "layer": "layernorm", "ln": "layernorm",
    "instance": "instancenorm", "in": "instancenorm",
    "group": "groupnorm", "gn": "groupnorm",
}

#: Metrics of a History that :func:`plot_curves` can draw, with axis labels.
METRICS = {"train_loss": ("epoch", "train loss"),
           "train_acc": ("epoch", "train accuracy"),
           "test_acc": ("epoch", "test accuracy"),
           "step_loss": ("step", "train loss (mini-batch)"),
           "step_acc": ("step", "train accuracy (mini-batch)")}

CUBE_METHODS = ("batch", "layer", "instance", "group")


def _canonical(variant: str) -> str | None:
    name = str(variant).strip().lower()
    name = ALIASES.get(name, name)
    return name if name in COLORS else None


def _line_color(label, colors: Mapping | None = None) -> str | None:
    """``colors[label]`` if given, else the variant's colour; None (the
    default cycle) for a label that names no variant."""
    return (colors or {}).get(label) or COLORS.get(_canonical(label))


def color_for(variant: str) -> str:
    """The series' colour for a variant name (a :data:`COLORS` key or an
    :data:`ALIASES` name, e.g. ``"batchnorm"``, ``"BN"``, ``"group"``)."""
    name = _canonical(variant)
    if name is None:
        raise ValueError(f"no colour for {variant!r}; known variants: "
                         f"{', '.join(COLORS)} (or aliases "
                         f"{', '.join(ALIASES)})")
    return COLORS[name]


def plot_curves(ax, histories: Mapping, metric: str = "test_acc", *,
                colors: Mapping | None = None):
    """One line per run: ``histories`` maps a label to a
    :class:`bnlesson.train.History`; ``metric`` is a key of
    :data:`METRICS`. Labels that name a variant (see :func:`color_for`) get
    its colour unless ``colors`` gives one; others use the default cycle.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of "
                         f"{', '.join(METRICS)}")
    xlabel, ylabel = METRICS[metric]
    for label, history in histories.items():
        values = getattr(history, metric)
        if values is None:
            raise ValueError(f"run {label!r} has no {metric}: train it with "
                             "record_steps=True")
        color = _line_color(label, colors)
        start = 1 if xlabel == "epoch" else 0
        ax.plot(range(start, start + len(values)), values, label=str(label),
                color=color)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax


def plot_percentiles(ax, steps: Sequence, p15: Sequence, p50: Sequence,
                     p85: Sequence, *, label: str | None = None,
                     color: str | None = None):
    """Median line with the 15-85 percentile band, over training steps
    (all sequences the same length)."""
    if not len(steps) == len(p15) == len(p50) == len(p85):
        raise ValueError(f"steps, p15, p50 and p85 must have one value per "
                         f"step; got lengths {len(steps)}, {len(p15)}, "
                         f"{len(p50)}, {len(p85)}")
    line, = ax.plot(steps, p50, label=label, color=color)
    ax.fill_between(steps, p15, p85, color=line.get_color(), alpha=0.25,
                    linewidth=0)
    ax.set_xlabel("step")
    return ax


def plot_layer_bars(ax, values_by_layer: Mapping, *, color: str | None = None,
                    ylabel: str | None = None, log: bool = False):
    """One bar per layer, in the mapping's order (e.g. input layer first):
    ``values_by_layer`` maps a layer label to a number."""
    labels = [str(name) for name in values_by_layer]
    ax.bar(range(len(labels)), list(values_by_layer.values()), color=color)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("layer")
    if ylabel:
        ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    return ax



def plot_sweep(ax, results: Mapping, *, xlabel: str = "learning rate",
               ylabel: str = "final test accuracy", logx: bool = True,
               threshold: float | None = None,
               colors: Mapping | None = None):
    """One line with markers per variant over a swept setting: ``results``
    maps a label to ``{x: y}`` (e.g. learning rate -> final test accuracy;
    any key order). A non-finite y (a diverged run, as chapter 03's
    ``sweep_accuracy`` marks it) breaks the line and is marked
    with a cross at y = 0. ``threshold`` draws a dashed horizontal line
    (e.g. the accuracy that counts as "trains"). Labels that name a variant
    get its colour unless ``colors`` gives one (see :func:`color_for`)."""
    for label, values in results.items():
        xs = np.array(sorted(values), dtype=float)
        ys = np.array([values[x] for x in sorted(values)], dtype=float)
        color = _line_color(label, colors)
        line, = ax.plot(xs, ys, marker="o", label=str(label), color=color)
        diverged = ~np.isfinite(ys)
        if diverged.any():
            ax.plot(xs[diverged], np.zeros(diverged.sum()), linestyle="none",
                    marker="x", markersize=9, color=line.get_color(),
                    label=f"{label}: diverged")
    if threshold is not None:
        ax.axhline(threshold, linestyle="--", linewidth=1, color="0.4",
                   label=f"threshold {threshold:g}")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax

# --------------------------------------------------------------------------
# The N / C / (H, W) cube of the norm family (Wu & He 2018, Fig. 2)
# --------------------------------------------------------------------------
def _shaded_cells(method: str, num_channels: int, num_samples: int,
                  num_groups: int) -> set[tuple[int, int]]:
    """(channel, sample) columns normalised together with channel 0 of
    sample 0 (each column spans all of H, W), taken from
    :func:`bnlesson.norms.stats_group_ids` so the picture shows what the
    code computes."""
    ids = stats_group_ids(method, (num_samples, num_channels, 1, 1),
                          num_groups if method == "group" else None)
    ids = ids[:, :, 0, 0]  # (N, C)
    return {(c, n) for n, c in (ids == ids[0, 0]).nonzero().tolist()}


def _project(c: float, n: float, z: float) -> tuple[float, float]:
    """Oblique projection: C to the right, N into the depth, H, W up."""
    return c + 0.5 * n, z + 0.4 * n


def _column_faces(c: int, n: int, height: float):
    """Front, right and top faces of the (c, n) column, as 2-D polygons."""
    corners = {
        "front": [(c, n, 0), (c + 1, n, 0), (c + 1, n, height),
                  (c, n, height)],
        "right": [(c + 1, n, 0), (c + 1, n + 1, 0), (c + 1, n + 1, height),
                  (c + 1, n, height)],
        "top": [(c, n, height), (c + 1, n, height), (c + 1, n + 1, height),
                (c, n + 1, height)],
    }
    return [[_project(*p) for p in face] for face in corners.values()]


def draw_norm_cube(ax, method: str, *, num_channels: int = 6,
                   num_samples: int = 6, num_groups: int = 2,
                   height: float = 6.0, color: str | None = None):
    """The feature-map cube of Wu & He (2018), Fig. 2: channels C to the
    right, samples N into the depth, the pixels H, W up; the values that
    share one mean and variance are shaded. ``method`` is one of
    :data:`CUBE_METHODS` (or ``"batchnorm"`` etc.): batch = one channel of
    every sample, layer = every channel of one sample, instance = one
    channel of one sample, group = the first of ``num_groups`` groups of
    channels of one sample.
    Drawn with 2-D patches, so any ``ax`` works.
    """
    key = _canonical(method)
    name = key.removesuffix("norm") if key else None
    if name not in CUBE_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of "
                         f"{', '.join(CUBE_METHODS)}")
    if name == "group" and (num_groups < 1 or num_channels % num_groups):
        raise ValueError(f"num_groups must divide num_channels "
                         f"({num_channels}), got {num_groups}")
    shaded = _shaded_cells(name, num_channels, num_samples, num_groups)
    fill = color or color_for(name)
    # Painter's order: back (last sample) to front, left to right.
    for n in reversed(range(num_samples)):
        for c in range(num_channels):
            facecolor = fill if (c, n) in shaded else "white"
            for face in _column_faces(c, n, height):
                ax.add_patch(Polygon(face, closed=True, facecolor=facecolor,
                                     edgecolor="0.3", linewidth=0.6))
    _label_cube(ax, num_channels, num_samples, height)
    ax.set_title(f"{name.capitalize()} Norm")
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def _label_cube(ax, num_channels: int, num_samples: int,
                height: float) -> None:
    x, y = _project(num_channels / 2, 0, 0)
    ax.text(x, y - 0.4, "C", ha="center", va="top")
    x, y = _project(num_channels, num_samples / 2, 0)
    ax.text(x + 0.3, y - 0.3, "N", ha="left", va="center")
    x, y = _project(0, 0, height / 2)
    ax.text(x - 0.3, y, "H, W", ha="right", va="center")
    corners = np.array([_project(c, n, z) for c in (0, num_channels)
                        for n in (0, num_samples) for z in (0, height)])
    ax.set_xlim(corners[:, 0].min() - 2.0, corners[:, 0].max() + 1.0)
    ax.set_ylim(corners[:, 1].min() - 1.2, corners[:, 1].max() + 0.3)


def plot_layer_series(ax, steps: Sequence, series_by_layer: Mapping, *,
                      log: bool = True, guide: float | None = None,
                      ylabel: str | None = None, cmap: str = "viridis",
                      legend: bool = True):
    """One line per layer over training steps (Karpathy's update-to-data
    plot): ``series_by_layer`` maps a layer label to one value per step,
    ordered from the input layer to the output layer; the colours run
    through ``cmap`` from the first layer (dark) to the last (light).
    ``guide`` draws a dashed horizontal reference line (e.g. 1e-3, the rule
    of thumb for the update-to-data ratio). Log y-axis unless ``log=False``.
    """
    from matplotlib import colormaps

    names = list(series_by_layer)
    for name in names:
        if len(series_by_layer[name]) != len(steps):
            raise ValueError(f"layer {name!r} has {len(series_by_layer[name])}"
                             f" values for {len(steps)} steps")
    shades = colormaps[cmap](np.linspace(0.0, 0.9, len(names)))
    for name, shade in zip(names, shades, strict=True):
        ax.plot(steps, series_by_layer[name], color=shade, label=str(name))
    if guide is not None:
        ax.axhline(guide, linestyle="--", linewidth=1, color="black",
                   label=f"{guide:g}")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    if ylabel:
        ax.set_ylabel(ylabel)
    if legend:
        ax.legend(fontsize="x-small", ncol=2)
    return ax


# --------------------------------------------------------------------------
# Reading the cube back, and sweeps over batch sizes (chapter 04)
# --------------------------------------------------------------------------
def cube_shaded_columns(ax) -> set[tuple[int, int]]:
    """The (channel, sample) columns that :func:`draw_norm_cube` shaded on
    ``ax``, read back from the drawn patches (not recomputed), so that a
    notebook can check the picture against what the code normalises
    together. ``ax`` must hold one cube and nothing else drawn as patches.
    """
    from matplotlib.colors import to_rgba

    x0, y0 = _project(0, 0, 0)
    x1, y1 = _project(0, 1, 0)
    dx_n, dy_n = x1 - x0, y1 - y0
    white = to_rgba("white")
    shaded = set()
    # Each column adds three faces, front first; the front face's first
    # corner is the projection of (c, n, 0).
    for front in ax.patches[::3]:
        if to_rgba(front.get_facecolor()) == white:
            continue
        x, y = front.get_xy()[0]
        n = (y - y0) / dy_n
        c = x - x0 - dx_n * n
        shaded.add((int(round(c)), int(round(n))))
    return shaded


def plot_batch_size_sweep(ax, results: Mapping, *,
                          xlabel: str = "images per batch",
                          ylabel: str = "test error",
                          colors: Mapping | None = None,
                          legend: bool = True):
    """Metric against batch size on a log2 axis, one line per variant:
    ``results`` maps a label to ``{batch_size: values}``, where values is
    one number or one per seed. The line joins the means over seeds, a band
    spans their minimum to maximum, ticks sit at the batch sizes. Labels
    that name a variant get its colour unless ``colors`` gives one (see
    :func:`color_for`)."""
    from matplotlib.ticker import NullLocator

    sizes = set()
    for label, values in results.items():
        xs = sorted(values)
        if not xs:
            raise ValueError(f"variant {label!r} has no batch sizes")
        runs = [np.atleast_1d(np.asarray(values[x], dtype=float)) for x in xs]
        color = _line_color(label, colors)
        line, = ax.plot(xs, [r.mean() for r in runs], marker="o",
                        label=str(label), color=color)
        if any(len(r) > 1 for r in runs):
            ax.fill_between(xs, [r.min() for r in runs],
                            [r.max() for r in runs], color=line.get_color(),
                            alpha=0.2, linewidth=0)
        sizes.update(xs)
    ax.set_xscale("log", base=2)
    ticks = sorted(sizes)
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend()
    return ax


# --------------------------------------------------------------------------
# Sequences: estimates, gains, errors (chapter 05)
# --------------------------------------------------------------------------
def plot_lines(ax, series: Mapping, *, x: Sequence | None = None,
               styles: Mapping | None = None, xlabel: str | None = None,
               ylabel: str | None = None, logx: bool = False,
               logy: bool = False, legend: bool = True):
    """One line per entry of ``series``: a label maps to its y values, or
    to a pair ``(x, y)``. Entries given as y values share ``x`` (default
    1, 2, ..., e.g. the step k of a recursive estimate). ``styles`` maps a
    label to Matplotlib keyword arguments for that line (e.g.
    ``{"linestyle": "none", "marker": "."}`` for raw measurements, or
    ``{"color": "C1", "linestyle": "--"}``); labels that name a variant
    (see :func:`color_for`) get its colour unless their style sets one.
    """
    for label, values in series.items():
        if (isinstance(values, tuple) and len(values) == 2
                and hasattr(values[0], "__len__")):
            xs, ys = values
        else:
            ys = values
            xs = x if x is not None else range(1, len(ys) + 1)
        if len(xs) != len(ys):
            raise ValueError(f"series {label!r} has {len(ys)} values for "
                             f"{len(xs)} x values")
        style = {"color": _line_color(label), **(styles or {}).get(label, {})}
        ax.plot(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float),
                label=str(label), **style)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if legend:
        ax.legend()
    return ax
