"""RD figures and BD tables of a set of curves written into a folder: :func:`write_report` (what
``gabic rd`` does). See :mod:`gabic.plots`."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gabic.figure_layout import figure_width
from gabic.files import write_atomic
from gabic.metrics import BD_METHODS
from gabic.plots.curves import Curves, load_curves
from gabic.plots.figures import _FORMATS, rd_figure, save_figure
from gabic.plots.tables import bd_latex, bd_markdown, bd_table, default_anchor, find_anchor
from gabic.results import has_metric

log = logging.getLogger(__name__)


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
    ``.csv`` (full precision). Curves lacking a metric are left out of its figures with a note on
    the figure (their BD rows say why) and one log line at INFO per metric. Nothing is printed:
    messages go to :mod:`logging` (``gabic.plots``), at INFO but for a named anchor without a
    metric. Bad widths, method or anchor fail before anything is written.

    Args:
        results: one curve or a sequence (results dicts, paths, published names).
        out_dir: the output folder, created when missing.
        anchor: the BD anchor, as for :func:`bd_table` (one not among ``results`` is drawn
            too); None (default): per metric, the :func:`default_anchor` of the curves that have
            it (on the image set of the measured curves). When a named anchor lacks a metric,
            that metric gets figures but no BD table (a warning: the one line the report may log
            above INFO).
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
        lacking = [c.label for c in curves if c not in have]
        if lacking:  # one line, at INFO: the figures note them and the BD table says n/a
            log.info("no %s in %s: left out of its figures (n/a in its BD table)", metric, ", ".join(lacking))
        for w in widths:
            tag = w if isinstance(w, str) else f"{float(w):g}in"
            fig = rd_figure(curves, metric, width=w, xlim=xlim)  # those without the metric: a note on the figure
            written += save_figure(fig, out_dir / f"rd_{metric}_{tag}", formats, dpi=dpi)
        base = anchor_curve or default_anchor(have, metric)
        if base not in have:
            log.warning("the anchor %s has no %s: no BD table for it", base.label, metric)
            continue
        df = bd_table(curves, base.result, metric=metric, method=method, across_image_sets=across_image_sets)
        for suffix, text in (("md", bd_markdown(df)), ("tex", bd_latex(df)), ("csv", df.to_csv())):
            written.append(write_atomic(out_dir / f"bd_{metric}.{suffix}", text.encode("utf-8")))
    return written
