"""RD figures: :func:`rd_figure` draws one with matplotlib for papers, :func:`save_figure` writes it
(with its data as CSV), :func:`rd_plotly` draws the same curves with plotly for exploring; and
their helpers: the fitted x- and y-ranges, the notes under the plot, the legend's place and the
plotly hover text. See :mod:`gabic.plots`."""

from __future__ import annotations

import io
import logging
import math
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gabic.figure_data import attach_data, write_figure_data
from gabic.figure_layout import FONT_SIZE, LEGEND_FONT_SIZE, NOTE_FONT_SIZE, figure_width
from gabic.files import FIGURE_FORMATS, write_atomic
from gabic.image_sets import describe
from gabic.plots.curves import Curve, Curves, _rd_table, _set_key, _settings, _stored_points, _with_metric, load_curves
from gabic.plots.styles import (
    _LEGEND_LINE_IN,
    AXIS_MARGIN,
    HEIGHT_RATIO,
    LINE_WIDTH,
    MARKER_SIZE,
    METRIC_LABELS,
)
from gabic.results import points

if TYPE_CHECKING:
    import plotly.graph_objects as go

log = logging.getLogger(__name__)

_PLOTLY_DASH = {"-": "solid", "--": "dash", ":": "dot"}
_PLOTLY_SYMBOL = {  # plotly's names of the markers
    **{"o": "circle", "s": "square", "^": "triangle-up", "v": "triangle-down", "<": "triangle-left", ">": "triangle-right"},
    **{"D": "diamond", "d": "diamond-tall", "p": "pentagon", "h": "hexagon", "8": "octagon", "P": "cross", "X": "x", "*": "star"},
}
_FORMATS = FIGURE_FORMATS


def _legend_fits(labels: list[str], width: float, height: float) -> bool:
    """Whether a legend of ``labels`` fits inside a plot of this size (a rough
    estimate: a character is about 0.55 em wide, the line sample about 3 em)."""
    legend_width = (max(map(len, labels)) * 0.55 + 3) * LEGEND_FONT_SIZE / 72
    return legend_width <= 0.5 * width and len(labels) * _LEGEND_LINE_IN <= 0.45 * height


def _auto_title(curves: list[Curve]) -> str:
    """The image set when every curve says it was measured on the same one, else nothing."""
    keys = {_set_key(c.image_set) for c in curves}
    if len(keys) == 1 and None not in keys:
        return describe(curves[0].image_set)
    return ""


def _short_names(curves: list[Curve]) -> str:
    """``"BPG 4:4:4, VTM and 2 more"``: the curves' labels cut before their first parenthesis, once each."""
    names: list[str] = []
    for c in curves:
        name = c.label.split(" (", 1)[0].strip() or c.label
        if name not in names:
            names.append(name)
    if len(names) > 3:
        return f"{', '.join(names[:2])} and {len(names) - 2} more"
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]


def _x_range(
    drawn: list[tuple[Curve, list[tuple[float, float]]]], curves: list[Curve], xlim: tuple[float, float] | str | None
) -> tuple[tuple[float, float] | None, list[Curve]]:
    """The x-range of an RD figure (None: matplotlib's fit of every point) and the drawn curves with
    points beyond it; ``curves``: every curve given, drawn or not (see :func:`rd_figure`)."""
    if isinstance(xlim, str):
        if xlim not in ("full", "learned"):
            raise ValueError(f"xlim must be None, 'learned', 'full' or (left, right), got {xlim!r}")
        if xlim == "full":
            return None, []
    elif xlim is not None:
        lo, hi = (float(v) for v in xlim)
        return (lo, hi), [c for c, pairs in drawn if any(not lo <= b <= hi for b, _ in pairs)]
    learned = [float(b) for c in curves if c.style["learned"] for b in c.result["results"]["bpp"]]
    if not learned:
        return None, []
    every = [b for _, pairs in drawn for b, _ in pairs]
    top = max(learned)
    if top <= min(every):  # the learned curves all lie left of the drawn points: nothing to fit to
        return None, []
    beyond = [c for c, pairs in drawn if any(b > top for b, _ in pairs)]
    if not beyond:  # nothing reaches past the learned codecs: the full range is the learned one
        return None, []
    span = (top - min(every)) or abs(top) or 1.0
    return (min(every) - AXIS_MARGIN * span, top + AXIS_MARGIN * span), beyond


