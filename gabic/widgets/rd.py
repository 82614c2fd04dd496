"""ipywidgets explorers of rate-distortion results: RD curves with a BD table, and decoded images.

``rd_explorer(curves)`` shows an RD figure (:func:`gabic.plots.rd_figure`) of the curves ticked
in a list (every one shown, with "all" and "none" buttons), for a metric picked in a dropdown,
and the BD table (:func:`gabic.plots.bd_table`) of those curves against an anchor picked in
another dropdown (by default :func:`gabic.plots.default_anchor`: one measured on the same images
as the measured curves), its caption saying why rows are n/a; a checkbox widens the bpp axis
from the learned codecs to every point; a button exports the figure for a paper
(:func:`gabic.plots.save_figure`: PDF, SVG and PNG, one and two columns wide, with the plotted
points as CSV) and the BD table as Markdown. The figure is the exported one, drawn at
:data:`DISPLAY_DPI` and shown at its own size (7.16 in: 787 px wide, its smallest type 9 px).

``quality_explorer(image, codecs=..., checkpoints=...)`` codes one image with a classical codec
(:mod:`gabic.codecs`) at the quality picked on a slider, or with a learned-codec checkpoint
picked on the slider, and shows the decoded image beside the original, pixel for pixel (a crop
of at most :data:`PANEL_PX` pixels a side of each, never resampled: compression artefacts are
seen as they are), with its bpp and PSNR; ticked, "error map and crops" adds the square where
the codec errs most, zoomed by an integer factor, and its error map. Each (codec, quality) is
coded once, when first shown, and cached; checkpoints are loaded once. Names are short: the
codec's display name, the architecture without its configuration, the checkpoints' lambdas or
run folders (:func:`gabic.names.checkpoint_labels`); the slider is hidden where there is one
checkpoint.

Both show PNG bytes in ``ipywidgets.Image`` widgets at the PNG's own size
(:func:`gabic.widgets._base.show_png`; ``explorer.image.value``); their controls are
attributes, so they can be driven from code and tests.
"""

from __future__ import annotations

import html
import io
import logging
import math
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

try:
    import ipywidgets as widgets
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("gabic.widgets.rd needs ipywidgets: pip install 'gabic[notebooks]' (or ipywidgets)") from err

from gabic import plots
from gabic.checkpoints import CHECKPOINT_SUFFIXES, load_checkpoint
from gabic.codecs import get_codec, list_codecs
from gabic.errors import GabicError, ResultsError
from gabic.evaluate import find_checkpoints
from gabic.files import write_atomic
from gabic.images import ImageLike, as_rgb, center_crop
from gabic.measurement import Measurement, measure
from gabic.names import checkpoint_labels, display_name, short_name
from gabic.reconstructions import error_map, worst_crop
from gabic.results import has_metric
from gabic.widgets._base import MAX_WIDTH_PX, Redraws, figure_png, show_png

__all__ = ["QualityExplorer", "RDExplorer", "bd_html", "quality_explorer", "rd_explorer"]

log = logging.getLogger(__name__)

#: The metrics offered by the RD explorer, with their names in the dropdown.
METRIC_NAMES: dict[str, str] = {"psnr-rgb": "PSNR", "ms-ssim-rgb": "MS-SSIM", "ms-ssim-db-rgb": "MS-SSIM (dB)"}

#: The figure widths written by :meth:`RDExplorer.export` (:data:`gabic.plots.COLUMN_WIDTHS`).
EXPORT_WIDTHS = ("single", "double")
#: The figure formats written by :meth:`RDExplorer.export`.
EXPORT_FORMATS = ("pdf", "svg", "png")

#: Resolution of the RD explorer's figure on screen (shown at its own size): the smallest type of
#: :func:`gabic.plots.rd_figure`, its 7 pt notes and legend, is 10.7 px; the double-column figure 787 px wide.
DISPLAY_DPI = 110
#: The most curves the RD explorer's list shows without a scrollbar.
MAX_LIST_ROWS = 16
#: Figures the RD explorer keeps drawn (selection, metric, bpp range), so going back is instant.
FIGURE_CACHE = 16

#: Gap between the quality explorer's panels, pixels.
PANEL_GAP = 12
#: The largest side, in pixels, of the quality explorer's 1:1 panels: two of them and their gap
#: fit a notebook's output on a 1280x800 screen (:data:`gabic.widgets._base.MAX_WIDTH_PX`, 840 px).
PANEL_PX = (MAX_WIDTH_PX - PANEL_GAP) // 2
#: Side of the square where a codec errs most (:func:`gabic.reconstructions.worst_crop`) and its
#: integer zoom (nearest neighbour) in the quality explorer's details: three of them fit 840 px.
DETAIL_CROP, DETAIL_ZOOM = 88, 3
#: Colour of the outline of that square on the 1:1 panels (drawn outside it).
OUTLINE = (0, 255, 255)


