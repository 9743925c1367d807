"""tfnas.plotting: figures land their data where matplotlib's transforms say, the RGB array
and the PNG hold the same pixels, bad input raises."""

import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from tfnas import plotting

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _pixels_of(image, color):
    """(rows, cols) of the pixels that have exactly ``color``."""
    return np.nonzero(np.all(image == plotting.rgb(color), axis=-1))


def _display(ax, x, y):
    """The display (x right, y up, origin bottom-left) coordinates of data point (x, y)."""
    return ax.transData.transform([[x, y]])[0]


def _pixel(image, display):
    """The array index (row, col) of the pixel that contains a display point."""
    height = image.shape[0]
    return int(height - display[1]), int(display[0])


def test_rgb_array_shape_dtype_and_background():
    image = plotting.to_rgb_array(plotting.scatter([1, 2], [3, 4], xlabel="x", ylabel="y"))
    assert image.shape == (320, 400, 3) and image.dtype == np.uint8  # 3.2 x 4 in at 100 dpi
    assert tuple(image[0, 0]) == (255, 255, 255)
    small = plotting.scatter([1, 2], [3, 4], xlabel="x", ylabel="y", figsize=(2, 1.5), dpi=80)
    assert plotting.to_rgb_array(small).shape == (120, 160, 3)
    assert plotting.rgb("#1f77b4") == (31, 119, 180)


def test_importing_the_module_does_not_import_matplotlib():
    code = "import sys, tfnas.plotting; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_scatter_points_land_where_the_axes_transform_puts_them():
    fig = plotting.scatter([0.0, 1.0], [0.0, 1.0], xlabel="x", ylabel="y", title="t", highlight=[1])
    ax = fig.axes[0]
    ax.set_xlim(-1.0, 2.0)  # a known range, no margins
    ax.set_ylim(-1.0, 2.0)
    image = plotting.to_rgb_array(fig)  # draws: the transform below is the drawn one
    for (x, y), color, other in (
        ((0.0, 0.0), plotting.POINT_COLOR, plotting.HIGHLIGHT_COLOR),
        ((1.0, 1.0), plotting.HIGHLIGHT_COLOR, plotting.POINT_COLOR),
    ):
        expected = _display(ax, x, y)
        rows, cols = _pixels_of(image, color)
        assert rows.size >= 5, color  # a solid disc of a few pixels
        # All pixels of the colour form one disc centred on the expected position (+0.5: a
        # pixel's centre; rows count from the top). Agg snaps markers to whole pixels, hence
        # 1.5 px of tolerance; the two points are about 100 px apart.
        assert cols.mean() + 0.5 == pytest.approx(expected[0], abs=1.5)
        assert image.shape[0] - (rows.mean() + 0.5) == pytest.approx(expected[1], abs=1.5)
        assert (
            np.hypot(cols + 0.5 - expected[0], image.shape[0] - rows - 0.5 - expected[1]).max() < 6
        )
        # The highlighted point is drawn in its own colour, not the other one.
        assert tuple(image[_pixel(image, expected)]) == plotting.rgb(color)
        assert tuple(image[_pixel(image, expected)]) != plotting.rgb(other)
    # Data y grows upwards in the image: (1, 1) is above and right of (0, 0).
    (r0, c0), (r1, c1) = (_pixel(image, _display(ax, v, v)) for v in (0.0, 1.0))
    assert r1 < r0 and c1 > c0


