"""Figures exported for papers keep their type at least 7 pt when placed at one-column width.

Every figure function of the modules of tests/test_figure_data.py, and of gabic.analysis.drawing,
is built from the inputs of its data test (its builder there, or here for gabic.analysis.drawing),
at one-column width (``width="single"``, ``COLUMN_WIDTHS["single"]`` = 3.5 in) where it takes a
``width``, and drawn. Each text drawn (visible, not empty, not in hidden axes, not the label of a
tick outside the view: titles, axis and tick labels, legend texts, annotations, colour-bar labels,
suptitles) must be at least :data:`MIN_POINTS` where the figure is placed: its font size, times
``placed width / figure width`` where the figure is wider. A function that takes a ``width`` is
placed at one column (a figure drawn wider than it was asked for is scaled down); one that takes
none and draws at most a page wide (``COLUMN_WIDTHS["double"]``, a figure across both columns, as
the attention statistics and the k sweep are) is placed at its own width, and one wider than a page
is scaled down to a page. One case per module: a failure lists every text too small, by function,
role and size.

In the modules fitted to one column (:data:`FITTED`), no two tick labels of an axis overlap, nor any
two texts, and no text reaches beyond the figure's edges (cut off when saved).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from PIL import Image  # noqa: E402

from gabic import plots, reconstructions  # noqa: E402
from gabic.analysis import drawing as analysis_drawing  # noqa: E402
from gabic.train import figures as train_figures  # noqa: E402
from tests.conftest import small_model  # noqa: E402
from tests.test_figure_data import BUILDERS, MODULES  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The smallest type size, in points, of a figure placed at one-column width.
MIN_POINTS = 7.0
#: The width of one column and of a page (both columns), in inches (IEEE: 3.5 and 7.16 in).
COLUMN, PAGE = plots.COLUMN_WIDTHS["single"], plots.COLUMN_WIDTHS["double"]
#: The modules checked: those of tests/test_figure_data.py, and gabic.analysis.drawing.
FONT_MODULES: tuple[ModuleType, ...] = (*MODULES, analysis_drawing)
#: The modules whose figures have been fitted to one column: their tick labels are also checked for overlaps.
FITTED = (reconstructions, train_figures, analysis_drawing)


def _short(module: ModuleType) -> str:
    return module.__name__.removeprefix("gabic.")


def figure_functions(module: ModuleType) -> list[tuple[str, Callable[..., Figure]]]:
    """The public functions of ``module`` defined there that return a Figure (as tests/test_figure_data.py finds them)."""
    return [
        (name, fn)
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if fn.__module__ == module.__name__ and not name.startswith("_") and str(inspect.signature(fn).return_annotation) == "Figure"
    ]


# --- gabic.analysis.drawing: its figures from two small models on one image ----------------------------------


@cache
def _analysis():
    """The analyses of a small GABIC and a small WACNN (latents scaled, so they cost bits) on a 128x80
    image (padded to 128x128: the maps show the padding, as those of tests/test_analysis_drawing.py)."""
    from gabic.analysis.report import analyse_image

    models = []
    for name in ("gabic", "wacnn"):
        model = small_model(name)
        model.g_a.register_forward_hook(lambda module, args, out: out * 10)
        models.append(model)
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:80, 0:128].astype(np.float64)
    base = np.stack([127 + 90 * np.sin(xx / 6.0), 127 + 90 * np.cos(yy / 9.0), 127 + 90 * np.sin((xx - yy) / 13.0)], -1)
    image = Image.fromarray(np.clip(base + rng.normal(0, 15, base.shape), 0, 255).astype(np.uint8))
    return analyse_image(tuple(models), image)


def _report() -> dict[str, Any]:
    """A report of :func:`gabic.analysis.report.compare_report`'s shape: two rate pairs of the one analysis."""
    analysis = _analysis()
    summary = analysis.summary()
    names = dict(zip(("first", "second"), analysis.names, strict=True))
    curves = [
        {"name": names["first"], "results": {"bpp": [0.21, 0.43], "psnr-rgb": [29.8, 32.9]}},
        {"name": names["second"], "results": {"bpp": [0.22, 0.45], "psnr-rgb": [29.6, 32.6]}},
    ]
    pairs = [{"first": f"gabic-{i}.pth.tar", "second": f"wacnn-{i}.pth.tar", "images": {"image.png": summary}} for i in range(2)]
    return {"names": names, "curves": curves, "bd": {"bd_rate": -3.21}, "pairs": pairs, "meta": {"image_set": None}}


def _attention_maps(**kwargs: Any) -> Figure:
    analysis = _analysis()
    block = list(analysis.attention)[-1]
    return analysis_drawing.draw_attention_maps(
        analysis.attention[block], analysis.block_pair(block), head=1, names=analysis.kind_names(block), **kwargs
    )


def _first_model() -> tuple[Any, float]:
    """The first model's latent capture and coded bpp."""
    comparison = _analysis().comparison
    return comparison.captures[0], comparison.measurements[0].bpp


