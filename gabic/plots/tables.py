"""BD tables: :func:`bd_table` gives BD-rate and BD-quality of each curve against an anchor
(:func:`find_anchor`; by default :func:`default_anchor`) as a DataFrame, :func:`bd_markdown` and
:func:`bd_latex` format it, :func:`bd_caption` says what it compares and why rows are n/a.
pandas is imported by :func:`bd_table`, when called. See :mod:`gabic.plots`."""

from __future__ import annotations

import logging
import math
import os
from typing import TYPE_CHECKING, Any

from gabic.errors import ResultsError
from gabic.image_sets import describe, same_image_set
from gabic.metrics import BD_METHODS, bd_psnr, bd_rate
from gabic.plots.curves import Curve, Curves, _majority, _set_key, load_curves
from gabic.plots.styles import METRIC_LABELS
from gabic.results import has_metric, points

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_NA = "n/a"

#: The methods (keys of :data:`~gabic.plots.METHOD_STYLES`) a BD table is anchored on when none is
#: named, in order of preference: the classical codecs learned-compression papers report BD-rates
#: against (BPG, then VTM), then the others; "heif" (HEVC intra, x265) stands in for BPG.
ANCHOR_METHODS: tuple[str, ...] = ("bpg", "vtm", "hm", "heif", "av1", "avif", "jpegxl", "jpeg2000", "webp", "jpeg")

#: Why a row of a BD table is n/a, as :func:`bd_caption` says it (``df.attrs["n/a"]`` keys).
NA_REASONS: dict[str, str] = {
    "image set": "measured on other images than the anchor",
    "points": "with too few points for the fit",
    "monotone": "whose quality does not rise strictly with bpp",
    "overlap": "with no quality range in common with the anchor",
    "metric": "without the metric",
    "other": "for other reasons",
}


def default_anchor(results: Curves, metric: str = "psnr-rgb") -> Curve:
    """The BD anchor when none is named: among the curves that have ``metric``, those measured on
    the image set of the measured curves (the set most of them share; every curve's when none is
    measured here), so that the measured rows get values; of those, the first of
    :data:`ANCHOR_METHODS` (BPG, VTM, HEVC intra...), else the first given.

    With the embedded sample photos measured beside published Kodak curves, that is a codec
    measured on the photos (HEVC intra, "heif", where measured), not the published BPG, against
    which every measured row would be n/a; with Kodak measured, the published BPG.

    Raises:
        ResultsError: no curve has ``metric``. ValueError: no curves.
    """
    curves = load_curves(results)
    have = [c for c in curves if has_metric(c.result, metric)]
    if not have:
        raise ResultsError(f"no curve has the metric {metric!r} to be the BD anchor: " + ", ".join(repr(c.label) for c in curves))
    measured = [c for c in have if c.style["kind"] == "measured"] or have
    key = _majority([_set_key(c.image_set) for c in measured])
    if key is None:  # no measured curve says where it was measured: every curve is a candidate
        pool = have
    else:
        reference = next(c.image_set for c in measured if _set_key(c.image_set) == key)
        pool = [c for c in have if same_image_set(c.image_set, reference)]
    rank = {method: i for i, method in enumerate(ANCHOR_METHODS)}
    return min(pool, key=lambda c: (rank.get(c.style["method"], len(rank)), pool.index(c)))


def _na_reason(message: str) -> str:
    """The key of :data:`NA_REASONS` of a BD error message (:func:`gabic.metrics.bd_rate`, :func:`gabic.results.points`)."""
    for key, marker in (("points", "needs at least"), ("monotone", "to rise strictly"), ("overlap", "do not overlap")):
        if marker in message:
            return key
    return "metric" if "no metric" in message else "other"


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
    anchor: str | os.PathLike | dict[str, Any] | None = None,
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
            published name, which is loaded and put in the first row. None (default): the
            :func:`default_anchor` of the curves (on the image set of the measured ones).
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
        holds ``anchor``, ``metric``, ``method``, ``anchor_set`` (the anchor's image set in words,
        None when unknown) and ``"n/a"``: ``{reason: [labels]}`` of the n/a rows, reasons as in
        :data:`NA_REASONS` (what :func:`bd_caption` says).

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
    curves = load_curves(results)
    if anchor is None:
        anchor_curve = default_anchor(curves, metric)
    else:
        curves, anchor_curve = find_anchor(curves, anchor)
    anchor_points = points(anchor_curve.result, metric)  # an anchor without the metric is an error
    ab, aq = zip(*anchor_points, strict=True)
    quality_label, quality_column = METRIC_LABELS.get(metric, (metric, f"BD-{metric}"))
    rows = []
    na: dict[str, list[str]] = {}
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
            na.setdefault("image set", []).append(c.label)
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
                na.setdefault(_na_reason(str(err)), []).append(c.label)
                log.info("BD against %s: no values for %s: %s", anchor_curve.label, c.label, err)
        rows.append(row)
    df = pd.DataFrame(rows, index=pd.Index([c.label for c in curves], name="curve"))
    anchor_set = describe(anchor_curve.image_set) if anchor_curve.image_set is not None else None
    df.attrs.update({"anchor": anchor_curve.label, "metric": metric, "method": method, "anchor_set": anchor_set, "n/a": na})
    return df


def bd_caption(df: pd.DataFrame) -> str:
    """A caption for the BD table of :func:`bd_table`: the anchor, metric and fit, and why rows
    are n/a, counted by reason (plain text, no markup)::

        BD against HEVC intra (PSNR, cubic fit; negative BD-rate: fewer bits). n/a: 6 curves
        measured on other images than the anchor (the anchor: 4 sample photos; BD compares
        curves of one image set), 1 curve with too few points for the fit; the notes say more.
    """
    metric, method = df.attrs.get("metric", "?"), df.attrs.get("method", "?")
    quality = METRIC_LABELS.get(metric, (metric,))[0]
    quality = quality.split(" (")[0] + (" (dB)" if metric == "ms-ssim-db-rgb" else "")
    text = f"BD against {df.attrs.get('anchor', '?')} ({quality}, {method} fit; negative BD-rate: fewer bits)."
    na = df.attrs.get("n/a") or {}
    parts = []
    order = list(NA_REASONS)
    for reason, labels in sorted(na.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)):
        part = f"{len(labels)} curve{'s' if len(labels) > 1 else ''} {NA_REASONS.get(reason, reason)}"
        if reason == "image set":
            where = f"the anchor: {df.attrs['anchor_set']}; " if df.attrs.get("anchor_set") else ""
            part += f" ({where}BD compares curves of one image set)"
        parts.append(part)
    if parts:
        text += " n/a: " + ", ".join(parts) + "; the notes say more."
    return text


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
