"""Rate-distortion figures and Bjøntegaard-delta (BD) tables from results files.

Every function takes curves as a results dict (see :mod:`gabic.results`), a path to a results
file, the name of a published curve (``"jpeg"``, ``"stf_mse"``, ...), or a sequence of these.

- :func:`rd_figure` draws an RD figure with matplotlib for papers, :func:`save_figure` writes
  it as PDF, SVG or PNG; :func:`rd_plotly` draws the same curves with plotly for exploring
  (hover shows each point's quality or lambda, bpp and quality value).
- :func:`method_style` gives each *method* one colour and marker, the same in every figure and
  session. Measured curves are solid, full-width lines with filled markers; published ones
  (``meta.kind == "published"``) thinner, lighter dashed lines with hollow markers, labelled
  "(published)"; digitised ones (``meta.digitized``), such as the GABIC paper figure, the same
  but dotted, labelled "(digitised from figure)". Names are shown as display names
  (:func:`display_name`: ``jpeg`` -> "JPEG", ``webp`` -> "WebP", ``gabic`` -> "GABIC"...) in
  figures, legends and BD tables alike.
- :func:`rd_figure` fits the x-range to the learned codecs by default (classical codecs such as
  BPG and VTM reach 4.7 bpp, where learned codecs stop near 1 bpp) and says so on the figure;
  ``xlim="full"`` shows every point. Curves without the metric drawn are listed on the figure.
- :func:`bd_table` gives BD-rate and BD-PSNR of each curve against an anchor as a DataFrame,
  :func:`bd_markdown` / :func:`bd_latex` format it; :func:`write_report` writes all of it.

Curves know their image set (:mod:`gabic.image_sets`): when curves of several sets are drawn
together, those not on the set of the majority get it in their label ("jpeg (4 sample
photos)" beside published Kodak curves), and a BD value between curves of different sets is
n/a with that reason unless ``across_image_sets=True`` asks for it.

A curve without the metric asked for is left out of a figure with a logged warning and a note on
the figure; when no curve has it, :class:`~gabic.errors.ResultsError` names each curve and the
metrics it has. In a BD table such a curve gets NaN and a note, as does one whose quality does not
rise strictly with its bpp (BD assumes it does): the note names the curve and the first step
where it falls or stays (:func:`gabic.metrics.bd_rate`).

Every figure carries the numbers it plots (:mod:`gabic.figure_data`); :func:`save_figure` writes
them beside it as CSV.

pandas and plotly (the ``plots`` extra, like matplotlib) are imported by the functions that need
them, so a figure can be drawn without them.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import numbers
import os
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gabic.errors import ResultsError
from gabic.figure_data import attach_data, write_figure_data
from gabic.files import FIGURE_FORMATS, write_atomic
from gabic.image_sets import describe, image_set_of, same_image_set
from gabic.metrics import BD_METHODS, bd_psnr, bd_rate
from gabic.names import DISPLAY_NAMES, display_name
from gabic.results import has_metric, load, points, validate

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = [
    "CLASSICAL_METHODS",
    "COLUMN_WIDTHS",
    "Curve",
    "DISPLAY_NAMES",
    "METHOD_STYLES",
    "METRIC_LABELS",
    "PALETTE",
    "bd_latex",
    "bd_markdown",
    "bd_table",
    "data_column",
    "display_name",
    "figure_width",
    "find_anchor",
    "load_curves",
    "method_style",
    "rd_figure",
    "rd_plotly",
    "save_figure",
    "write_report",
]

log = logging.getLogger(__name__)

#: One curve or many: results dicts, paths to results files, names of published curves.
Curves = dict[str, Any] | str | os.PathLike | Sequence[dict[str, Any] | str | os.PathLike]

#: Figure widths in inches: one column and the full page width of a two-column IEEE paper
#: (IEEE Author Center, graphics guidelines: 3.5 in / 88.9 mm and 7.16 in / 181.9 mm).
COLUMN_WIDTHS: dict[str, float] = {"single": 3.5, "double": 7.16}
#: Height / width of every figure.
HEIGHT_RATIO = 0.75
#: Type size in points: that of IEEEtran's figure captions (\\footnotesize in a 10 pt paper).
FONT_SIZE = 8.0
LEGEND_FONT_SIZE = 7.0
_LEGEND_LINE_IN = LEGEND_FONT_SIZE * 1.4 / 72  # height of one legend entry, inches
LINE_WIDTH = 1.2
#: Line width and opacity of published and digitised curves: thinner and lighter than measured ones.
REFERENCE_LINE_WIDTH = 0.8
REFERENCE_ALPHA = 0.75
MARKER_SIZE = 4.0
NOTE_FONT_SIZE = 6.0
#: Margin around the fitted axis ranges, as a fraction of the data's span.
AXIS_MARGIN = 0.05

#: Axis label and BD column of each metric (``ms-ssim-db-rgb`` is ``-10 log10(1 - MS-SSIM)``).
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "psnr-rgb": ("PSNR (dB)", "BD-PSNR (dB)"),
    "ms-ssim-rgb": ("MS-SSIM", "BD-MS-SSIM"),
    "ms-ssim-db-rgb": ("MS-SSIM (dB)", "BD-MS-SSIM (dB)"),
}

#: Colour-blind-friendly colours: Okabe & Ito, "Color Universal Design" (2008), without its
#: yellow (too pale on white), then Paul Tol's "muted" scheme (SRON/EPS/TN/09-002), without its
#: pale cyan, sand and grey.
PALETTE: tuple[str, ...] = (
    *("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7"),
    *("#332288", "#117733", "#44AA99", "#999933", "#CC6677", "#882255", "#AA4499"),
)
#: Markers that can be drawn hollow (digitised curves), in the order unknown methods draw from.
MARKERS: tuple[str, ...] = ("o", "s", "^", "v", "D", "p", "h", "<", ">", "P", "X", "*", "8", "d")

#: Known methods: (key, pattern matched at the start of the normalised curve name, colour, marker).
#: The name is lower-cased, a leading "compressai " dropped and cut at the first "(" or ",", so
#: "STF (mse)" and a measured "stf" share STF's style, and "Zou2022 (WACNN as plotted by GABIC)"
#: gets WACNN's. Order matters: the first match wins. Every (colour, marker) pair is distinct.
METHOD_STYLES: tuple[tuple[str, str, str, str], ...] = (
    ("gabic", r"gabic\b", "#D55E00", "o"),
    ("wacnn", r"(wacnn|zou2022|cnn)\b", "#0072B2", "s"),
    ("stf", r"stf\b", "#009E73", "^"),
    ("jpeg2000", r"(jpeg[ _-]?2000|j2k|jp2|openjpeg)\b", "#999933", "<"),
    ("jpegxl", r"(jpeg[ _-]?xl|jxl)\b", "#882255", ">"),
    ("jpeg", r"jpeg\b", "#000000", "v"),
    ("webp", r"webp\b", "#CC79A7", "D"),
    ("avif", r"avif\b", "#332288", "h"),
    ("heif", r"(heif|heic|hevc)\b", "#AA4499", "p"),
    ("bpg", r"bpg\b", "#E69F00", "s"),
    ("vtm", r"(vtm|vvc)\b", "#56B4E9", "X"),
    ("hm", r"hm\b", "#44AA99", "P"),
    ("av1", r"(av1|aom)\b", "#117733", "8"),
    ("bmshj2018-factorized", r"bmshj2018[ _-]factorized\b", "#CC6677", "v"),
    ("bmshj2018-hyperprior", r"bmshj2018[ _-]hyperprior\b", "#332288", "o"),
    ("mbt2018-mean", r"mbt2018[ _-]mean\b", "#882255", "^"),
    ("mbt2018", r"mbt2018\b", "#117733", "s"),
    ("cheng2020-anchor", r"cheng2020[ _-]anchor\b", "#999933", "D"),
    ("cheng2020-attn", r"cheng2020[ _-]attn\b", "#44AA99", "h"),
    ("elic", r"elic(2022)?\b", "#AA4499", "*"),
)


#: Methods (keys of :data:`METHOD_STYLES`) that are classical, hand-designed codecs; every other
#: method, known or not, counts as a learned codec (the curves a user adds are mostly their own
#: models). :func:`rd_figure` fits its default x-range to the learned ones.
CLASSICAL_METHODS: frozenset[str] = frozenset({"jpeg", "jpeg2000", "jpegxl", "webp", "avif", "heif", "bpg", "vtm", "hm", "av1"})

#: (colour, marker) pairs for unknown methods: every pair a known method does not use.
_KNOWN_PAIRS = {(color, marker) for _, _, color, marker in METHOD_STYLES}
_FREE_STYLES = [(color, marker) for marker in MARKERS for color in PALETTE if (color, marker) not in _KNOWN_PAIRS]
_LINESTYLES = {"measured": "-", "published": "--", "digitized": ":"}
_PLOTLY_DASH = {"-": "solid", "--": "dash", ":": "dot"}
_PLOTLY_SYMBOL = {  # plotly's names of the markers
    **{"o": "circle", "s": "square", "^": "triangle-up", "v": "triangle-down", "<": "triangle-left", ">": "triangle-right"},
    **{"D": "diamond", "d": "diamond-tall", "p": "pentagon", "h": "hexagon", "8": "octagon", "P": "cross", "X": "x", "*": "star"},
}
_FORMATS = FIGURE_FORMATS
_NA = "n/a"


def _method_key(name: str) -> str:
    key = name.strip().lower()
    key = re.sub(r"^compressai\s+", "", key)
    return re.split(r"[(,]", key, maxsplit=1)[0].strip() or key


def method_style(name_or_result: str | dict[str, Any]) -> dict[str, Any]:
    """The drawing style of a curve: one fixed colour and marker per method.

    Known methods (:data:`METHOD_STYLES`) are matched on the curve's name, case-insensitively;
    any other name gets a colour from :data:`PALETTE` and a marker from :data:`MARKERS`, a pair
    that no known method uses, chosen by a SHA-256 of the normalised name, so the choice is the
    same in every session (Python's own ``hash()`` is salted per process). Two unknown methods
    may share a style.

    Measured and published curves of one method share colour and marker and differ in three
    more ways, so they are told apart in print and in grey: measured curves have filled markers
    and solid lines :data:`LINE_WIDTH` wide; published and digitised ones hollow (white-filled)
    markers and thinner (:data:`REFERENCE_LINE_WIDTH`), lighter (:data:`REFERENCE_ALPHA`) lines,
    dashed (published) or dotted (digitised); and their labels say so.

    Args:
        name_or_result: a curve's name (``"STF (mse)"``; drawn as measured), or a results dict,
            whose ``name`` is matched and whose ``meta`` sets the kind: measured, published
            (``meta.kind == "published"``) or digitised (``meta.digitized``).

    Returns:
        ``{"method", "color", "marker", "linestyle", "linewidth", "alpha", "markerfacecolor",
        "kind", "learned", "label"}``; ``kind`` is ``"measured"``, ``"published"`` or
        ``"digitized"``; ``learned`` is False for the classical codecs of
        :data:`CLASSICAL_METHODS`; ``label`` is the :func:`display_name` of the name with
        " (published)" or " (digitised from figure)" added.
    """
    if isinstance(name_or_result, dict):
        meta = name_or_result.get("meta") if isinstance(name_or_result.get("meta"), dict) else {}
        name = name_or_result.get("name") or meta.get("codec") or "results"
        kind = "digitized" if meta.get("digitized") is True else "published" if meta.get("kind") == "published" else "measured"
    else:
        name, kind = str(name_or_result), "measured"
    key = _method_key(name)
    known = next((entry for entry in METHOD_STYLES if re.match(entry[1], key)), None)
    if known is not None:
        method, _, color, marker = known
    else:
        digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
        method, (color, marker) = key, _FREE_STYLES[digest % len(_FREE_STYLES)]
    shown = display_name(name)
    if kind == "digitized":
        # the published GABIC names already say "digitised from the ... figure": say it once
        label = re.sub(r",?\s*digiti[sz]ed from .*$", "", shown, flags=re.IGNORECASE).strip() + " (digitised from figure)"
    elif kind == "published" and not shown.endswith("(published)"):
        label = f"{shown} (published)"
    else:
        label = shown
    measured = kind == "measured"
    return {
        "method": method,
        "color": color,
        "marker": marker,
        "linestyle": _LINESTYLES[kind],
        "linewidth": LINE_WIDTH if measured else REFERENCE_LINE_WIDTH,
        "alpha": 1.0 if measured else REFERENCE_ALPHA,
        "markerfacecolor": color if measured else "white",
        "kind": kind,
        "learned": method not in CLASSICAL_METHODS,
        "label": label,
    }


@dataclass(eq=False)  # compared by identity
class Curve:
    """One loaded curve: its result dict, its unique label, what the caller passed for it, its
    style and the image set it was measured on (None when its file does not say)."""

    result: dict[str, Any]
    label: str  # unique within one call
    given: str  # what the caller passed: a published name, a path, or the result's name
    style: dict[str, Any]
    image_set: dict[str, Any] | None = None


def _set_key(image_set: dict[str, Any] | None) -> str | None:
    if image_set is None:
        return None
    return image_set.get("fingerprint") or f"{str(image_set.get('name')).lower()}|{image_set.get('num_images')}"


def _majority(keys: Sequence[str | None]) -> str | None:
    """The image-set key most curves have (the first such curve's on a tie; unknown sets not counted)."""
    known = [k for k in keys if k is not None]
    return max(known, key=known.count) if known else None


def load_curves(results: Curves) -> list[Curve]:
    """Load and validate curves (results dicts, paths, published names) into :class:`Curve` objects.

    Labels are the :func:`method_style` labels; a curve measured on another image set than most
    of the curves gets that set in its label (``"jpeg (4 sample photos)"``); labels are made
    unique with " [2]", " [3]" ... Figures, tables and widgets share these labels."""
    items = [results] if isinstance(results, (dict, str, os.PathLike)) else list(results)
    if not items:
        raise ValueError("no curves given: expected results dicts, paths to results files or published names")
    if all(isinstance(item, Curve) for item in items):  # already loaded (write_report passes its curves on)
        return list(items)
    loaded: list[tuple[dict[str, Any], str]] = []
    for i, item in enumerate(items):
        if isinstance(item, Curve):
            loaded.append((item.result, item.given))
        elif isinstance(item, (str, os.PathLike)):
            loaded.append((load(item), os.fspath(item)))
        else:
            source = item.get("name", f"results[{i}]") if isinstance(item, dict) else f"results[{i}]"
            validate(item, source=str(source))
            loaded.append((item, str(item.get("name", f"results[{i}]"))))
    sets = [image_set_of(result) for result, _ in loaded]
    keys = [_set_key(s) for s in sets]
    majority = _majority(keys)
    curves, seen = [], {}
    for (result, given), image_set, key in zip(loaded, sets, keys, strict=True):
        style = method_style(result)
        label = style["label"]
        if key is not None and key != majority:
            label = f"{label} ({describe(image_set)})"
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} [{seen[label]}]"
        curves.append(Curve(result, label, given, {**style, "label": label}, image_set))
    return curves


def _with_metric(curves: list[Curve], metric: str) -> list[tuple[Curve, list[tuple[float, float]]]]:
    """The curves that have ``metric`` with their (bpp, value) pairs; the others are skipped with a warning.
    When none has it, ResultsError names each curve and the metrics it has."""
    have, missing = [], []
    for curve in curves:
        try:
            have.append((curve, points(curve.result, metric)))
        except ResultsError as err:
            missing.append(str(err))
    if not have:
        raise ResultsError(f"no curve has the metric {metric!r}: " + "; ".join(missing))
    for message in missing:
        log.warning("left out of the %s figure: %s", metric, message)
    return have


def figure_width(width: str | float) -> float:
    """A figure width in inches from ``"single"`` (3.5), ``"double"`` (7.16) or a positive number."""
    if isinstance(width, str):
        if width not in COLUMN_WIDTHS:
            raise ValueError(f"width must be 'single', 'double' or inches, got {width!r}")
        return COLUMN_WIDTHS[width]
    if isinstance(width, bool) or not isinstance(width, numbers.Real) or not math.isfinite(width) or width <= 0:
        raise ValueError(f"width must be 'single', 'double' or a positive number of inches, got {width!r}")
    return float(width)


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


def _stored_points(result: dict[str, Any], metric: str) -> list[tuple[int, float, float]]:
    """``(stored index, bpp, value)`` per point, sorted like :func:`gabic.results.points` (by bpp,
    then value), so each point keeps its index into the file's lists (and its ``meta`` settings)."""
    res = result["results"]
    n = len(res["bpp"])
    # points() over the point indices: the metric's values in stored order (with its dB conversion)
    values = [v for _, v in points({**result, "results": {**res, "bpp": list(range(n))}}, metric)]
    return sorted(((i, res["bpp"][i], values[i]) for i in range(n)), key=lambda t: (t[1], t[2]))


def _settings(result: dict[str, Any]) -> dict[str, list[Any]]:
    """The per-point settings in ``meta`` (``{"lambda": [...]}``, ``{"quality": [...]}``), stored order."""
    meta = result.get("meta") or {}
    n = len(result["results"]["bpp"])
    return {k: meta[k] for k in ("lambda", "quality") if isinstance(meta.get(k), list) and len(meta[k]) == n}


def data_column(metric: str) -> str:
    """The column name of ``metric``'s values in the data written beside a figure, with its unit:
    ``"psnr_db"``, ``"ms_ssim"`` (linear), ``"ms_ssim_db"``; other metrics as a slug of their key."""
    return _DATA_COLUMNS.get(metric) or re.sub(r"[^a-z0-9]+", "_", metric.lower()).strip("_")


_DATA_COLUMNS = {"psnr-rgb": "psnr_db", "ms-ssim-rgb": "ms_ssim", "ms-ssim-db-rgb": "ms_ssim_db"}


def _rd_table(drawn: list[tuple[Curve, list[tuple[float, float]]]], metric: str) -> dict[str, list[Any]]:
    """The long table of an RD figure: one row per drawn point (see :func:`rd_figure`)."""
    value = data_column(metric)
    settings = {c: _settings(c.result) for c, _ in drawn}
    keys = [k for k in ("lambda", "quality") if any(k in v for v in settings.values())]
    table: dict[str, list[Any]] = {k: [] for k in ("curve", "method", "kind", "point", "bpp", value, *keys)}
    for curve, _ in drawn:
        for i, bpp, v in _stored_points(curve.result, metric):
            row = {
                "curve": curve.label,
                "method": curve.style["method"],
                "kind": curve.style["kind"],
                "point": i,
                "bpp": bpp,
                value: v,
            }
            row |= {k: settings[curve][k][i] if k in settings[curve] else None for k in keys}
            for column, cell in row.items():
                table[column].append(cell)
    return table


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
            lacking it while others have it are left out, with a note and a logged warning).
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
    attach_data(fig, _rd_table(drawn, metric), name="rd")
    return fig


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
                name=s["label"],
                line={"color": s["color"], "dash": _PLOTLY_DASH[s["linestyle"]], "width": 2 * s["linewidth"] / LINE_WIDTH},
                opacity=s["alpha"],
                marker={"symbol": symbol, "color": s["color"], "size": 8, "line": {"color": s["color"], "width": 1.5}},
                text=hover,
                hovertemplate="%{text}<extra></extra>",
            )
        )
    title = _auto_title([c for c, _ in drawn]) if title is None else title
    layout = {"xaxis_title": "Rate (bpp)", "yaxis_title": axis_label, "template": "plotly_white", "hovermode": "closest"}
    fig.update_layout(title=title or None, **layout)
    return fig