ANALYSIS_BUILDERS: dict[str, Callable[..., Figure]] = {
    "draw_bits_comparison": lambda **kw: analysis_drawing.draw_bits_comparison(_analysis().comparison, **kw),
    "draw_bits": lambda **kw: analysis_drawing.draw_bits(*_first_model(), **kw),
    "draw_slice_bits": lambda **kw: analysis_drawing.draw_slice_bits(_analysis().comparison.captures, _analysis().names, **kw),
    "draw_tile_scatter": lambda **kw: analysis_drawing.draw_tile_scatter(_analysis().comparison, **kw),
    "draw_residual_correlation": lambda **kw: analysis_drawing.draw_residual_correlation(_analysis().residual_correlation, **kw),
    "draw_redundancy": lambda **kw: analysis_drawing.draw_redundancy(_analysis().redundancy, **kw),
    "draw_attention_comparison": lambda **kw: analysis_drawing.draw_attention_comparison(
        _analysis().attention, names=_analysis().kind_names(next(iter(_analysis().attention))), **kw
    ),
    "draw_attention_maps": _attention_maps,
    "draw_report": lambda **kw: analysis_drawing.draw_report(_report(), **kw),
}


# --- building and reading a figure ---------------------------------------------------------------------------------


@cache
def build(module: ModuleType, name: str, fn: Callable[..., Figure]) -> Figure:
    """``fn`` built from its data test's inputs, at one-column width when it takes a ``width``, and
    drawn (once per session: the checks only read it)."""
    builder = ANALYSIS_BUILDERS[name] if module is analysis_drawing else BUILDERS[name]
    kwargs = {"width": "single"} if "width" in inspect.signature(fn).parameters else {}
    fig = builder(**kwargs)
    FigureCanvasAgg(fig)  # a Figure made without pyplot has a canvas that draws nothing
    fig.canvas.draw()
    return fig


def _in_view(axis: Any, loc: float) -> bool:
    lo, hi = sorted(axis.get_view_interval())
    slack = 1e-9 * max(abs(lo), abs(hi), 1.0)
    return lo - slack <= loc <= hi + slack


def _tick_labels(axis: Any) -> Iterator[tuple[Text, bool]]:
    """Every tick label of ``axis``, and whether its tick is inside the axis's view (only those are drawn)."""
    for tick in (*axis.get_major_ticks(), *axis.get_minor_ticks()):
        for label in (tick.label1, tick.label2):
            yield label, _in_view(axis, tick.get_loc())


def _roles(fig: Figure) -> dict[int, str]:
    """A name for the role of each text of ``fig`` the axes know (``id(text) -> role``); others are annotations."""
    roles: dict[int, str] = {}
    if fig._suptitle is not None:
        roles[id(fig._suptitle)] = "suptitle"
    for legend in fig.legends:
        roles.update({id(t): "legend text" for t in legend.get_texts()})
        roles[id(legend.get_title())] = "legend title"
    for ax in fig.axes:
        where = "colour bar " if hasattr(ax, "_colorbar") else ""
        for title in (ax.title, ax._left_title, ax._right_title):
            roles[id(title)] = f"{where}title"
        for letter, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            roles[id(axis.label)] = f"{where}{letter} label"
            roles[id(axis.offsetText)] = f"{where}{letter} offset"
            roles.update({id(label): f"{where}{letter} tick label" for label, _ in _tick_labels(axis)})
        if ax.get_legend() is not None:
            roles.update({id(t): "legend text" for t in ax.get_legend().get_texts()})
            roles[id(ax.get_legend().get_title())] = "legend title"
    return roles


def drawn_texts(fig: Figure) -> list[Text]:
    """The texts of ``fig`` that are drawn: visible, not empty, not in hidden axes, not the labels of ticks outside the view."""
    hidden = {id(label) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for label, shown in _tick_labels(axis) if not shown}
    for ax in fig.axes:
        if not ax.get_visible():
            hidden |= {id(t) for t in ax.findobj(Text)}
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden]
    return list({id(t): t for t in texts}.values())


def placed_width(fn: Callable[..., Any], fig: Figure) -> float:
    """Where a figure of ``fn`` is placed in a paper: one column when ``fn`` takes a width (it was asked
    for one column), else its own width up to a page (see the module docstring)."""
    if "width" in inspect.signature(fn).parameters:
        return COLUMN
    return min(fig.get_figwidth(), PAGE)


def effective_points(fig: Figure, text: Text, placed: float = COLUMN) -> float:
    """The size of ``text`` in points once ``fig`` is placed ``placed`` inches wide (scaled down when wider)."""
    return text.get_fontsize() * min(1.0, placed / fig.get_figwidth())