# ---------------------------------------------------------------------------------------------
# RD curves


class RDExplorer(Redraws, widgets.VBox):
    """RD figure and BD table of a set of curves; its controls and outputs are attributes.

    Attributes:
        methods: SelectMultiple of the curve labels (:func:`gabic.plots.method_style` labels,
            made unique), one row per curve (up to :data:`MAX_LIST_ROWS`); the figure and the
            BD table show the selected ones.
        select_all, select_none: Buttons that select every curve, or none.
        metric: Dropdown of the metrics some curve has (value ``"psnr-rgb"``, ``"ms-ssim-rgb"``
            or ``"ms-ssim-db-rgb"``).
        anchor: Dropdown of the labels of the curves that have the metric: the BD anchor.
        bd_method: Dropdown, ``"cubic"`` or ``"pchip"`` (:func:`gabic.metrics.bd_rate`).
        full_range: Checkbox: every point on the bpp axis (``xlim="full"`` of
            :func:`gabic.plots.rd_figure`); unticked (default): the axis fits the learned codecs.
        image: ``ipywidgets.Image`` holding the PNG of the RD figure, at its own size (hidden
            when nothing is drawn).
        table: HTML of the BD table against the anchor, its caption saying why rows are n/a.
        export_stem: Text, the path without extension of the exported files.
        export_button: writes :meth:`export`.
        status: HTML line: curves left out, files written, errors.
        bd: the DataFrame of the last BD table (None when there is none).
    """

    def __init__(
        self,
        curves: plots.Curves,
        metric: str = "psnr-rgb",
        anchor: str | os.PathLike | dict[str, Any] | None = None,
        export_stem: str | os.PathLike = "rd",
        width: str | float = "double",
        dpi: int = DISPLAY_DPI,
        across_image_sets: bool = False,
    ):
        self.across_image_sets = across_image_sets
        loaded = plots.load_curves(curves)  # labels made unique, shared by the figure and the BD table
        if anchor is not None:
            loaded, anchor_curve = plots.find_anchor(loaded, anchor)
        else:
            anchor_curve = None
        self._curves = {c.label: c for c in loaded}
        plots.figure_width(width)
        self.width, self.dpi = width, dpi
        self.bd = None
        self._figures: OrderedDict[tuple, bytes] = OrderedDict()
        metrics = [m for m in METRIC_NAMES if any(has_metric(c.result, m) for c in loaded)]
        if metric not in metrics and any(has_metric(c.result, metric) for c in loaded):
            metrics.append(metric)  # another metric of the files, e.g. "psnr-y"
        if metric not in metrics:
            have = ", ".join(repr(m) for m in metrics) or "none of " + ", ".join(map(repr, METRIC_NAMES))
            raise ResultsError(f"rd_explorer: no curve has the metric {metric!r} (they have {have})")
        if anchor_curve is not None and not has_metric(anchor_curve.result, metric):
            raise ResultsError(f"rd_explorer: the anchor {anchor_curve.label!r} has no metric {metric!r}")

        style = {"description_width": "initial"}
        labels = list(self._curves)
        list_width = min(480, max(400, 80 + round(7.5 * max(map(len, labels))) + 24))  # the labels whole where they fit
        rows = min(len(labels), MAX_LIST_ROWS)
        self.methods = widgets.SelectMultiple(
            options=labels, value=labels, rows=rows, description="curves", layout={"width": f"{list_width}px"}
        )
        small = {"width": "64px", "min_width": "64px"}
        self.select_all = widgets.Button(description="all", tooltip="select every curve", layout=small)
        self.select_none = widgets.Button(description="none", tooltip="select no curve", layout=small)
        hint = widgets.HTML("<small>Ctrl/⌘-click: one more or one less</small>", layout={"margin": "0 0 0 8px"})
        wide = {"width": "320px"}  # beside the list in an 848 px output
        self.metric = widgets.Dropdown(
            options=[(METRIC_NAMES.get(m, m), m) for m in metrics], value=metric, description="metric", style=style, layout=wide
        )
        self.anchor = widgets.Dropdown(description="BD anchor", style=style, layout=wide)
        self.bd_method = widgets.Dropdown(options=["cubic", "pchip"], value="cubic", description="BD fit", style=style, layout=wide)
        self.full_range = widgets.Checkbox(value=False, description="full bpp range", indent=False, layout={"width": "auto"})
        self.image = widgets.Image(format="png")
        self.table = widgets.HTML()
        self.status = widgets.HTML()
        self.export_stem = widgets.Text(value=os.fspath(export_stem), description="export to", style=style, layout={"width": "420px"})
        self.export_button = widgets.Button(description="export", tooltip="PDF, SVG and PNG, single and double column; BD table")
        self._set_anchors(anchor_curve.label if anchor_curve is not None else None)
        wrap = {"flex_flow": "row wrap", "align_items": "flex-start"}
        super().__init__(
            [
                widgets.HBox(
                    [
                        widgets.VBox([self.methods, widgets.HBox([self.select_all, self.select_none, hint], layout=wrap)]),
                        widgets.VBox([self.metric, self.anchor, self.bd_method, self.full_range]),
                    ],
                    layout=wrap,
                ),
                self.image,
                self.table,
                widgets.HBox([self.export_stem, self.export_button], layout=wrap),
                self.status,
            ]
        )
        self.methods.observe(self._on_change, names="value")
        self.metric.observe(self._on_metric, names="value")
        self.anchor.observe(self._on_table, names="value")
        self.bd_method.observe(self._on_table, names="value")
        self.full_range.observe(self._on_change, names="value")
        self.select_all.on_click(lambda _: self._select(list(self._curves)))
        self.select_none.on_click(lambda _: self._select([]))
        self.export_button.on_click(self._on_export)
        self.render()

    # ------------------------------------------------------------------ selection
    def selected(self) -> list[Any]:
        """The selected curves, in the order they were given."""
        chosen = set(self.methods.value)
        return [c for label, c in self._curves.items() if label in chosen]

    def _select(self, labels: list[str]) -> None:
        self.methods.value = tuple(labels)  # one redraw, through the list's observer

    def _set_anchors(self, keep: str | None = None) -> None:
        """Offer the curves that have the metric as anchors; keep ``keep`` (or the current one) if it
        can be, else the default anchor (:func:`gabic.plots.default_anchor`) of those curves."""
        have = [c for c in self._curves.values() if has_metric(c.result, self.metric.value)]
        options = [c.label for c in have]
        keep = keep or self.anchor.value
        self.anchor.options = options
        self.anchor.value = keep if keep in options else (plots.default_anchor(have, self.metric.value).label if have else None)

    # ------------------------------------------------------------------ events
    def _on_metric(self, change) -> None:
        with self.quietly():
            self._set_anchors()
        self.redraw()

    def _on_table(self, change) -> None:
        """The anchor or the BD fit changed: the figure stays, the table is computed again."""
        if not self._quiet:
            self._render_table(self.selected(), self.metric.value)

    def _on_export(self, button) -> None:
        try:
            written = self.export()
        except (OSError, ValueError, GabicError) as err:
            log.error("export failed: %s", err)
            self.status.value = f"<span style='color:#b00'>export failed: {html.escape(str(err))}</span>"
            return
        names = ", ".join(html.escape(p.name) for p in written)
        self.status.value = f"wrote {len(written)} files to {html.escape(str(written[0].parent))}: {names}"

    # ------------------------------------------------------------------ drawing
    def render(self) -> None:
        """Redraw the RD figure into :attr:`image` and the BD table into :attr:`table`."""
        metric = self.metric.value
        name = METRIC_NAMES.get(metric, metric)
        selected = self.selected()
        drawn = [c for c in selected if has_metric(c.result, metric)]
        notes = []
        if not selected:
            notes.append("no curve selected")
        elif not drawn:
            notes.append(f"none of the selected curves has {name}")
        left_out = [c.label for c in selected if c not in drawn]
        if drawn and left_out:
            notes.append(f"left out (no {name}): " + ", ".join(left_out))
        show_png(self.image, self._figure_png(selected, metric) if drawn else b"")
        self._render_table(selected, metric)
        self.status.value = html.escape("; ".join(notes))

    def _figure_png(self, selected: list[Any], metric: str) -> bytes:
        """The PNG of the figure of ``selected`` (the curves without the metric noted on it), drawn
        once per selection, metric and bpp range (the last :data:`FIGURE_CACHE` kept)."""
        key = (tuple(c.label for c in selected), metric, self._xlim())
        if key in self._figures:
            self._figures.move_to_end(key)
        else:
            fig = plots.rd_figure(selected, metric, width=self.width, xlim=self._xlim())
            self._figures[key] = figure_png(fig, self.dpi)
            while len(self._figures) > FIGURE_CACHE:
                self._figures.popitem(last=False)
        return self._figures[key]

    def _xlim(self) -> str | None:
        """The ``xlim`` of :func:`gabic.plots.rd_figure` that :attr:`full_range` asks for."""
        return "full" if self.full_range.value else None

    def _render_table(self, selected: list[Any], metric: str) -> None:
        anchor = self._curves.get(self.anchor.value) if self.anchor.value is not None else None
        if anchor is None or not selected:
            self.bd = None
            self.table.value = "<i>no BD table: no curve selected</i>" if not selected else "<i>no BD table: no anchor</i>"
            return
        rows = selected if anchor in selected else [anchor, *selected]
        self.bd = plots.bd_table(
            rows, anchor.result, metric=metric, method=self.bd_method.value, across_image_sets=self.across_image_sets
        )
        self.table.value = bd_html(self.bd)

    def export(self, stem: str | os.PathLike | None = None) -> list[Path]:
        """Write the figure of the selected curves, as shown (metric, bpp range), as
        ``<stem>_<width>.<format>`` for the widths :data:`EXPORT_WIDTHS` and formats
        :data:`EXPORT_FORMATS` with its points as ``<stem>_<width>.csv`` (:func:`gabic.plots.save_figure`),
        and the BD table as ``<stem>_bd.md`` (:func:`gabic.plots.bd_markdown`).

        Args:
            stem: the path without extension; default None: :attr:`export_stem`'s value.

        Returns:
            The paths written.

        Raises:
            ValueError: no stem, or no curve selected with the metric.
        """
        stem = os.fspath(stem if stem is not None else self.export_stem.value).strip()
        if not stem:
            raise ValueError("export: no file stem given (the path without extension, e.g. 'figures/rd')")
        metric = self.metric.value
        selected = self.selected()
        if not any(has_metric(c.result, metric) for c in selected):
            raise ValueError(f"export: no selected curve has the metric {metric!r}")
        written: list[Path] = []
        for width in EXPORT_WIDTHS:
            fig = plots.rd_figure(selected, metric, width=width, xlim=self._xlim())
            written += plots.save_figure(fig, f"{stem}_{width}", EXPORT_FORMATS)
        if self.bd is not None:
            written.append(write_atomic(Path(f"{stem}_bd.md"), plots.bd_markdown(self.bd).encode("utf-8")))
        log.info("exported %d files to %s*", len(written), stem)
        return written