def test_scatter_highlight_mask_labels_and_axis_ranges():
    fig = plotting.scatter(
        [0.0, 10.0, 5.0],
        [1.0, 3.0, 2.0],
        xlabel="x",
        ylabel="y",
        labels=["a", None, "c"],
        highlight=np.array([False, True, False]),
        highlight_label="front",
    )
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((-0.5, 10.5))  # 5% of the span on each side
    assert ax.get_ylim() == pytest.approx((0.9, 3.1))
    assert [t.get_text() for t in ax.texts] == ["a", "c"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["front"]
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y"
    image = plotting.to_rgb_array(fig)
    assert _pixels_of(image, plotting.HIGHLIGHT_COLOR)[0].size > 0
    # No highlight: no highlight-coloured pixel at all.
    plain = plotting.to_rgb_array(plotting.scatter([0, 1], [0, 1], xlabel="x", ylabel="y"))
    assert _pixels_of(plain, plotting.HIGHLIGHT_COLOR)[0].size == 0
    assert _pixels_of(plain, plotting.POINT_COLOR)[0].size > 0


def test_a_constant_vector_still_plots():
    fig = plotting.scatter([0.5, 0.5, 0.5], [0.2, 0.2, 0.2], xlabel="x", ylabel="y")
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((0.475, 0.525))  # +-5% of the value
    assert ax.get_ylim() == pytest.approx((0.19, 0.21))
    image = plotting.to_rgb_array(fig)
    rows, cols = _pixels_of(image, plotting.POINT_COLOR)
    expected = _display(ax, 0.5, 0.2)
    assert rows.size > 0 and cols.mean() + 0.5 == pytest.approx(expected[0], abs=1.0)
    zero = plotting.scatter([0.0, 0.0], [1.0, 2.0], xlabel="x", ylabel="y")
    assert zero.axes[0].get_xlim() == pytest.approx((-0.5, 0.5))
    flat = plotting.lines({"a": [1, 2]}, {"a": [0.3, 0.3]}, xlabel="x", ylabel="y")
    assert flat.axes[0].get_ylim() == pytest.approx((0.285, 0.315))


def test_png_bytes_and_file_hold_the_rgb_pixels(tmp_path):
    fig = plotting.scatter([0.1, 0.2, 0.3], [0.3, 0.1, 0.2], xlabel="x", ylabel="y", title="t")
    rgb = plotting.to_rgb_array(fig)
    data = plotting.to_png_bytes(fig)
    assert data.startswith(PNG_SIGNATURE)
    path = plotting.save_png(fig, tmp_path / "new" / "dir" / "scatter.png")
    assert path == tmp_path / "new" / "dir" / "scatter.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    loaded = matplotlib.image.imread(path)  # float RGBA in [0, 1]
    assert loaded.shape[:2] == rgb.shape[:2]
    np.testing.assert_array_equal(np.rint(loaded[..., :3] * 255).astype(np.uint8), rgb)


def test_bars_with_ci():
    fig = plotting.bars_with_ci(
        ["sandwich", "uniform", "fair"],
        [0.6, 0.4, -0.2],
        [0.7, 0.3, None],  # the first CI does not contain its value: drawn as given
        [0.8, 0.5, None],
        ylabel="Kendall tau",
        reference=0.9,
        reference_label="ceiling",
        title="t",
    )
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.6, 0.4, -0.2])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sandwich", "uniform", "fair"]
    (whiskers,) = [c for c in ax.collections if len(c.get_segments()) == 2]
    segments = sorted(np.asarray(s).tolist() for s in whiskers.get_segments())
    assert segments == [
        [[0.0, pytest.approx(0.7)], [0.0, pytest.approx(0.8)]],
        [[1.0, pytest.approx(0.3)], [1.0, pytest.approx(0.5)]],
    ]
    reference = [line for line in ax.lines if line.get_label() == "ceiling"]
    assert len(reference) == 1 and list(reference[0].get_ydata()) == [0.9, 0.9]
    # Extent: 0 (bars start there), the values, the CIs and the reference, +-5%.
    assert ax.get_ylim() == pytest.approx((-0.2 - 0.055, 0.9 + 0.055))
    assert ax.get_ylabel() == "Kendall tau"
    image = plotting.to_rgb_array(fig)
    # The first bar is filled halfway up and empty above its top (below the whisker).
    inside = _pixel(image, _display(ax, 0.2, 0.3))
    above = _pixel(image, _display(ax, 0.2, 0.65))
    assert tuple(image[inside]) == plotting.rgb(plotting.POINT_COLOR)
    assert tuple(image[above]) != plotting.rgb(plotting.POINT_COLOR)
    # Without CIs at all.
    bare = plotting.bars_with_ci(["a", "b"], [0.5, 0.7], None, None, ylabel="acc")
    assert not [c for c in bare.axes[0].collections if len(c.get_segments())]
    assert bare.axes[0].get_legend() is None


def test_lines():
    fig = plotting.lines(
        {"sandwich": [0, 1, 2], "uniform": [0, 1, 2, 3]},
        {"sandwich": [0.6, 0.7, 0.8], "uniform": [0.1, 0.2, 0.3, 0.4]},
        xlabel="epoch",
        ylabel="Kendall tau",
    )
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sandwich", "uniform"]
    assert ax.get_xlim() == pytest.approx((-0.15, 3.15))
    assert ax.get_ylim() == pytest.approx((0.1 - 0.035, 0.8 + 0.035))
    image = plotting.to_rgb_array(fig)
    for color, points in (
        (plotting.COLORS[0], [(0, 0.6), (1, 0.7)]),
        (plotting.COLORS[1], [(1, 0.2), (2, 0.3)]),
    ):
        for x, y in points:
            assert tuple(image[_pixel(image, _display(ax, x, y))]) == plotting.rgb(color)