def _y_range(drawn: list[tuple[Curve, list[tuple[float, float]]]], x_range: tuple[float, float]) -> tuple[float, float] | None:
    """The y-range that fits the points inside ``x_range`` (None when none is inside)."""
    lo, hi = x_range
    inside = [v for _, pairs in drawn for b, v in pairs if lo <= b <= hi]
    if not inside:
        return None
    span = (max(inside) - min(inside)) or abs(max(inside)) or 1.0
    return min(inside) - AXIS_MARGIN * span, max(inside) + AXIS_MARGIN * span


def _covers_lines(fig: Figure, ax: Axes, legend: Any) -> bool:
    """Whether ``legend``, placed (the figure laid out), covers part of a curve (a line or marker) of ``ax``."""
    fig.draw_without_rendering()
    box = legend.get_window_extent()
    for line in ax.get_lines():
        path = line.get_transform().transform_path(line.get_path())
        if path.intersects_bbox(box, filled=False) or any(box.contains(x, y) for x, y in path.vertices):
            return True
    return False


def _note(ax: Axes, lines: list[str]) -> int:
    """Small grey notes under the x-axis label, left-aligned with the plot and wrapped to its width
    (outside the plot: they cover no curve); returns the number of text lines."""
    width_in = ax.get_position().width * ax.figure.get_figwidth()
    chars = max(20, int(width_in * 72 / (0.55 * NOTE_FONT_SIZE)))
    text = "\n".join(textwrap.fill(line, chars, subsequent_indent="  ") for line in lines)
    ax.annotate(
        text,
        xy=(0, 0),
        xycoords=("axes fraction", ax.xaxis.label),  # x: the plot's left edge, y: the bottom of the x label
        xytext=(0, -2),
        textcoords="offset points",
        ha="left",
        va="top",
        fontsize=NOTE_FONT_SIZE,
        color="0.3",
        gid=NOTE_GID,
    )
    return text.count("\n") + 1


#: Gid of the notes :func:`rd_figure` writes on a figure (x-range fitted, curves without the metric).
NOTE_GID = "rd-note"


