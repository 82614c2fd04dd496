"""How RD figures look: their height ratio and line widths, the axis labels of the metrics
(:data:`METRIC_LABELS`), the colour palette and markers, and one fixed style per method
(:data:`METHOD_STYLES`, :func:`method_style`). The paper's widths and type sizes are
:mod:`gabic.figure_layout`'s. See :mod:`gabic.plots`."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from gabic.figure_layout import LEGEND_FONT_SIZE
from gabic.names import display_name

#: Height / width of every figure.
HEIGHT_RATIO = 0.75
_LEGEND_LINE_IN = LEGEND_FONT_SIZE * 1.4 / 72  # height of one legend entry, inches
LINE_WIDTH = 1.2
#: Line width and opacity of published and digitised curves: thinner and lighter than measured ones.
REFERENCE_LINE_WIDTH = 0.8
REFERENCE_ALPHA = 0.75
MARKER_SIZE = 4.0
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