def too_small(module: ModuleType) -> list[str]:
    """Every drawn text of every figure function of ``module`` under :data:`MIN_POINTS` where it is placed:
    one line per function, role and size, naming each text."""
    failures = []
    for name, fn in figure_functions(module):
        fig = build(module, name, fn)
        roles = _roles(fig)
        placed = placed_width(fn, fig)
        scale = min(1.0, placed / fig.get_figwidth())
        drawn = f" in a figure {fig.get_figwidth():.2f} in wide (x{scale:.2f} placed {placed:g} in wide)" if scale < 1 else ""
        groups: dict[tuple[str, float], list[str]] = {}
        for text in drawn_texts(fig):
            if effective_points(fig, text, placed) < MIN_POINTS - 1e-9:
                role = roles.get(id(text), "text") + (f" (gid {text.get_gid()!r})" if text.get_gid() else "")
                groups.setdefault((role, text.get_fontsize()), []).append(repr(text.get_text()))
        for (role, size), texts in groups.items():
            failures.append(f"{name}: {role} {', '.join(texts)}: {size:.2f} pt{drawn} -> {size * scale:.2f} pt")
    return failures


@pytest.mark.parametrize("module", FONT_MODULES, ids=_short)
def test_texts_are_at_least_7_points_at_one_column(module):
    failures = too_small(module)
    assert not failures, f"texts under {MIN_POINTS:g} pt at one column:\n" + "\n".join(failures)


def test_every_analysis_figure_function_is_built():
    assert {name for name, _ in figure_functions(analysis_drawing)} == set(ANALYSIS_BUILDERS)


def test_the_check_reads_sizes_as_drawn():
    """The check itself: a 7 pt text passes at one column and fails on a figure twice as wide; a
    hidden text, an empty one and the labels of ticks outside the view are not read."""
    from matplotlib.figure import Figure

    for width, expected in ((COLUMN, 7.0), (2 * COLUMN, 3.5)):
        fig = Figure(figsize=(width, 2))
        ax = fig.add_subplot()
        ax.set_title("title", fontsize=7)
        ax.text(0.5, 0.5, "hidden", fontsize=2).set_visible(False)
        ax.text(0.5, 0.5, " ", fontsize=2)
        ax.set_xticks([0.0, 0.5, 1.0, 2.0], ["a", "b", "c", "outside"], fontsize=7)
        ax.set_yticks([])
        ax.set_xlim(0, 1)
        FigureCanvasAgg(fig).draw()
        texts = drawn_texts(fig)
        assert sorted(t.get_text() for t in texts) == ["a", "b", "c", "title"]
        assert {effective_points(fig, t) for t in texts} == {expected}
        assert _roles(fig)[id(ax.title)] == "title"


# --- overlaps -------------------------------------------------------------------------------------------------------


def _overlap(a: Any, b: Any, tolerance: float = 0.5) -> bool:
    """Whether two display boxes share more than ``tolerance`` pixels in both directions."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance and min(a.y1, b.y1) - max(a.y0, b.y0) > tolerance


def overlapping_tick_labels(fig: Figure) -> list[str]:
    """Pairs of drawn tick labels of one axis whose boxes overlap, described."""
    renderer = fig.canvas.get_renderer()
    drawn = {id(t) for t in drawn_texts(fig)}
    found = []
    ax: Axes
    for i, ax in enumerate(fig.axes):
        for letter, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            labels = [label for label, _ in _tick_labels(axis) if id(label) in drawn]
            boxes = [label.get_window_extent(renderer) for label in labels]
            for j in range(len(labels)):
                for k in range(j + 1, len(labels)):
                    if _overlap(boxes[j], boxes[k]):
                        found.append(f"axes {i} ({ax.get_title()!r}), {letter}: {labels[j].get_text()!r} and {labels[k].get_text()!r}")
    return found


def overlapping_texts(fig: Figure) -> list[str]:
    """Pairs of drawn texts of ``fig`` whose boxes overlap, and texts reaching beyond the figure's edges (cut off when saved)."""
    renderer = fig.canvas.get_renderer()
    texts = drawn_texts(fig)
    boxes = [t.get_window_extent(renderer) for t in texts]
    found = []
    for j in range(len(texts)):
        for k in range(j + 1, len(texts)):
            if _overlap(boxes[j], boxes[k]):
                found.append(f"{texts[j].get_text()!r} overlaps {texts[k].get_text()!r}")
    edge = fig.bbox
    for text, box in zip(texts, boxes, strict=True):
        if box.x0 < edge.x0 - 1 or box.y0 < edge.y0 - 1 or box.x1 > edge.x1 + 1 or box.y1 > edge.y1 + 1:
            found.append(f"{text.get_text()!r} reaches beyond the figure")
    return found


@pytest.mark.parametrize("module", FITTED, ids=_short)
def test_tick_labels_of_an_axis_do_not_overlap(module):
    found = {name: overlapping_tick_labels(build(module, name, fn)) for name, fn in figure_functions(module)}
    found = {name: pairs for name, pairs in found.items() if pairs}
    assert not found, found


@pytest.mark.parametrize("module", FITTED, ids=_short)
def test_texts_do_not_overlap_nor_leave_the_figure(module):
    found = {name: overlapping_texts(build(module, name, fn)) for name, fn in figure_functions(module)}
    found = {name: pairs for name, pairs in found.items() if pairs}
    assert not found, found