def find_anchor(curves: list[Curve], anchor: str | os.PathLike | dict[str, Any]) -> tuple[list[Curve], Curve]:
    """The anchor among ``curves`` (by identity, what was passed, label or name), or loaded and put first."""
    if isinstance(anchor, dict):
        for c in curves:
            if c.result is anchor or c.result == anchor:
                return curves, c
    elif isinstance(anchor, (str, os.PathLike)):
        wanted = os.fspath(anchor).strip().lower()
        for field in ("given", "label", "name"):
            for c in curves:
                value = c.result.get("name", "") if field == "name" else getattr(c, field)
                if str(value).strip().lower() == wanted:
                    return curves, c
    try:
        extra = load_curves([anchor])[0]
    except ResultsError as err:
        labels = ", ".join(repr(c.label) for c in curves)
        raise ResultsError(f"anchor {anchor!r} is none of the curves ({labels}), nor a results file: {err}") from None
    for c in curves:  # a published name or a path whose curve was given already loaded
        if c.result == extra.result:
            return curves, c
    labels = {c.label for c in curves}
    if extra.label in labels:
        extra.label = extra.style["label"] = f"{extra.label} [anchor]"
    return [extra, *curves], extra


def bd_table(
    results: Curves,
    anchor: str | os.PathLike | dict[str, Any],
    metric: str = "psnr-rgb",
    method: str = "cubic",
    across_image_sets: bool = False,
) -> pd.DataFrame:
    """BD-rate and BD-quality of each curve against ``anchor`` (:func:`gabic.metrics.bd_rate`,
    :func:`gabic.metrics.bd_psnr`), one row per curve.

    Args:
        results: one curve or a sequence (results dicts, paths, published names).
        anchor: one of the given curves, by what was passed for it (``"jpeg"``), its label or
            its name (case-insensitive), or the dict itself; otherwise a results dict, path or
            published name, which is loaded and put in the first row.
        metric: the quality metric (default ``"psnr-rgb"``); the BD-quality column is named after
            it (:data:`METRIC_LABELS`: "BD-PSNR (dB)", "BD-MS-SSIM", "BD-MS-SSIM (dB)").
        method: ``"cubic"`` (default, 4 points per curve at least) or ``"pchip"`` (2), see
            :func:`gabic.metrics.bd_rate`.
        across_image_sets: compute BD values between curves measured on different image sets
            too (noted as such); default False: n/a with the two sets as the reason.

    Returns:
        A DataFrame indexed by curve label, with columns "BD-rate (%)", the BD-quality column,
        "points" (RD points), "bpp range" and "note". The anchor's row holds 0 and the note
        "anchor"; a curve that cannot be compared (too few points, quality not rising strictly
        with bpp, no overlap, no such metric, another image set) holds NaN and the reason in
        "note", naming the curve by its label and the anchor as "the anchor <label>" (``"kodak-bad:
        PSNR falls from 30.10 dB to 29.80 dB as bpp rises from 0.40 to 0.60; BD needs PSNR to rise
        strictly with bpp"``). ``across_image_sets`` lifts only the image-set reason. ``df.attrs``
        holds anchor, metric and method.

    Raises:
        ResultsError: a curve is not in the results schema, or the anchor lacks ``metric``.
        ValueError: an unknown ``method``.
    """
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError("bd_table needs pandas: pip install pandas") from err
    if method not in BD_METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {sorted(BD_METHODS)}")
    curves, anchor_curve = find_anchor(load_curves(results), anchor)
    anchor_points = points(anchor_curve.result, metric)  # an anchor without the metric is an error
    ab, aq = zip(*anchor_points, strict=True)
    quality_label, quality_column = METRIC_LABELS.get(metric, (metric, f"BD-{metric}"))
    rows = []
    for c in curves:
        bpp = c.result["results"]["bpp"]
        row = {"BD-rate (%)": math.nan, quality_column: math.nan, "points": len(bpp), "bpp range": f"{min(bpp):.3f}–{max(bpp):.3f}"}
        same_set = same_image_set(c.image_set, anchor_curve.image_set)
        if c is anchor_curve:
            row.update({"BD-rate (%)": 0.0, quality_column: 0.0, "note": "anchor"})
        elif same_set is False and not across_image_sets:
            row["note"] = (
                f"n/a: measured on {describe(c.image_set)}, the anchor on {describe(anchor_curve.image_set)} "
                "(across_image_sets=True computes it anyway)"
            )
        else:
            try:
                tb, tq = zip(*points(c.result, metric), strict=True)
                # a curve that cannot be compared raises ValueError naming it as the table does: its note below
                named = {"method": method, "names": (f"the anchor {anchor_curve.label}", c.label), "quality": quality_label}
                rate, quality = bd_rate(ab, aq, tb, tq, **named), bd_psnr(ab, aq, tb, tq, **named)
                note = (
                    ""
                    if same_set is not False
                    else f"across image sets: {describe(c.image_set)} vs {describe(anchor_curve.image_set)}"
                )
                row.update({"BD-rate (%)": rate, quality_column: quality, "note": note})
            except (ResultsError, ValueError) as err:
                row["note"] = str(err)
                log.info("BD against %s: no values for %s: %s", anchor_curve.label, c.label, err)
        rows.append(row)
    df = pd.DataFrame(rows, index=pd.Index([c.label for c in curves], name="curve"))
    df.attrs.update({"anchor": anchor_curve.label, "metric": metric, "method": method})
    return df