def bd_html(df, digits: int = 2) -> str:
    """A BD table of :func:`gabic.plots.bd_table` as an HTML table: its caption
    (:func:`gabic.plots.bd_caption`: the anchor, metric and fit, and why rows are n/a), BD values
    signed with ``digits`` decimals (default 2), NaN as ``n/a``."""
    formatters = {
        column: (lambda v: "n/a" if v != v else f"{0.0:.{digits}f}" if v == 0 else f"{v:+.{digits}f}")
        for column in df.columns
        if str(column).startswith("BD-")
    }
    body = df.rename_axis(None).to_html(formatters=formatters, na_rep="", border=0, escape=True)
    title, na, why = plots.bd_caption(df).partition(" n/a: ")
    return f"<p><b>{html.escape(title)}</b>{html.escape(na + why)}</p>" + body


def rd_explorer(
    curves: plots.Curves,
    metric: str = "psnr-rgb",
    anchor: str | os.PathLike | dict[str, Any] | None = None,
    export_stem: str | os.PathLike = "rd",
    width: str | float = "double",
    dpi: int = DISPLAY_DPI,
    across_image_sets: bool = False,
) -> RDExplorer:
    """An :class:`RDExplorer` of ``curves``. Display it in a notebook as the cell's value.

    Args:
        curves: one curve or a sequence: results dicts, paths to results files, published names.
        metric: the metric shown first (default ``"psnr-rgb"``); some curve must have it.
        anchor: the BD anchor shown first, as for :func:`gabic.plots.bd_table` (one not among
            ``curves`` is added to them); default None: :func:`gabic.plots.default_anchor` (a
            curve measured on the same images as the measured curves, a classical codec first).
        export_stem: the initial value of the export box (the path without extension, default ``"rd"``).
        width: width of the displayed figure: ``"single"``, ``"double"`` (default) or inches.
        dpi: resolution of the displayed figure (default :data:`DISPLAY_DPI`, 110: the 7 pt notes
            10.7 px tall); lowered where the figure would be wider than 840 px. Shown at its own size.
        across_image_sets: BD values between curves measured on different image sets too
            (default False: n/a with the reason, see :func:`gabic.plots.bd_table`).

    Raises:
        ValueError: no curves, or a bad ``width``.
        ResultsError: a curve not in the results schema, an unknown anchor, or no curve with ``metric``.
    """
    return RDExplorer(
        curves, metric=metric, anchor=anchor, export_stem=export_stem, width=width, dpi=dpi, across_image_sets=across_image_sets
    )


