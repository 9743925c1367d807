"""Plots as matplotlib figures, PNG files and RGB arrays (for ``tf.summary.image``).

Every plotting function returns a `matplotlib.figure.Figure` drawn with the non-GUI Agg
canvas: no pyplot state, no window, safe to call from a training callback. Turn a figure
into what you need with `to_rgb_array` (uint8 [H, W, 3]), `to_png_bytes` or `save_png`::

    from tfnas import plotting

    fig = plotting.scatter(gt_accs, supernet_accs, xlabel="ground truth",
                           ylabel="supernet", title="Kendall tau 0.61")
    plotting.save_png(fig, "workdirs/demo/scatter.png")
    tf.summary.image("ranking/scatter", plotting.to_rgb_array(fig)[None], step=epoch)

    fig = plotting.bars_with_ci(["sandwich", "uniform"], [0.61, 0.48], [0.50, 0.35],
                                [0.70, 0.59], ylabel="Kendall tau", reference=0.9)
    fig = plotting.lines({"sandwich": steps, "uniform": steps},
                         {"sandwich": taus_a, "uniform": taus_b},
                         xlabel="training step", ylabel="Kendall tau")

A figure is ``FIGSIZE`` inches at ``DPI`` dots per inch (400 x 320 pixels) unless the
``figsize``/``dpi`` arguments say otherwise. For a plot these functions do not cover, start
from `new_figure` to keep the same style. Bad input (empty or unequally long vectors,
non-finite values) raises ValueError. matplotlib is imported at the first plot, not with
this module.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIGSIZE = (4.0, 3.2)  # inches
DPI = 100
# matplotlib's "tab10" colours, spelt out so that tests and callers can look pixels up.
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
POINT_COLOR = COLORS[0]
HIGHLIGHT_COLOR = COLORS[3]
REFERENCE_COLOR = "#555555"
GRID_COLOR = "#e1e1e1"
BACKGROUND = "#ffffff"
TITLE_SIZE = 10
LABEL_SIZE = 9
TICK_SIZE = 8
MARGIN = 0.05  # fraction of the data range added on each side of an axis


def rgb(color: str) -> tuple[int, int, int]:
    """``"#1f77b4"`` -> ``(31, 119, 180)``: the pixel value of one of this module's colours."""
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))


# ------------------------------------------------------------------------------- figures


def new_figure(*, figsize=None, dpi: int = DPI) -> tuple[Figure, Axes]:
    """A white ``(figure, axes)`` pair on an Agg canvas, with this module's grid and fonts.

    ``fig, ax = plotting.new_figure()``, draw on ``ax``, then `to_rgb_array` / `save_png`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(
        figsize=FIGSIZE if figsize is None else figsize,
        dpi=dpi,
        facecolor=BACKGROUND,
        layout="constrained",  # room for the labels whatever their length
    )
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas: rendering never needs pyplot
    ax = fig.add_subplot()
    ax.set_facecolor(BACKGROUND)
    ax.grid(True, color=GRID_COLOR, linewidth=0.8)
    ax.set_axisbelow(True)  # grid under the data
    ax.tick_params(labelsize=TICK_SIZE)
    return fig, ax


def _labels(ax, xlabel, ylabel, title) -> None:
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    if title:
        ax.set_title(title, fontsize=TITLE_SIZE)


def _canvas(fig):
    """The figure's Agg canvas, with the layout settled for rendering."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    # The constrained layout of a first draw is computed before the tick labels are final
    # and moves by a fraction of a pixel at the next draw; one layout pass beforehand makes
    # every rendering (RGB array, PNG) of the same figure the same pixels.
    fig.draw_without_rendering()
    return fig.canvas


def to_rgb_array(fig: Figure) -> np.ndarray:
    """The rendered figure as a uint8 RGB array [H, W, 3] (rows top to bottom).

    Ready for ``tf.summary.image(name, to_rgb_array(fig)[None], step=...)``.
    """
    canvas = _canvas(fig)
    canvas.draw()
    # The figure background is opaque, so dropping alpha loses nothing.
    return np.array(canvas.buffer_rgba(), dtype=np.uint8)[..., :3]