def test_heatmap_colours_each_cell_by_its_value_on_the_fixed_scale():
    from matplotlib import colormaps

    values = [[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]]
    fig = plotting.heatmap(values, ["largest", "smallest", "random1"], ["1", "2"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["largest", "smallest", "random1"]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(["0.25", "0.75", "1.00", "0.00", "0.50", "0.50"])
    image = plotting.to_rgb_array(fig)
    for (i, j), v in np.ndenumerate(np.array(values)):
        # Near a cell's corner (its centre holds the number): viridis of v on [0, 1].
        want = np.round(np.array(colormaps["viridis"](v)[:3]) * 255)
        got = image[_pixel(image, _display(ax, j - 0.35, i - 0.35))]
        assert np.abs(got.astype(int) - want).max() <= 1, (i, j, got, want)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: plotting.scatter([1, 2], [1, 2, 3], xlabel="", ylabel=""), "equally long"),
        (lambda: plotting.scatter([], [], xlabel="", ylabel=""), "x is empty"),
        (lambda: plotting.scatter([1, np.nan], [1, 2], xlabel="", ylabel=""), "x must be finite"),
        (lambda: plotting.scatter([1, 2], [1, np.inf], xlabel="", ylabel=""), "y must be finite"),
        (lambda: plotting.scatter([[1, 2]], [1, 2], xlabel="", ylabel=""), "one-dimensional"),
        (lambda: plotting.scatter(["a", 2], [1, 2], xlabel="", ylabel=""), "sequence of numbers"),
        (
            lambda: plotting.scatter([1, 2], [1, 2], xlabel="", ylabel="", highlight=[2]),
            r"indices must be in \[0, 2\)",
        ),
        (
            lambda: plotting.scatter([1, 2], [1, 2], xlabel="", ylabel="", highlight=[True]),
            "one entry per point",
        ),
        (
            lambda: plotting.scatter([1, 2], [1, 2], xlabel="", ylabel="", highlight=[0.5]),
            "boolean mask or a list of point indices",
        ),
        (
            lambda: plotting.scatter([1, 2], [1, 2], xlabel="", ylabel="", labels=["a"]),
            "labels has 1",
        ),
        (
            lambda: plotting.bars_with_ci(["a", "a"], [1, 2], None, None, ylabel=""),
            "distinct",
        ),
        (lambda: plotting.bars_with_ci([], [], None, None, ylabel=""), "values is empty"),
        (
            lambda: plotting.bars_with_ci(["a", "b"], [1, 2], [0], [3], ylabel=""),
            "lows has 1",
        ),
        (
            lambda: plotting.bars_with_ci(["a"], [1], [2], [0], ylabel=""),
            "low 2.0 > high 0.0",
        ),
        (
            lambda: plotting.bars_with_ci(["a"], [1], [0], [None], ylabel=""),
            "both bounds or neither",
        ),
        (
            lambda: plotting.bars_with_ci(["a"], [1], [np.nan], [1], ylabel=""),
            "must be finite",
        ),
        (
            lambda: plotting.bars_with_ci(["a"], [1], None, None, ylabel="", reference=np.inf),
            "reference must be finite",
        ),
        (lambda: plotting.lines({}, {}, xlabel="", ylabel=""), "ys_by_name is empty"),
        (lambda: plotting.heatmap([[1, 2]], ["a", "b"], ["x", "y"]), r"shape \(1, 2\)"),
        (lambda: plotting.heatmap([[np.nan]], ["a"], ["x"]), "matrix must be finite"),
        (lambda: plotting.heatmap([[1.0]], ["a"], ["x"], vmin=1, vmax=1), "vmin=1"),
        (
            lambda: plotting.lines({"a": [1]}, {"b": [1]}, xlabel="", ylabel=""),
            "must name the same lines",
        ),
        (
            lambda: plotting.lines({"a": [1, 2]}, {"a": [1]}, xlabel="", ylabel=""),
            "equally long",
        ),
        (
            lambda: plotting.lines({"a": [1, 2]}, {"a": [1, np.nan]}, xlabel="", ylabel=""),
            r"ys_by_name\['a'\] must be finite",
        ),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