# ---------------------------------------------------------------------------------------------
# decoded images


@dataclass
class _Entry:
    """One choice of the codec dropdown: a classical codec and its qualities, or a group of checkpoints."""

    key: str  # the dropdown's value: the codec's name or the checkpoint group's name
    kind: str  # "codec" or "checkpoint"
    settings: list[tuple[str, Any]] = field(default_factory=list)  # slider (label, value): quality, or checkpoint path
    codec: Any = None  # a gabic.codecs.Codec
    label: str = ""  # the dropdown's label: short (display name; the architecture without its configuration)


def _codec_entries(codecs: Any) -> list[_Entry]:
    """Entries of classical codecs: None (every available codec), names, results dicts of
    :func:`gabic.evaluate.evaluate_codec`, or a mapping name -> qualities (None: the defaults)."""
    if codecs is None:
        items = [(c.name, None) for c in list_codecs() if c.available]
        skipped = [c.name for c in list_codecs() if not c.available]
        if skipped:
            log.info("codecs not available here, left out: %s", ", ".join(skipped))
    elif isinstance(codecs, Mapping):
        items = list(codecs.items())
    elif isinstance(codecs, str):
        items = [(codecs, None)]
    else:
        items = []
        for item in codecs:
            if isinstance(item, dict):  # a measured curve: its codec and qualities (sorted by bpp)
                meta = item.get("meta") or {}
                if not isinstance(meta.get("codec"), str) or not isinstance(meta.get("quality"), list):
                    what = repr(item.get("name", "a result"))
                    raise ValueError(f"codecs: {what} has no meta.codec and meta.quality (not a result of evaluate_codec)")
                items.append((meta["codec"], meta["quality"]))
            else:
                items.append((item, None))
    entries = []
    for name, qualities in items:
        codec = get_codec(name)  # CodecError naming an unknown codec and the known ones
        codec.require()  # CodecError with the reason it is unavailable
        qs = list(codec.default_qualities) if qualities is None else [codec.check_quality(q) for q in qualities]
        if not qs:
            raise ValueError(f"codecs: no qualities given for {codec.name!r}")
        entries.append(_Entry(codec.name, "codec", [(str(q), q) for q in qs], codec, label=display_name(codec.name)))
    return entries