def to_png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes, the same pixels as `to_rgb_array` (no tight bounding box)."""
    buffer = io.BytesIO()
    # print_png renders at fig.dpi and ignores the savefig.* rcParams (bbox, dpi) that would
    # make the file differ from the TensorBoard image.
    _canvas(fig).print_png(buffer)
    return buffer.getvalue()


def save_png(fig: Figure, path) -> Path:
    """Writes the figure to ``path`` as PNG (parent directories created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_png_bytes(fig))
    return path


# ------------------------------------------------------------------------------ validation


def _vector(values, what: str, fn: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"plotting.{fn}: {what} must be a sequence of numbers, received {values!r}."
        ) from None
    if array.ndim != 1:
        raise ValueError(
            f"plotting.{fn}: {what} must be one-dimensional, received shape {array.shape}; "
            "pass a flat list of numbers."
        )
    if array.size == 0:
        raise ValueError(f"plotting.{fn}: {what} is empty; pass at least one value.")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(
            f"plotting.{fn}: {what} must be finite, received {array[bad[0]]} at index "
            f"{bad[0]}; drop or fix the non-finite values."
        )
    return array


def _same_length(fn: str, **vectors) -> None:
    lengths = {name: len(v) for name, v in vectors.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(
            f"plotting.{fn}: the inputs must be equally long, received {listed} values."
        )


def _padded_range(values: np.ndarray) -> tuple[float, float]:
    """[min, max] widened by MARGIN of the span; a constant gets a range around it."""
    low, high = float(np.min(values)), float(np.max(values))
    span = high - low
    if span == 0:
        pad = abs(low) * MARGIN or 0.5
        return low - pad, high + pad
    return low - MARGIN * span, high + MARGIN * span


def _mask(highlight, n: int) -> np.ndarray:
    """A boolean mask of length n from a mask or a list of indices."""
    array = np.asarray(highlight)
    if array.dtype == bool:
        if array.shape != (n,):
            raise ValueError(
                f"plotting.scatter: a boolean highlight mask must have one entry per point "
                f"({n}), received shape {array.shape}."
            )
        return array
    if array.size == 0:
        return np.zeros(n, bool)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"plotting.scatter: highlight must be a boolean mask or a list of point indices, "
            f"received {highlight!r}."
        )
    if array.min() < 0 or array.max() >= n:
        raise ValueError(
            f"plotting.scatter: highlight indices must be in [0, {n}), received {array.tolist()}."
        )
    mask = np.zeros(n, bool)
    mask[array] = True
    return mask


# --------------------------------------------------------------------------------- plots


def scatter(
    x,
    y,
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    labels: Sequence[str | None] | None = None,
    highlight=None,
    highlight_label: str | None = None,
    figsize=None,
    dpi: int = DPI,
) -> Figure:
    """Points (x[i], y[i]); e.g. supernet score against stand-alone accuracy.

    Args:
        x, y: equally long, non-empty sequences of finite numbers.
        xlabel, ylabel, title: axis labels and an optional title.
        labels: optional text next to each point (``None`` entries get none).
        highlight: a boolean mask or a list of indices of points drawn in
            ``HIGHLIGHT_COLOR`` on top of the others (e.g. a Pareto front).
        highlight_label: legend entry of the highlighted points (no legend if None).
        figsize, dpi: the figure's size in inches and its resolution.

    The axes span the data with a MARGIN on each side; a constant vector gets a range
    around its value. ``plotting.scatter([0.7, 0.8], [0.3, 0.5], xlabel="gt",
    ylabel="supernet", highlight=[1])``.
    """
    x = _vector(x, "x", "scatter")
    y = _vector(y, "y", "scatter")
    _same_length("scatter", x=x, y=y)
    mask = np.zeros(x.size, bool) if highlight is None else _mask(highlight, x.size)
    if labels is not None:
        labels = list(labels)
        _same_length("scatter", x=x, labels=labels)
    fig, ax = new_figure(figsize=figsize, dpi=dpi)
    # linewidths=0: the points are one flat colour, so their pixels can be found again.
    style = dict(s=20, linewidths=0, alpha=1.0)
    ax.scatter(x[~mask], y[~mask], color=POINT_COLOR, zorder=2, **style)
    if mask.any():
        ax.scatter(
            x[mask], y[mask], color=HIGHLIGHT_COLOR, zorder=3, label=highlight_label, **style
        )
        if highlight_label:
            ax.legend(fontsize=TICK_SIZE)
    if labels is not None:
        for xi, yi, text in zip(x, y, labels):
            if text is not None:
                ax.annotate(
                    str(text),
                    (xi, yi),
                    xytext=(3, 3),
                    textcoords="offset points",
                    fontsize=TICK_SIZE - 1,
                )
    ax.set_xlim(*_padded_range(x))
    ax.set_ylim(*_padded_range(y))
    _labels(ax, xlabel, ylabel, title)
    return fig