def _formatted(df: pd.DataFrame, digits: int) -> pd.DataFrame:
    """A copy with the BD columns as signed text (``n/a`` for NaN) and the index as a column."""
    out = df.reset_index().astype(object)
    for column in df.columns:
        if str(column).startswith("BD-"):
            out[column] = [_NA if (v is None or v != v) else f"{0.0:.{digits}f}" if v == 0 else f"{v:+.{digits}f}" for v in df[column]]
    if "note" in out:
        out["note"] = ["" if n is None or n != n else n for n in out["note"]]
    return out


def bd_markdown(df: pd.DataFrame, digits: int = 2) -> str:
    """The BD table of :func:`bd_table` as a Markdown (GitHub) table: BD values signed with
    ``digits`` decimals (default 2), NaN shown as ``n/a``, numbers right-aligned."""
    table = _formatted(df, digits)
    rows = [[str(c) for c in table.columns]] + [[str(v).replace("|", "\\|") for v in row] for row in table.itertuples(index=False)]
    right = [str(c).startswith("BD-") or c == "points" for c in table.columns]
    widths = [max(len(row[i]) for row in rows) for i in range(len(right))]
    cells = [[v.rjust(w) if r else v.ljust(w) for v, w, r in zip(row, widths, right, strict=True)] for row in rows]
    rule = ["-" * (w - 1) + ":" if r else ":" + "-" * (w - 1) for w, r in zip(widths, right, strict=True)]
    return "\n".join("| " + " | ".join(row) + " |" for row in [cells[0], rule, *cells[1:]]) + "\n"