def _checkpoint_settings(paths: Sequence[Path], lambdas: Sequence[Any] | None = None) -> list[tuple[str, Any]]:
    """Slider (label, path) pairs, labels saying what differs (:func:`gabic.names.checkpoint_labels`:
    the lambdas, else the run folders or file names)."""
    return list(zip(checkpoint_labels(paths, lambdas, CHECKPOINT_SUFFIXES), paths, strict=True))


def _checkpoint_entries(checkpoints: Any) -> list[_Entry]:
    """Entries of checkpoints: paths (files or folders; one group "checkpoints"), results dicts
    of :func:`gabic.evaluate.evaluate_checkpoints` (one group per curve) or a mapping label -> paths."""
    if checkpoints is None:
        return []
    if isinstance(checkpoints, (str, os.PathLike)):
        checkpoints = [checkpoints]
    groups: list[tuple[str, list[Any], list[Any] | None]] = []
    if isinstance(checkpoints, Mapping):
        groups = [(str(k), [v] if isinstance(v, (str, os.PathLike)) else list(v), None) for k, v in checkpoints.items()]
    else:
        loose = []
        for item in checkpoints:
            if isinstance(item, dict):  # a curve from evaluate_checkpoints: its checkpoints, sorted by bpp
                meta = item.get("meta") or {}
                files = meta.get("checkpoint")
                if not isinstance(files, list) or not files:
                    what = repr(item.get("name", "a result"))
                    raise ValueError(f"checkpoints: {what} has no meta.checkpoint (not a result of evaluate_checkpoints)")
                lambdas = meta.get("lambda") if isinstance(meta.get("lambda"), list) and len(meta["lambda"]) == len(files) else None
                groups.append((str(item.get("name", "checkpoints")), files, lambdas))
            else:
                loose.append(item)
        if loose:
            groups.insert(0, ("checkpoints", loose, None))
    entries = []
    for name, files, lambdas in groups:
        paths = find_checkpoints(files)  # CheckpointError naming a missing file or an empty folder
        if lambdas is not None and len(paths) != len(lambdas):
            lambdas = None  # a folder among the files: no telling which lambda is whose
        entries.append(_Entry(name, "checkpoint", _checkpoint_settings(paths, lambdas), label=short_name(name)))
    return entries


def _unique_labels(entries: list[_Entry]) -> None:
    """Entries whose short labels are the same (two configurations of one architecture) get their full display names."""
    labels = [e.label or e.key for e in entries]
    for e, label in zip(entries, labels, strict=True):
        e.label = display_name(e.key) if labels.count(label) > 1 else label


def _rgb_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of ``(H, W, 3)`` uint8 pixels (fast zlib level: these are shown, not kept)."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="png", compress_level=1)
    return buf.getvalue()


