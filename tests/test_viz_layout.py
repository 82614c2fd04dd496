"""How the attention figures read: type sizes in print and on screen, legends that cover no data,
tick labels that do not run together, and the explorer's image shown at its own size."""

from __future__ import annotations

import inspect
import math
import struct

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from gabic import plots, viz  # noqa: E402
from gabic.viz import drawing  # noqa: E402
from tests.conftest import sample_capture, small_model  # noqa: E402

#: JupyterLab's output area in a 1280 x 800 browser window with the file browser open (848 px,
#: measured in Chromium). The explorer's image must fit it at its own size.
OUTPUT_WIDTH_PX = 848
#: The smallest text the explorer may show, in CSS pixels.
MIN_SCREEN_PX = 9.0


@pytest.fixture(scope="module")
def cap():
    return sample_capture(128)


def _drawn(fig):
    """Lay out and draw ``fig`` on an Agg canvas; its renderer."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _texts(fig) -> list[Text]:
    """Every text ``fig`` draws (after drawing it): titles, labels, tick labels in view, legends,
    colour bars, annotations."""
    _drawn(fig)
    in_view = {}  # tick labels (which have no axes of their own): whether their tick is in view
    for ax in fig.axes:
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        in_view |= {id(t): x0 <= t.get_position()[0] <= x1 for t in ax.get_xticklabels()}
        in_view |= {id(t): y0 <= t.get_position()[1] <= y1 for t in ax.get_yticklabels()}
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and in_view.get(id(t), True)]


def _outside(fig, texts: list[Text]) -> list[str]:
    """The texts whose drawn extent leaves the figure (a pixel of slack)."""
    box = fig.bbox.padded(1)
    return [t.get_text() for t in texts if not (box.contains(*t.get_window_extent().p0) and box.contains(*t.get_window_extent().p1))]


def _figures(cap) -> dict:
    """One figure per public figure function of gabic.viz.drawing, drawn as for a paper."""
    block = cap["g_a.4"]
    sweep = {
        "name": "k sweep",
        "results": {"bpp": [0.473 + 0.00025 * i for i in range(6)], "psnr-rgb": [23.3 + 0.011 * i for i in range(6)]},
        "meta": {"knn": [1, 3, 6, 9, 12, 15], "trained_knn": 9, "estimate": "likelihoods"},
    }
    return {
        "draw_window_grid": lambda: viz.draw_window_grid(block, 1, 10),
        "draw_window": lambda: viz.draw_window(block, 1, 10),
        "draw_attention_matrix": lambda: viz.draw_attention_matrix(block, 1),
        "draw_statistics": lambda: viz.draw_statistics(cap),
        "plot_k_sweep": lambda: viz.plot_k_sweep(sweep),
    }


def test_every_text_is_at_least_7_points_at_print_width(cap):
    """Every figure of gabic.viz.drawing is drawn one column or one page wide (gabic.plots.COLUMN_WIDTHS),
    the size it is printed at, and none of its texts is under MIN_FONT_SIZE (7) points there."""
    functions = {
        name
        for name, fn in inspect.getmembers(drawing, inspect.isfunction)
        if fn.__module__ == drawing.__name__ and not name.startswith("_") and str(inspect.signature(fn).return_annotation) == "Figure"
    }
    figures = _figures(cap)
    assert set(figures) == functions, "a figure function of gabic.viz.drawing without a type-size check here"
    assert drawing.MIN_FONT_SIZE >= 7
    for name, draw in figures.items():
        fig = draw()
        assert fig.get_figwidth() in plots.COLUMN_WIDTHS.values(), f"{name}: {fig.get_figwidth()} in wide"
        texts = _texts(fig)
        assert len(texts) > 5, name
        small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < drawing.MIN_FONT_SIZE]
        assert small == [], f"{name}: texts under {drawing.MIN_FONT_SIZE} pt"
        assert _outside(fig, texts) == [], f"{name}: texts outside the figure"


def test_statistics_legend_is_outside_the_entropy_plot_and_names_log_k(cap):
    fig = viz.draw_statistics(cap)
    renderer = _drawn(fig)
    (ax,) = [a for a in fig.axes if a.get_title() == "attention entropy (nats)"]
    legend = ax.get_legend()
    assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer)), "the legend covers the curves"
    texts = [t.get_text() for t in legend.get_texts()]
    assert [t for t in texts if t.startswith("g_")] == ["g_a.4", "g_a.8", "g_s.0", "g_s.5"]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_label() == "log k (k=9): uniform" and dashed[0].get_label() in texts
    assert dashed[0].get_ydata()[0] == pytest.approx(math.log(9))
    for other in fig.axes:  # nor any other plot
        if other is not ax and other.get_label() != "<colorbar>":
            assert not legend.get_window_extent(renderer).overlaps(other.get_window_extent(renderer))


@pytest.mark.parametrize(
    "bpp, psnr",
    [
        ([0.473 + 0.00025 * i for i in range(6)], [23.3 + 0.011 * i for i in range(6)]),  # the user's sweep: bpp barely moves
        ([0.31, 0.305, 0.3, 0.302, 0.304, 0.306], [30.1, 30.4, 30.6, 30.7, 30.65, 30.6]),
        ([1.2345678, 1.2345679, 1.234568, 1.2345681, 1.2345682, 1.2345683], [40.0] * 6),  # all but equal
    ],
)
def test_k_sweep_tick_labels_do_not_overlap(bpp, psnr):
    result = {"name": "k sweep", "results": {"bpp": bpp, "psnr-rgb": psnr}, "meta": {"knn": [1, 3, 6, 9, 12, 15], "trained_knn": 9}}
    fig = viz.plot_k_sweep(result)
    renderer = _drawn(fig)
    for ax in fig.axes:
        for axis, labels in (("x", ax.get_xticklabels()), ("y", ax.get_yticklabels())):
            lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
            shown = [t for t in labels if t.get_text() and lo <= t.get_position()[axis == "y"] <= hi]
            boxes = [t.get_window_extent(renderer) for t in shown]
            texts = [t.get_text() for t in shown]
            assert len(set(texts)) == len(texts), f"{axis} ticks written alike: {texts}"
            for i, box in enumerate(boxes):
                assert not any(box.overlaps(other) for other in boxes[i + 1 :]), f"{axis} tick labels run together: {texts}"
            if ax is fig.axes[0] and axis == "x":
                assert 2 <= len(texts) <= drawing.MAX_VALUE_TICKS + 1, texts


def test_explorer_shows_its_png_at_its_own_size_with_readable_text(cap):
    """The explorer's image is shown at the PNG's own pixel size (no stretching), fits JupyterLab's
    output at 1280 x 800, and every text in it is at least 9 CSS pixels high, at k = 9 and k = 63."""
    pytest.importorskip("ipywidgets")
    from gabic.widgets._base import SMALLEST_TEXT_KEY, png_text
    from gabic.widgets.attention import DPI, FIGURE_SIZE, attention_explorer

    ex = attention_explorer(small_model("gabic"), capture=cap)
    assert ex.dpi == DPI
    for k in (9, 63):
        ex.k.value = k
        png = bytes(ex.image.value)
        width, height = struct.unpack(">II", png[16:24])
        assert (width, height) == (round(FIGURE_SIZE[0] * DPI), round(FIGURE_SIZE[1] * DPI))
        assert (ex.image.layout.width, ex.image.layout.height) == (f"{width}px", f"{height}px")  # gabic.widgets._base.show_png
        assert width <= OUTPUT_WIDTH_PX
        fig = ex._fig
        texts = _texts(fig)
        small = [
            (t.get_text(), round(t.get_fontsize() * fig.dpi / 72, 1)) for t in texts if t.get_fontsize() * fig.dpi / 72 < MIN_SCREEN_PX
        ]
        assert small == [], f"k={k}: texts under {MIN_SCREEN_PX} px on screen"
        # The PNG says the same, for the browser test to read off the page: its smallest text in its pixels.
        written = float(png_text(png)[SMALLEST_TEXT_KEY])
        assert written == pytest.approx(min(t.get_fontsize() for t in texts) * fig.dpi / 72, abs=0.006) and written >= MIN_SCREEN_PX
        labels = [t for t in fig.axes[1].texts if t.get_gid() == drawing.LABEL_GID]
        assert len(labels) == (k if k <= drawing.LABEL_ALL_UP_TO else drawing.MAX_WEIGHT_LABELS)
        assert _outside(fig, texts) == [], f"k={k}: texts cut by the image's edge"