def bars_with_ci(
    names: Sequence[str],
    values,
    lows,
    highs,
    *,
    ylabel: str,
    reference: float | None = None,
    reference_label: str | None = None,
    title: str | None = None,
    figsize=None,
    dpi: int = DPI,
) -> Figure:
    """One bar per name with its confidence interval; e.g. Kendall tau per scheme.

    Args:
        names: distinct bar names (x tick labels), in drawing order.
        values: the bars' heights (bars start at 0).
        lows, highs: the CI bounds, low <= high; an entry ``None`` (or ``lows=highs=None``)
            draws that bar without an interval. The interval is drawn as given, even when
            it does not contain the value (a percentile bootstrap CI need not).
        ylabel, title: labels.
        reference: the height of a dashed horizontal line, e.g. the ground truth's ceiling;
            ``reference_label`` names it in a legend.

    ``plotting.bars_with_ci(["sandwich", "uniform"], [0.61, 0.48], [0.5, 0.35],
    [0.7, 0.59], ylabel="Kendall tau")``.
    """
    names = [str(n) for n in names]
    values = _vector(values, "values", "bars_with_ci")
    if not names:
        raise ValueError("plotting.bars_with_ci: names is empty; pass one name per bar.")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"plotting.bars_with_ci: bar names must be distinct, received {duplicates} more "
            "than once; rename or merge those bars."
        )
    n = len(names)
    lows = [None] * n if lows is None else list(lows)
    highs = [None] * n if highs is None else list(highs)
    _same_length("bars_with_ci", names=names, values=values, lows=lows, highs=highs)
    intervals = []
    for i, (low, high) in enumerate(zip(lows, highs)):
        if low is None and high is None:
            continue
        if low is None or high is None:
            raise ValueError(
                f"plotting.bars_with_ci: bar {names[i]!r} has low={low!r}, high={high!r}; "
                "give both bounds or neither."
            )
        low, high = _vector([low, high], f"the CI of bar {names[i]!r}", "bars_with_ci")
        if low > high:
            raise ValueError(
                f"plotting.bars_with_ci: bar {names[i]!r} has low {low} > high {high}; "
                "pass the lower bound in lows and the upper in highs."
            )
        intervals.append((i, low, high))
    extent = [0.0, *values]
    if reference is not None:
        extent.append(float(_vector([reference], "reference", "bars_with_ci")[0]))
    extent.extend(b for _, low, high in intervals for b in (low, high))

    fig, ax = new_figure(figsize=figsize, dpi=dpi)
    positions = np.arange(n)
    ax.bar(positions, values, width=0.6, color=POINT_COLOR, zorder=2)
    if intervals:
        index, low, high = (np.array(v) for v in zip(*intervals))
        # An error bar around the interval's midpoint draws exactly [low, high].
        ax.errorbar(
            index,
            (low + high) / 2,
            yerr=(high - low) / 2,
            fmt="none",
            ecolor="black",
            elinewidth=1.0,
            capsize=3,
            zorder=3,
        )
    if reference is not None:
        ax.axhline(
            reference,
            color=REFERENCE_COLOR,
            linestyle="--",
            linewidth=1.0,
            label=reference_label,
            zorder=4,
        )
        if reference_label:
            ax.legend(fontsize=TICK_SIZE)
    long_names = max(len(name) for name in names) > 8
    ax.set_xticks(
        positions,
        names,
        rotation=30 if long_names else 0,
        ha="right" if long_names else "center",
    )
    ax.grid(False, axis="x")
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(*_padded_range(np.array(extent)))
    _labels(ax, None, ylabel, title)
    return fig


