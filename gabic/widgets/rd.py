"""ipywidgets explorers of rate-distortion results: RD curves with a BD table, and decoded images.

``rd_explorer(curves)`` shows an RD figure (:func:`gabic.plots.rd_figure`) of the curves ticked
in a list, for a metric picked in a dropdown, and the BD table (:func:`gabic.plots.bd_table`)
of those curves against an anchor picked in another dropdown; a checkbox widens the bpp axis
from the learned codecs to every point; a button exports the figure for a paper
(:func:`gabic.plots.save_figure`: PDF, SVG and PNG, one and two columns wide, with the plotted
points as CSV) and the BD table as Markdown.

``quality_explorer(image, codecs=..., checkpoints=...)`` codes one image with a classical codec
(:mod:`gabic.codecs`) at the quality picked on a slider, or with a learned-codec checkpoint
picked on the slider, and shows the decoded image beside the original with its bpp and PSNR.
Each (codec, quality) is coded once, when first shown, and cached; checkpoints are loaded once.

Both render matplotlib figures to PNG bytes in an ``ipywidgets.Image`` (``explorer.image.value``);
their controls are attributes, so they can be driven from code and tests.
"""

from __future__ import annotations

import html
import io
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

try:
    import ipywidgets as widgets
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("gabic.widgets.rd needs ipywidgets: pip install 'gabic[notebooks]' (or ipywidgets)") from err

from gabic import plots
from gabic.checkpoints import load_checkpoint
from gabic.codecs import get_codec, list_codecs
from gabic.errors import GabicError, ResultsError
from gabic.evaluate import find_checkpoints
from gabic.files import write_atomic
from gabic.images import ImageLike, as_rgb, center_crop
from gabic.measurement import Measurement, measure
from gabic.reconstructions import comparison_figure, reconstruction_figure
from gabic.results import has_metric
from gabic.widgets._base import Redraws

__all__ = ["QualityExplorer", "RDExplorer", "bd_html", "quality_explorer", "rd_explorer"]

log = logging.getLogger(__name__)

#: The metrics offered by the RD explorer, with their names in the dropdown.
METRIC_NAMES: dict[str, str] = {"psnr-rgb": "PSNR", "ms-ssim-rgb": "MS-SSIM", "ms-ssim-db-rgb": "MS-SSIM (dB)"}

#: The figure widths written by :meth:`RDExplorer.export` (:data:`gabic.plots.COLUMN_WIDTHS`).
EXPORT_WIDTHS = ("single", "double")
#: The figure formats written by :meth:`RDExplorer.export`.
EXPORT_FORMATS = ("pdf", "svg", "png")


def _png(fig, dpi: int) -> bytes:
    """The PNG bytes of a matplotlib figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# RD curves


class RDExplorer(Redraws, widgets.VBox):
    """RD figure and BD table of a set of curves; its controls and outputs are attributes.

    Attributes:
        methods: SelectMultiple of the curve labels (:func:`gabic.plots.method_style` labels,
            made unique); the figure and the BD table show the selected ones.
        metric: Dropdown of the metrics some curve has (value ``"psnr-rgb"``, ``"ms-ssim-rgb"``
            or ``"ms-ssim-db-rgb"``).
        anchor: Dropdown of the labels of the curves that have the metric: the BD anchor.
        bd_method: Dropdown, ``"cubic"`` or ``"pchip"`` (:func:`gabic.metrics.bd_rate`).
        full_range: Checkbox: every point on the bpp axis (``xlim="full"`` of
            :func:`gabic.plots.rd_figure`); unticked (default): the axis fits the learned codecs.
        image: ``ipywidgets.Image`` holding the PNG of the RD figure (empty when nothing is drawn).
        table: HTML of the BD table against the anchor.
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
        dpi: int = 100,
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
        self.methods = widgets.SelectMultiple(
            options=labels, value=labels, rows=min(len(labels), 10), description="curves", layout={"width": "420px"}
        )
        self.metric = widgets.Dropdown(options=[(METRIC_NAMES.get(m, m), m) for m in metrics], value=metric, description="metric")
        self.anchor = widgets.Dropdown(description="BD anchor", style=style)
        self.bd_method = widgets.Dropdown(options=["cubic", "pchip"], value="cubic", description="BD fit", style=style)
        self.full_range = widgets.Checkbox(value=False, description="full bpp range", indent=False)
        self.image = widgets.Image(format="png")
        self.table = widgets.HTML()
        self.status = widgets.HTML()
        self.export_stem = widgets.Text(value=os.fspath(export_stem), description="export to", style=style, layout={"width": "420px"})
        self.export_button = widgets.Button(description="export", tooltip="PDF, SVG and PNG, single and double column; BD table")
        self._set_anchors(anchor_curve.label if anchor_curve is not None else None)
        super().__init__(
            [
                widgets.HBox([self.methods, widgets.VBox([self.metric, self.anchor, self.bd_method, self.full_range])]),
                self.image,
                self.table,
                widgets.HBox([self.export_stem, self.export_button]),
                self.status,
            ]
        )
        self.methods.observe(self._on_change, names="value")
        self.metric.observe(self._on_metric, names="value")
        self.anchor.observe(self._on_change, names="value")
        self.bd_method.observe(self._on_change, names="value")
        self.full_range.observe(self._on_change, names="value")
        self.export_button.on_click(self._on_export)
        self.render()

    # ------------------------------------------------------------------ selection
    def selected(self) -> list[Any]:
        """The selected curves, in the order they were given."""
        chosen = set(self.methods.value)
        return [c for label, c in self._curves.items() if label in chosen]

    def _set_anchors(self, keep: str | None = None) -> None:
        """Offer the curves that have the metric as anchors; keep ``keep`` (or the current one) if it can be."""
        options = [label for label, c in self._curves.items() if has_metric(c.result, self.metric.value)]
        keep = keep or self.anchor.value
        self.anchor.options = options
        self.anchor.value = keep if keep in options else (options[0] if options else None)

    # ------------------------------------------------------------------ events
    def _on_metric(self, change) -> None:
        with self.quietly():
            self._set_anchors()
        self.redraw()

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
        if drawn:  # the selected curves without the metric: left out, with a note on the figure
            fig = plots.rd_figure(selected, metric, width=self.width, xlim=self._xlim())
            self.image.value = _png(fig, self.dpi)
        else:
            self.image.value = b""
        self._render_table(selected, metric)
        self.status.value = html.escape("; ".join(notes))

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
    """A BD table of :func:`gabic.plots.bd_table` as an HTML table: a caption naming the anchor,
    metric and fit, BD values signed with ``digits`` decimals (default 2), NaN as ``n/a``."""
    formatters = {
        column: (lambda v: "n/a" if v != v else f"{0.0:.{digits}f}" if v == 0 else f"{v:+.{digits}f}")
        for column in df.columns
        if str(column).startswith("BD-")
    }
    body = df.rename_axis(None).to_html(formatters=formatters, na_rep="", border=0, escape=True)
    anchor, metric, method = (html.escape(str(df.attrs.get(k, "?"))) for k in ("anchor", "metric", "method"))
    caption = f"<p><b>BD against {anchor}</b> ({METRIC_NAMES.get(metric, metric)}, {method} fit; negative BD-rate: fewer bits)</p>"
    return caption + body