def rd_figure(
    results: Curves,
    metric: str = "psnr-rgb",
    width: str | float = "single",
    ax: Axes | None = None,
    title: str | None = None,
    legend: bool = True,
    xlim: tuple[float, float] | str | None = None,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """An RD figure: rate (bpp) against ``metric``, one line per curve, styled by :func:`method_style`.

    The x-range, by default, fits the learned codecs: classical codecs (BPG, VTM, JPEG... see
    :data:`CLASSICAL_METHODS`) are measured up to 3-5 bpp, learned ones stop near 1 bpp, and a
    full-range figure squeezes every learned curve into its left fifth. So when some drawn point
    lies beyond the highest bpp of the learned curves given (measured or published; with or
    without this metric, so that the PSNR and MS-SSIM figures of one set of curves share their
    x-range), the x-range runs from the lowest bpp drawn to that highest learned bpp, plus a
    margin of :data:`AXIS_MARGIN` of the span on both sides; the classical curves go on beyond
    the axes (clipped), and a note on the figure says so and names them. Without learned curves,
    or when nothing reaches beyond them, every point is shown. The y-range then fits the points
    inside the x-range (same margin). ``xlim="full"`` shows every point (matplotlib's own fit).

    Curves without ``metric`` are left out, listed in a note on the figure ("no MS-SSIM data:
    JPEG (published), ...") and in the log. The notes sit under the x-axis label, outside the
    plot (the figure grows by their height), and carry the gid :data:`NOTE_GID`.

    The data behind the figure is attached to it (:func:`gabic.figure_data.attach_data`, table
    ``"rd"``; :func:`save_figure` writes it as CSV): one row per drawn point with ``curve`` (the
    legend label), ``method``, ``kind`` (``measured``, ``published``, ``digitized``), ``point``
    (its index in the results file), ``bpp``, the metric (:func:`data_column`: ``psnr_db``,
    ``ms_ssim``, ``ms_ssim_db``) and, where a file's ``meta`` has them, ``lambda`` and ``quality``.

    Args:
        results: one curve or a sequence (results dicts, paths, published names).
        metric: ``"psnr-rgb"`` (default), ``"ms-ssim-rgb"`` or ``"ms-ssim-db-rgb"`` (derived from
            linear MS-SSIM where a file has only that), or another key of the files' ``results``.
        width: ``"single"`` (3.5 in, default), ``"double"`` (7.16 in) or inches; the height is
            :data:`HEIGHT_RATIO` times the width. Ignored when ``ax`` is given.
        ax: draw into these axes instead of a new :class:`~matplotlib.figure.Figure` (no pyplot
            state is used either way); the data goes to ``ax.figure``.
        title: the title; None (default) shows the image set when every curve was measured on
            the same one (:func:`gabic.image_sets.describe`); ``""`` shows none.
        legend: draw a legend (default True): inside the plot where it covers the fewest points
            (matplotlib's ``loc="best"``); in a new figure, when it would take more than about half
            the plot's width or height, or cover part of a curve wherever it went, below the axes instead,
            the figure growing taller by the legend's height, labels too wide for the figure wrapped.
        xlim: None or ``"learned"`` (default): fitted to the learned codecs as above; ``"full"``:
            every point; ``(left, right)``: these limits (points outside are clipped, and the
            y-range fits the points inside).
        ylim: ``(bottom, top)``; None (default): fitted to the points inside the x-range.

    Returns:
        The figure (``ax.figure`` when ``ax`` is given).

    Raises:
        ResultsError: a curve is not in the results schema, or no curve has ``metric`` (curves
            lacking it while others have it are left out, with a note and a log line at DEBUG).
        ValueError: a bad ``width`` or ``xlim``, or no curves.
    """
    curves = load_curves(results)
    drawn = _with_metric(curves, metric)
    x_range, beyond = _x_range(drawn, curves, xlim)
    own = ax is None
    if own:
        w = figure_width(width)
        fig = Figure(figsize=(w, w * HEIGHT_RATIO), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    for curve, pairs in drawn:
        style = {k: curve.style[k] for k in ("label", "color", "marker", "linestyle", "linewidth", "alpha", "markerfacecolor")}
        bpp, values = zip(*pairs, strict=True)
        ax.plot(bpp, values, markeredgecolor=style["color"], markersize=MARKER_SIZE, **style)
    axis_label = METRIC_LABELS.get(metric, (metric,))[0]
    ax.set_xlabel("Rate (bpp)", fontsize=FONT_SIZE)
    ax.set_ylabel(axis_label, fontsize=FONT_SIZE)
    ax.tick_params(labelsize=FONT_SIZE)
    ax.grid(True, linewidth=0.4, alpha=0.6)
    if x_range is not None:
        ax.set_xlim(*x_range)
        if ylim is None:
            ylim = _y_range(drawn, x_range)
    if ylim is not None:
        ax.set_ylim(*ylim)
    title = _auto_title([c for c, _ in drawn]) if title is None else title
    if title:
        ax.set_title(title, fontsize=FONT_SIZE + 1)
    notes = []
    if beyond and (xlim is None or xlim == "learned"):
        top = max(b for c in beyond for b, _ in points(c.result, metric))
        names = _short_names(beyond)
        verb = "goes" if "," not in names and " and " not in names else "go"
        notes.append(f"x-range fitted to the learned codecs; {names} {verb} on to {top:.2g} bpp")
    missing = [c for c in curves if all(c is not d for d, _ in drawn)]
    if missing:
        notes.append(f"no {axis_label.split(' (')[0]} data: " + ", ".join(c.label for c in missing))
    if notes:
        note_lines = _note(ax, notes)
        if own:  # the figure grows by the notes' height; the plot keeps its size
            fig.set_size_inches(fig.get_figwidth(), fig.get_figheight() + note_lines * NOTE_FONT_SIZE * 1.25 / 72 + 0.03)
    outside = legend and own and not _legend_fits([c.label for c, _ in drawn], *fig.get_size_inches())
    if legend and not outside:
        # where it covers the fewest points and lines (and not the notes): with the x-range fitted
        # to the learned codecs, the weaker classical curves often pass through the lower right
        inside = ax.legend(loc="best", fontsize=LEGEND_FONT_SIZE, framealpha=0.9)
        if own and _covers_lines(fig, ax, inside):  # nowhere free inside: below the plot instead
            inside.remove()
            outside = True
    if outside:
        # below the plot, the figure taller by the legend's height; labels wider than a column of
        # the figure wrapped, so none is cut at the figure's edge
        handles, labels = ax.get_legend_handles_labels()
        ncols = 1 if fig.get_figwidth() < 5 or len(labels) < 4 else 2
        chars = int((fig.get_figwidth() / ncols - 0.5) * 72 / (0.55 * LEGEND_FONT_SIZE))
        labels = [textwrap.fill(label, max(chars, 20), subsequent_indent="  ") for label in labels]
        lines = math.ceil(sum(label.count("\n") + 1 for label in labels) / ncols) + (ncols - 1)
        fig.set_size_inches(fig.get_figwidth(), fig.get_figheight() + 0.15 + lines * _LEGEND_LINE_IN)
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=LEGEND_FONT_SIZE, frameon=False)
    if title and own:
        _fit_title(fig, ax)
    attach_data(fig, _rd_table(drawn, metric), name="rd")
    return fig


def _fit_title(fig: Figure, ax: Axes) -> None:
    """Wrap the title of ``ax`` where it would run past the figure's edges (cut off in the PNG):
    its extent is checked on the laid-out figure when a rough estimate says it may not fit."""
    text = ax.title.get_text()
    if len(text) * 0.55 * ax.title.get_fontsize() / 72 < 0.8 * fig.get_figwidth():
        return  # fits by far: no layout needed
    for _ in range(3):
        fig.draw_without_rendering()
        box, edge = ax.title.get_window_extent(), fig.bbox
        if box.x0 >= edge.x0 - 0.5 and box.x1 <= edge.x1 + 0.5:
            return
        longest = max(map(len, ax.title.get_text().splitlines()))
        chars = max(10, int(longest * 0.95 * edge.width / box.width))
        ax.title.set_text(textwrap.fill(text, chars))


def save_figure(fig: Figure, stem: str | os.PathLike, formats: Sequence[str] = _FORMATS, dpi: int = 300) -> list[Path]:
    """Write ``fig`` as ``<stem>.<format>`` for each format, atomically (a temporary file in the
    same folder, renamed into place), creating missing folders. Fonts are embedded as TrueType in
    PDF; dates are left out of PDF and SVG so the same figure gives the same bytes. The data
    behind the figure (what gabic's drawing functions attached, :mod:`gabic.figure_data`) is
    written beside it as ``<stem>.csv`` (``<stem>.<table>.csv`` for several tables).

    Args:
        fig: a matplotlib figure.
        stem: the path without the extension (``"figures/rd_psnr"``).
        formats: any of ``"pdf"``, ``"svg"``, ``"png"`` (default: all three).
        dpi: resolution of PNG (default 300).

    Returns:
        The paths written: the figures in the order of ``formats``, then the CSV files.

    Raises:
        ValueError: an unknown format (checked before anything is written).
    """
    if isinstance(formats, str):
        formats = (formats,)
    fmts = [str(f).lower().lstrip(".") for f in formats]
    bad = [f for f, n in zip(formats, fmts, strict=True) if n not in _FORMATS]
    if bad or not fmts:
        raise ValueError(f"unknown figure format(s) {bad or list(formats)!r}: expected some of {list(_FORMATS)}")
    metadata = {"pdf": {"CreationDate": None, "Creator": "gabic"}, "svg": {"Date": None}, "png": {"Software": "gabic"}}
    rc = {"pdf.fonttype": 42, "svg.hashsalt": "gabic"}
    written = []
    for fmt in fmts:
        buf = io.BytesIO()
        with matplotlib.rc_context(rc):
            fig.savefig(buf, format=fmt, dpi=dpi, metadata=metadata[fmt])
        written.append(write_atomic(Path(f"{os.fspath(stem)}.{fmt}"), buf.getvalue()))
        log.info("wrote %s", written[-1])
    data = write_figure_data(fig, stem)
    if not data:
        log.debug("%s: the figure carries no data table (drawn outside gabic?)", stem)
    return written + data


def _hover_points(result: dict[str, Any], metric: str) -> list[tuple[float, float, str]]:
    """(bpp, value, setting text) per point, sorted like :func:`gabic.results.points`; the setting
    (quality or lambda from ``meta``) is paired with its point before sorting."""
    settings = _settings(result)
    out = []
    for i, bpp, value in _stored_points(result, metric):
        if "quality" in settings:
            q = settings["quality"][i]
            text = f"quality {q:g}" if isinstance(q, (int, float)) else f"quality {q}"
        elif "lambda" in settings:
            lam = settings["lambda"][i]
            text = f"λ = {lam:g}" if isinstance(lam, (int, float)) else f"λ = {lam}"
        else:
            text = ""
        out.append((bpp, value, text))
    return out


def rd_plotly(results: Curves, metric: str = "psnr-rgb", title: str | None = None) -> go.Figure:
    """An interactive RD figure with plotly, styled as :func:`rd_figure` (colours, marker shapes,
    dashes). Hovering a point shows the curve, its quality or lambda (from ``meta``), bpp and
    the metric.

    Args:
        results: one curve or a sequence (results dicts, paths, published names).
        metric: as for :func:`rd_figure` (default ``"psnr-rgb"``).
        title: as for :func:`rd_figure`.

    Returns:
        A ``plotly.graph_objects.Figure``.

    Raises:
        ImportError: plotly is not installed. ResultsError: as for :func:`rd_figure`.
    """
    try:
        import plotly.graph_objects as go
    except ImportError as err:
        raise ImportError("rd_plotly needs plotly: pip install plotly") from err
    curves = load_curves(results)
    drawn = _with_metric(curves, metric)
    axis_label = METRIC_LABELS.get(metric, (metric,))[0]
    name, _, unit = axis_label.partition(" (")  # "PSNR (dB)" -> "PSNR", "dB)"
    unit = " " + unit.rstrip(")") if unit else ""
    value_format = ".4f" if metric == "ms-ssim-rgb" else ".3f"
    fig = go.Figure()
    for curve, _ in drawn:
        s = curve.style
        rows = _hover_points(curve.result, metric)
        hover = [
            "<br>".join(x for x in (f"<b>{s['label']}</b>", setting, f"{b:.4f} bpp", f"{name} {v:{value_format}}{unit}") if x)
            for b, v, setting in rows
        ]
        symbol = _PLOTLY_SYMBOL.get(s["marker"], "circle") + ("" if s["kind"] == "measured" else "-open")
        fig.add_trace(
            go.Scatter(
                x=[r[0] for r in rows],
                y=[r[1] for r in rows],
                mode="lines+markers",
                name=_legend_name(s["label"]),
                line={"color": s["color"], "dash": _PLOTLY_DASH[s["linestyle"]], "width": 2 * s["linewidth"] / LINE_WIDTH},
                opacity=s["alpha"],
                marker={"symbol": symbol, "color": s["color"], "size": 8, "line": {"color": s["color"], "width": 1.5}},
                text=hover,
                hovertemplate="%{text}<extra></extra>",
            )
        )
    title = _auto_title([c for c, _ in drawn]) if title is None else title
    fig.update_layout(**plotly_layout([_legend_name(c.label) for c, _ in drawn], title, axis_label))
    return fig


#: The plot area of :func:`rd_plotly` (pixels tall) and the width its legend is laid out for
#: (a notebook's output on a 1280x800 screen: 848 px with JupyterLab's file browser open).
PLOTLY_PLOT_HEIGHT, PLOTLY_WIDTH = 420, 840
_PLOTLY_FONT, _PLOTLY_LINE = 12, 17  # legend type size and line height (px)
_PLOTLY_LEGEND_CHARS = 32  # longer legend labels are wrapped


def _legend_name(label: str) -> str:
    """A legend label of :func:`rd_plotly`, wrapped (``<br>``) after about 32 characters, so that
    one long label does not widen every column of the legend."""
    return "<br>".join(textwrap.wrap(label, _PLOTLY_LEGEND_CHARS, subsequent_indent="  ")) or label


def plotly_layout(labels: Sequence[str], title: str | None, axis_label: str) -> dict[str, Any]:
    """The layout of :func:`rd_plotly` for legend entries ``labels`` (``<br>`` between lines): a
    plot :data:`PLOTLY_PLOT_HEIGHT` pixels tall, tight margins, and the legend in rows below the
    x-axis title, as wide as the figure, so that it never needs a scrollbar of its own (plotly
    scrolls a legend taller than the plot beside it). The figure's height is the plot's plus the
    margins and the legend's rows, estimated for a :data:`PLOTLY_WIDTH`-pixel output: plotly lays
    a legend of several rows out in columns as wide as its widest entry (a character about 0.6 em,
    the symbol and gaps 48 px), each row as tall as its tallest entry."""
    top = 44 if title else 12
    lines = [label.split("<br>") for label in labels]
    entry = max((max(map(len, parts)) * 0.6 * _PLOTLY_FONT + 48 for parts in lines), default=0.0)
    columns = max(1, int((PLOTLY_WIDTH - 64) // entry)) if entry else 1
    legend = sum(max(len(parts) for parts in lines[i : i + columns]) * _PLOTLY_LINE + 4 for i in range(0, len(lines), columns))
    axis = 56  # tick labels and the x-axis title under the plot
    legend_y = -axis / PLOTLY_PLOT_HEIGHT  # paper coordinates: the legend's top just under the axis title
    return {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "y": 0.98, "yanchor": "top", "font": {"size": 15}} if title else None,
        "xaxis_title": "Rate (bpp)",
        "yaxis_title": axis_label,
        "template": "plotly_white",
        "hovermode": "closest",
        "height": PLOTLY_PLOT_HEIGHT + top + axis + legend + 16,
        "margin": {"l": 64, "r": 16, "t": top, "b": axis + legend + 16, "autoexpand": False},
        "legend": {
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "y": legend_y,
            "yanchor": "top",
            "font": {"size": _PLOTLY_FONT},
            "itemsizing": "constant",
        },
    }