def heatmap(
    matrix,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    vmin: float = 0.0,
    vmax: float = 1.0,
    title: str | None = None,
    figsize=None,
    dpi: int = DPI,
) -> Figure:
    """A matrix as coloured cells with its values written in, e.g. the K-shot simplex code
    (rows: archs, columns: the K weights) of a few archs.

    ``matrix`` is [len(row_labels), len(col_labels)] of finite numbers; the colour scale runs
    from ``vmin`` to ``vmax`` (fixed, so images of successive epochs compare).

    ``plotting.heatmap([[0.5, 0.5], [0.9, 0.1]], ["largest", "smallest"], ["1", "2"])``.
    """
    values = np.asarray(matrix, dtype=float)
    rows, cols = [str(r) for r in row_labels], [str(c) for c in col_labels]
    if values.shape != (len(rows), len(cols)) or not values.size:
        raise ValueError(
            f"plotting.heatmap: matrix has shape {values.shape}, expected "
            f"({len(rows)}, {len(cols)}) (one row per row label, one column per column "
            "label); pass a non-empty matrix matching the labels."
        )
    _vector(values.ravel(), "matrix", "heatmap")
    if not vmin < vmax:
        raise ValueError(f"plotting.heatmap: vmin={vmin} must be < vmax={vmax}.")
    fig, ax = new_figure(figsize=figsize, dpi=dpi)
    ax.imshow(values, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(np.arange(len(cols)), cols)
    ax.set_yticks(np.arange(len(rows)), rows)
    ax.grid(False)
    middle = (vmin + vmax) / 2
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=TICK_SIZE,
                color="black" if v > middle else "white")
    _labels(ax, None, None, title)
    return fig


def lines(
    xs_by_name: Mapping[str, Sequence[float]],
    ys_by_name: Mapping[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    figsize=None,
    dpi: int = DPI,
) -> Figure:
    """One line per name, ``ys_by_name[name]`` against ``xs_by_name[name]``, with a legend.

    E.g. Kendall tau against training step, one line per training scheme. Both mappings
    must have the same names; each name's xs and ys must be equally long and non-empty.
    Lines get ``COLORS`` in the order of ``ys_by_name``.

    ``plotting.lines({"sandwich": [1, 2, 3]}, {"sandwich": [0.2, 0.5, 0.6]},
    xlabel="epoch", ylabel="Kendall tau")``.
    """
    if not ys_by_name:
        raise ValueError("plotting.lines: ys_by_name is empty; pass at least one line.")
    if set(xs_by_name) != set(ys_by_name):
        raise ValueError(
            f"plotting.lines: xs_by_name and ys_by_name must name the same lines, received "
            f"{sorted(map(str, xs_by_name))} and {sorted(map(str, ys_by_name))}."
        )
    series = []
    for name in ys_by_name:
        xs = _vector(xs_by_name[name], f"xs_by_name[{name!r}]", "lines")
        ys = _vector(ys_by_name[name], f"ys_by_name[{name!r}]", "lines")
        _same_length("lines", **{f"xs_by_name[{name!r}]": xs, f"ys_by_name[{name!r}]": ys})
        series.append((name, xs, ys))

    fig, ax = new_figure(figsize=figsize, dpi=dpi)
    for i, (name, xs, ys) in enumerate(series):
        ax.plot(
            xs,
            ys,
            color=COLORS[i % len(COLORS)],
            marker="o",
            markersize=3,
            linewidth=1.5,
            label=str(name),
            zorder=2,
        )
    ax.set_xlim(*_padded_range(np.concatenate([xs for _, xs, _ in series])))
    ax.set_ylim(*_padded_range(np.concatenate([ys for _, _, ys in series])))
    ax.legend(fontsize=TICK_SIZE)
    _labels(ax, xlabel, ylabel, title)
    return fig