def rd_explorer(
    curves: plots.Curves,
    metric: str = "psnr-rgb",
    anchor: str | os.PathLike | dict[str, Any] | None = None,
    export_stem: str | os.PathLike = "rd",
    width: str | float = "double",
    dpi: int = 100,
    across_image_sets: bool = False,
) -> RDExplorer:
    """An :class:`RDExplorer` of ``curves``. Display it in a notebook as the cell's value.

    Args:
        curves: one curve or a sequence: results dicts, paths to results files, published names.
        metric: the metric shown first (default ``"psnr-rgb"``); some curve must have it.
        anchor: the BD anchor shown first, as for :func:`gabic.plots.bd_table` (one not among
            ``curves`` is added to them); default None: the first curve that has the metric.
        export_stem: the initial value of the export box (the path without extension, default ``"rd"``).
        width: width of the displayed figure: ``"single"``, ``"double"`` (default) or inches.
        dpi: resolution of the displayed figure (default 100).
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

    key: str  # the dropdown's value: the codec's name or the checkpoint group's label
    kind: str  # "codec" or "checkpoint"
    settings: list[tuple[str, Any]] = field(default_factory=list)  # slider (label, value): quality, or checkpoint path
    codec: Any = None  # a gabic.codecs.Codec


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
        entries.append(_Entry(codec.name, "codec", [(str(q), q) for q in qs], codec))
    return entries


def _checkpoint_settings(paths: Sequence[Path]) -> list[tuple[str, Any]]:
    """Slider (label, path) pairs: the file names, with their folder where two names are the same."""
    names = [p.name for p in paths]
    return [(f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name, p) for p in paths]


def _checkpoint_entries(checkpoints: Any) -> list[_Entry]:
    """Entries of checkpoints: paths (files or folders; one group "checkpoints"), results dicts
    of :func:`gabic.evaluate.evaluate_checkpoints` (one group per curve) or a mapping label -> paths."""
    if checkpoints is None:
        return []
    if isinstance(checkpoints, (str, os.PathLike)):
        checkpoints = [checkpoints]
    groups: list[tuple[str, list[Any]]] = []
    if isinstance(checkpoints, Mapping):
        groups = [(str(k), [v] if isinstance(v, (str, os.PathLike)) else list(v)) for k, v in checkpoints.items()]
    else:
        loose = []
        for item in checkpoints:
            if isinstance(item, dict):  # a curve from evaluate_checkpoints: its checkpoints, sorted by bpp
                files = (item.get("meta") or {}).get("checkpoint")
                if not isinstance(files, list) or not files:
                    what = repr(item.get("name", "a result"))
                    raise ValueError(f"checkpoints: {what} has no meta.checkpoint (not a result of evaluate_checkpoints)")
                groups.append((str(item.get("name", "checkpoints")), files))
            else:
                loose.append(item)
        if loose:
            groups.insert(0, ("checkpoints", loose))
    entries = []
    for label, files in groups:
        paths = find_checkpoints(files)  # CheckpointError naming a missing file or an empty folder
        entries.append(_Entry(label, "checkpoint", _checkpoint_settings(paths)))
    return entries


class QualityExplorer(Redraws, widgets.VBox):
    """One image decoded by a codec or checkpoint, beside the original; controls and output are attributes.

    Attributes:
        codec: Dropdown of the classical codecs (value: the codec's name) and checkpoint groups
            (value: the group's label).
        quality: SelectionSlider of the codec's qualities, or of the group's checkpoints
            (value: the quality, or the checkpoint's path).
        details: Checkbox: add the error map and zoomed crops
            (:func:`gabic.reconstructions.reconstruction_figure`).
        image: ``ipywidgets.Image`` holding the PNG of the current figure.
        info: HTML line with the codec, setting, bytes, bpp and PSNR.
        current: the :class:`~gabic.measurement.Measurement` shown (see :meth:`code`).
        coded: the cache, ``{(codec or group, quality or path): measurement}``.
        original: the RGB image coded.
    """

    def __init__(
        self, image: Image.Image, entries: list[_Entry], device: str = "auto", width: float = 10.0, dpi: int = 80, trust: bool = False
    ):
        if not entries:
            raise ValueError("quality_explorer: no codecs or checkpoints to show")
        keys = [e.key for e in entries]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"quality_explorer: two entries named {', '.join(map(repr, duplicates))} (codecs and checkpoint groups)")
        self.original, self.device, self.width, self.dpi, self.trust = image, device, width, dpi, trust
        self._entries = {e.key: e for e in entries}
        self._models: dict[Path, Any] = {}
        self.coded: dict[tuple[str, Any], Measurement] = {}
        self.current: Measurement | None = None
        first = entries[0]
        style = {"description_width": "initial"}
        self.codec = widgets.Dropdown(options=keys, value=first.key, description="codec")
        self.quality = widgets.SelectionSlider(
            options=first.settings, value=first.settings[0][1], description="quality", continuous_update=False, style=style,
            layout={"width": "480px"},
        )  # fmt: skip
        self.details = widgets.Checkbox(value=False, description="error map and crops", indent=False)
        self.image = widgets.Image(format="png")
        self.info = widgets.HTML()
        super().__init__([widgets.HBox([self.codec, self.quality, self.details]), self.info, self.image])
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
        return f"{entry.key}, quality {label}" if entry.kind == "codec" else f"{entry.key}, {label}"

    def render(self) -> None:
        """Code (or take from the cache) the current choice and redraw :attr:`image` and :attr:`info`."""

        coded = self.code(self.codec.value, self.quality.value)
        self.current = coded
        what = self._setting_label()
        db = "∞" if math.isinf(coded.psnr_rgb) else f"{coded.psnr_rgb:.2f}"
        title = f"{what}: {coded.bpp:.3f} bpp, {db} dB"
        if self.details.value:
            fig = reconstruction_figure(self.original, coded.decoded, title=title, width=self.width, bpp=coded.bpp)
        else:
            fig = comparison_figure(self.original, {what: coded.decoded}, bpp={what: coded.bpp}, width=self.width)
        self.image.value = _png(fig, self.dpi)
        self.info.value = html.escape(f"{what}: {coded.summary()}")


#: What :func:`quality_explorer` takes as ``codecs`` and ``checkpoints``.
CodecsArg = Sequence[str | dict[str, Any]] | Mapping[str, Sequence[int] | None] | str | None
CheckpointsArg = Sequence[str | os.PathLike | dict[str, Any]] | Mapping[str, Sequence[str | os.PathLike]] | str | os.PathLike | None


def quality_explorer(
    image: ImageLike,
    codecs: CodecsArg = None,
    checkpoints: CheckpointsArg = None,
    device: str = "auto",
    crop: int | None = None,
    width: float = 10.0,
    dpi: int = 80,
    trust: bool = False,
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
            order of rate); or a mapping label -> paths. Default None: none.
        device: where checkpoints run: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.
        crop: code only the centre ``crop`` x ``crop`` pixels (default None: the whole image).
        width: figure width in inches (default 10); dpi: its resolution (default 80).
        trust: unpickle checkpoints that hold more than data in full (they can run code; see
            :func:`gabic.checkpoints.read_checkpoint`). Default False: such a file is refused.

    Raises:
        CodecError: an unknown or unavailable codec, or a quality outside its range (naming it).
        CheckpointError: a missing checkpoint file or a folder without checkpoints (naming it).
        ImageError: a missing or unreadable image file.
        ValueError: nothing to show, or two entries with the same name.
    """
    img = center_crop(as_rgb(image), crop)
    entries = _codec_entries(codecs) + _checkpoint_entries(checkpoints)
    if not entries:
        raise ValueError("quality_explorer: no codecs or checkpoints to show (codecs=[] and no checkpoints)")
    return QualityExplorer(img, entries, device=device, width=width, dpi=dpi, trust=trust)