def _side_by_side(panels: list[np.ndarray], gap: int = PANEL_GAP) -> np.ndarray:
    """RGB panels of one height side by side, ``gap`` white pixels apart."""
    height = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for p in panels:
        out[: p.shape[0], x : x + p.shape[1]] = p
        x += p.shape[1] + gap
    return out


def _outline(pixels: np.ndarray, box: tuple[int, int, int, int], color: tuple[int, int, int] = OUTLINE) -> np.ndarray:
    """A copy of ``pixels`` with a 1-pixel frame drawn just outside ``box`` (left, top, right, bottom)."""
    out = pixels.copy()
    h, w = out.shape[:2]
    left, top, right, bottom = box
    x0, x1, y0, y1 = max(left - 1, 0), min(right, w - 1), max(top - 1, 0), min(bottom, h - 1)
    out[y0, x0 : x1 + 1] = out[y1, x0 : x1 + 1] = color
    out[y0 : y1 + 1, x0] = out[y0 : y1 + 1, x1] = color
    return out


def _titles(texts: list[tuple[str, int]], gap: int = PANEL_GAP) -> str:
    """HTML: one title per panel, each as wide as its panel (``(text, width)``), wrapped within it, never cut."""
    style = "white-space:normal;overflow-wrap:anywhere;line-height:1.3"
    cells = "".join(f"<div style='width:{width}px;flex:0 0 {width}px;{style}'>{html.escape(text)}</div>" for text, width in texts)
    return f"<div style='display:flex;gap:{gap}px;align-items:flex-end'>{cells}</div>"


