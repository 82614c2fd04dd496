"""BD tables: :func:`bd_table` gives BD-rate and BD-quality of each curve against an anchor
(:func:`find_anchor`) as a DataFrame, :func:`bd_markdown` and :func:`bd_latex` format it. pandas
is imported by :func:`bd_table`, when called. See :mod:`gabic.plots`."""

from __future__ import annotations

import logging
import math
import os
from typing import TYPE_CHECKING, Any

from gabic.errors import ResultsError
from gabic.image_sets import describe, same_image_set
from gabic.metrics import BD_METHODS, bd_psnr, bd_rate
from gabic.plots.curves import Curve, Curves, load_curves
from gabic.plots.styles import METRIC_LABELS
from gabic.results import points

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_NA = "n/a"


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