def bd_latex(df: pd.DataFrame, digits: int = 2) -> str:
    """The BD table of :func:`bd_table` as a LaTeX ``tabular`` (booktabs rules): numbers as in
    :func:`bd_markdown`, special characters escaped, ranges with ``--``. Needs ``jinja2``."""
    table = _formatted(df, digits)
    return table.to_latex(index=False, escape=True).replace("–", "--")


def write_report(
    results: Curves,
    out_dir: str | os.PathLike,
    anchor: str | os.PathLike | dict[str, Any] | None = None,
    metrics: Sequence[str] = ("psnr-rgb", "ms-ssim-db-rgb"),
    widths: Sequence[str | float] = ("single", "double"),
    formats: Sequence[str] = _FORMATS,
    method: str = "cubic",
    dpi: int = 300,
    across_image_sets: bool = False,
    xlim: tuple[float, float] | str | None = None,
) -> list[Path]:
    """Write RD figures and BD tables of ``results`` into ``out_dir`` (what ``gabic rd`` does).

    For each metric that at least one curve has (the others are skipped with a log line):
    ``rd_<metric>_<width>.<format>`` per width and format with the figure's data beside it as
    ``rd_<metric>_<width>.csv`` (:func:`rd_figure`), and ``bd_<metric>.md``, ``.tex`` and
    ``.csv`` (full precision). Curves lacking a metric are left out of its figures with a warning
    and a note on the figure (their BD rows say why). Bad widths, method or anchor fail before
    anything is written.

    Args:
        results: one curve or a sequence (results dicts, paths, published names).
        out_dir: the output folder, created when missing.
        anchor: the BD anchor, as for :func:`bd_table` (one not among ``results`` is drawn
            too); None (default): the first curve that has the metric. When the anchor lacks a
            metric, that metric gets figures but no BD table (warning).
        metrics: default ``("psnr-rgb", "ms-ssim-db-rgb")`` (the dB form puts linear and dB
            MS-SSIM files on one axis).
        widths: ``"single"``, ``"double"`` or inches (file tag ``<w>in``); default both columns.
        formats: figure formats, default ``("pdf", "svg", "png")``.
        method: BD interpolation, ``"cubic"`` (default) or ``"pchip"``.
        dpi: PNG resolution (default 300).
        across_image_sets: BD values between curves of different image sets too (see :func:`bd_table`).
        xlim: the figures' x-range, as for :func:`rd_figure`: None (default) fitted to the learned
            codecs, ``"full"`` every point, or ``(left, right)``.

    Returns:
        The paths written.
    """
    curves = load_curves(results)
    anchor_curve = None
    if anchor is not None:  # an unknown anchor fails before anything is written
        curves, anchor_curve = find_anchor(curves, anchor)
    for w in widths:
        figure_width(w)
    if isinstance(xlim, str) and xlim not in ("full", "learned"):
        raise ValueError(f"xlim must be None, 'learned', 'full' or (left, right), got {xlim!r}")
    if method not in BD_METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {sorted(BD_METHODS)}")
    out_dir = Path(out_dir)
    written: list[Path] = []
    for metric in metrics:
        have = [c for c in curves if has_metric(c.result, metric)]
        if not have:
            log.info("no curve has %s: no figure or BD table for it", metric)
            continue
        for c in curves:
            if c not in have:
                log.warning("%s has no %s: left out of its figures (n/a in its BD table)", c.label, metric)
        for w in widths:
            tag = w if isinstance(w, str) else f"{float(w):g}in"
            fig = rd_figure(curves, metric, width=w, xlim=xlim)  # those without the metric: a note on the figure
            written += save_figure(fig, out_dir / f"rd_{metric}_{tag}", formats, dpi=dpi)
        base = anchor_curve or have[0]
        if base not in have:
            log.warning("the anchor %s has no %s: no BD table for it", base.label, metric)
            continue
        df = bd_table(curves, base.result, metric=metric, method=method, across_image_sets=across_image_sets)
        for suffix, text in (("md", bd_markdown(df)), ("tex", bd_latex(df)), ("csv", df.to_csv())):
            written.append(write_atomic(out_dir / f"bd_{metric}.{suffix}", text.encode("utf-8")))
    return written