class QualityExplorer(Redraws, widgets.VBox):
    """One image decoded by a codec or checkpoint, beside the original, pixel for pixel; controls and
    outputs are attributes.

    The panels show the same crop of the original and of the decoded image (the whole image
    where it is at most :data:`PANEL_PX` pixels a side; the measurement is always of the whole
    image) at 1:1: each PNG pixel one pixel on screen, never resampled.

    Attributes:
        codec: Dropdown of the classical codecs (value: the codec's name; label its display name)
            and checkpoint groups (value: the group's name; label the architecture without its
            configuration, :func:`gabic.names.short_name`).
        quality: SelectionSlider of the codec's qualities, or of the group's checkpoints (value:
            the quality, or the checkpoint's path; labels :func:`gabic.names.checkpoint_labels`);
            hidden where there is one.
        details: Checkbox: add the square where the decoded image errs most
            (:func:`gabic.reconstructions.worst_crop`, :data:`DETAIL_CROP` pixels), outlined on the
            panels, zoomed :data:`DETAIL_ZOOM` times (nearest neighbour): original, decoded and
            squared error.
        titles: HTML above the panels: what each shows (the decoded one: codec, setting, bpp, PSNR).
        image: ``ipywidgets.Image`` of the panels (original | decoded), at its own size.
        detail_titles, detail_image: the same for the details (hidden unless ticked).
        info: HTML line with the codec, setting, bytes, bpp and PSNR.
        box: the crop the panels show, ``(left, top, right, bottom)`` in pixels of :attr:`original`.
        current: the :class:`~gabic.measurement.Measurement` shown (see :meth:`code`).
        coded: the cache, ``{(codec or group, quality or path): measurement}``.
        original: the RGB image coded.
    """

    def __init__(self, image: Image.Image, entries: list[_Entry], device: str = "auto", panel: int = PANEL_PX, trust: bool = False):
        if not entries:
            raise ValueError("quality_explorer: no codecs or checkpoints to show")
        keys = [e.key for e in entries]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"quality_explorer: two entries named {', '.join(map(repr, duplicates))} (codecs and checkpoint groups)")
        if not isinstance(panel, int) or isinstance(panel, bool) or panel < 16:
            raise ValueError(f"panel must be a number of pixels >= 16, got {panel!r}")
        _unique_labels(entries)
        self.original, self.device, self.trust = image, device, trust
        self._pixels = np.asarray(image)
        W, H = image.size
        w, h = min(W, panel), min(H, panel)
        self.box = ((W - w) // 2, (H - h) // 2, (W - w) // 2 + w, (H - h) // 2 + h)
        self._entries = {e.key: e for e in entries}
        self._models: dict[Path, Any] = {}
        self.coded: dict[tuple[str, Any], Measurement] = {}
        self.current: Measurement | None = None
        first = entries[0]
        style = {"description_width": "initial"}
        longest = max(len(e.label) for e in entries)
        self.codec = widgets.Dropdown(
            options=[(e.label, e.key) for e in entries], value=first.key, description="codec", style=style,
            layout={"width": f"{min(420, max(220, 64 + 8 * longest + 40))}px", "min_width": "220px"},
        )  # fmt: skip
        self.quality = widgets.SelectionSlider(
            options=first.settings, value=first.settings[0][1], description="quality", continuous_update=False, style=style,
            layout={"width": "400px", "min_width": "300px"},
        )  # fmt: skip
        room = {"width": "auto", "min_width": "180px", "margin": "0 0 0 12px"}  # never under the slider's readout
        self.details = widgets.Checkbox(value=False, description="error map and crops", indent=False, layout=room)
        self.titles = widgets.HTML()
        self.image = widgets.Image(format="png")
        self.detail_titles = widgets.HTML(layout={"display": "none", "margin": "8px 0 0 0"})
        self.detail_image = widgets.Image(format="png", layout={"display": "none"})
        self.info = widgets.HTML()
        controls = widgets.HBox([self.codec, self.quality, self.details], layout={"flex_flow": "row wrap", "align_items": "center"})
        super().__init__([controls, self.info, self.titles, self.image, self.detail_titles, self.detail_image])
        self._configure(first)
        self.codec.observe(self._on_codec, names="value")
        self.quality.observe(self._on_change, names="value")
        self.details.observe(self._on_change, names="value")
        self.render()

    # ------------------------------------------------------------------ coding
    def _model(self, path: Path):
        if path not in self._models:
            log.info("loading %s", path)
            self._models[path] = load_checkpoint(path, device=self.device, trust=self.trust)
        return self._models[path]

    def code(self, key: str, setting: Any) -> Measurement:
        """Code :attr:`original` with entry ``key`` at ``setting`` (a quality, or a checkpoint path)
        through :func:`gabic.measurement.measure`; cached in :attr:`coded`.

        Returns the :class:`~gabic.measurement.Measurement`: for checkpoints ``bpp`` counts the y
        and z strings (as the RD curves of :func:`gabic.evaluate.evaluate_checkpoints`) and
        ``bpp_file`` the whole .gabic file.
        """
        if (key, setting) not in self.coded:
            entry = self._entries[key]
            if entry.kind == "codec":
                self.coded[key, setting] = measure(entry.codec, self.original, setting)
            else:
                self.coded[key, setting] = measure(self._model(Path(setting)), self.original)
        return self.coded[key, setting]

    # ------------------------------------------------------------------ events
    def _configure(self, entry: _Entry) -> None:
        self.quality.options = entry.settings
        self.quality.value = entry.settings[0][1]
        self.quality.description = "quality" if entry.kind == "codec" else "checkpoint"
        self.quality.disabled = len(entry.settings) == 1
        self.quality.layout.display = "none" if len(entry.settings) == 1 else None  # one checkpoint: nothing to slide

    def _on_codec(self, change) -> None:
        with self.quietly():
            self._configure(self._entries[change["new"]])
        self.redraw()

    def redraw(self) -> None:
        """Render; a coding failure is shown in the info line instead of raised."""
        try:
            self.render()
        except (GabicError, OSError, ValueError) as err:
            log.error("%s: %s", self.codec.value, err)
            self.info.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"

    # ------------------------------------------------------------------ drawing
    def _setting_label(self) -> str:
        entry = self._entries[self.codec.value]
        label = next(name for name, value in entry.settings if value == self.quality.value)
        return f"{entry.label}, quality {label}" if entry.kind == "codec" else f"{entry.label} · {label}"

    def render(self) -> None:
        """Code (or take from the cache) the current choice and redraw the panels and :attr:`info`."""
        coded = self.code(self.codec.value, self.quality.value)
        self.current = coded
        what = self._setting_label()
        db = "∞" if math.isinf(coded.psnr_rgb) else f"{coded.psnr_rgb:.2f}"
        left, top, right, bottom = self.box
        a = self._pixels[top:bottom, left:right]
        b = np.asarray(coded.decoded)[top:bottom, left:right]
        w, h = right - left, bottom - top
        W, H = self.original.size
        where = f"{W}x{H}" if (w, h) == (W, H) else f"the centre {w}x{h} of {W}x{H}"
        titles = [(f"original: {where}, 1:1", w), (f"{what}: {coded.bpp:.3f} bpp, {db} dB", w)]
        if self.details.value:
            crop = worst_crop(a, b, DETAIL_CROP)
            a_shown, b_shown = _outline(a, crop), _outline(b, crop)
            self._render_details(a, b, crop, coded)
        else:
            a_shown, b_shown = a, b
            show_png(self.detail_image, b"")
            self.detail_titles.layout.display = "none"
        self.titles.value = _titles(titles)
        show_png(self.image, _rgb_png(_side_by_side([a_shown, b_shown])), pixels=True)
        self.info.value = html.escape(f"{what}: {coded.summary()}")

    def _render_details(self, a: np.ndarray, b: np.ndarray, crop: tuple[int, int, int, int], coded: Measurement) -> None:
        """The square where ``b`` errs most against ``a`` (``crop``, in the panels' pixels), zoomed:
        original, decoded, squared error (colours saturating at the 99.5th percentile of the whole image's)."""
        from matplotlib import colormaps

        left, top, right, bottom = crop
        err = error_map(self.original, coded.decoded)
        vmax = max(float(np.percentile(err, 99.5)), 1.0)  # as gabic.reconstructions.reconstruction_figure
        bl, bt = self.box[:2]
        square = err[bt + top : bt + bottom, bl + left : bl + right]
        colours = (colormaps["inferno"](np.clip(square / vmax, 0, 1))[..., :3] * 255).round().astype(np.uint8)
        zoom = DETAIL_ZOOM
        panels = [p.repeat(zoom, axis=0).repeat(zoom, axis=1) for p in (a[top:bottom, left:right], b[top:bottom, left:right], colours)]
        size = panels[0].shape[1]
        psnr_crop = 10 * math.log10(255**2 / m) if (m := float(square.mean())) > 0 else math.inf
        x, y = bl + left, bt + top
        self.detail_titles.value = _titles(
            [
                (f"original: the {right - left}x{bottom - top} square at ({x}, {y}) where it errs most, x{zoom}", size),
                (f"decoded, x{zoom}: {'∞' if math.isinf(psnr_crop) else f'{psnr_crop:.2f}'} dB in the square", size),
                (f"squared error, x{zoom} (black 0, yellow >= {vmax:.0f}: top 0.5 % of the image)", size),
            ]
        )
        self.detail_titles.layout.display = None
        show_png(self.detail_image, _rgb_png(_side_by_side(panels)), pixels=True)


#: What :func:`quality_explorer` takes as ``codecs`` and ``checkpoints``.
CodecsArg = Sequence[str | dict[str, Any]] | Mapping[str, Sequence[int] | None] | str | None
CheckpointsArg = Sequence[str | os.PathLike | dict[str, Any]] | Mapping[str, Sequence[str | os.PathLike]] | str | os.PathLike | None


def quality_explorer(
    image: ImageLike,
    codecs: CodecsArg = None,
    checkpoints: CheckpointsArg = None,
    device: str = "auto",
    crop: int | None = None,
    panel: int = PANEL_PX,
    trust: bool = False,
    width: float | None = None,
    dpi: int | None = None,
) -> QualityExplorer:
    """A :class:`QualityExplorer` of ``image``. Display it in a notebook as the cell's value.

    Args:
        image: a path to an image file, a PIL image or a tensor ``(3, H, W)`` or ``(1, 3, H, W)`` in
            [0, 1] (:data:`gabic.images.ImageLike`; converted to 8-bit RGB by :func:`gabic.images.as_rgb`,
            metadata dropped).
        codecs: the classical codecs (:mod:`gabic.codecs`): None (default): every codec available
            here, at its default qualities; names (default qualities); results dicts of
            :func:`gabic.evaluate.evaluate_codec` (their codec and qualities); or a mapping
            name -> qualities (None: the defaults). ``[]``: none.
        checkpoints: learned codecs: paths of checkpoint files or folders (one group
            "checkpoints", a slider step per file); results dicts of
            :func:`gabic.evaluate.evaluate_checkpoints` (one group per curve, its checkpoints in
            order of rate, labelled by their lambdas); or a mapping label -> paths. Default None: none.
        device: where checkpoints run: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.
        crop: code only the centre ``crop`` x ``crop`` pixels (default None: the whole image).
        panel: the largest side, in pixels, of the crop shown 1:1 (default :data:`PANEL_PX`, 414:
            two panels fit an 840 px output); the whole image is coded and measured either way.
        trust: unpickle checkpoints that hold more than data in full (they can run code; see
            :func:`gabic.checkpoints.read_checkpoint`). Default False: such a file is refused.
        width, dpi: not used (the images are shown pixel for pixel, not drawn as a figure); kept so
            that calls written for earlier versions run.

    Raises:
        CodecError: an unknown or unavailable codec, or a quality outside its range (naming it).
        CheckpointError: a missing checkpoint file or a folder without checkpoints (naming it).
        ImageError: a missing or unreadable image file.
        ValueError: nothing to show, two entries with the same name, or a bad ``panel``.
    """
    img = center_crop(as_rgb(image), crop)
    entries = _codec_entries(codecs) + _checkpoint_entries(checkpoints)
    if not entries:
        raise ValueError("quality_explorer: no codecs or checkpoints to show (codecs=[] and no checkpoints)")
    return QualityExplorer(img, entries, device=device, panel=panel, trust=trust)
