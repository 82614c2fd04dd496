"""The names of methods and codecs as figures and tables show them ("JPEG", "WebP", "GABIC").

One table for every place a curve or a model is named: the RD figures, the BD tables, the plotly
figure and the widgets (through :func:`gabic.plots.load_curves`), the curve labels of
:func:`gabic.evaluate.evaluate_checkpoints` and the comparison reports.
"""

from __future__ import annotations

import re

__all__ = ["DISPLAY_NAMES", "display_name"]

#: Display names of methods and codecs, in figures, legends and BD tables: (pattern matched at the
#: start of a curve's name, case-insensitively, up to a non-alphanumeric character or the end;
#: the name shown instead of the matched text). The rest of the name is kept: ``"gabic (ours,
#: λ=0.013)"`` is shown as "GABIC (ours, λ=0.013)". Names that match none are shown as they are.
#: The codec ids are those of :mod:`gabic.codecs`, the model ids those of :mod:`gabic.models`.
DISPLAY_NAMES: tuple[tuple[str, str], ...] = (
    ("gabic", "GABIC"),
    ("wacnn", "WACNN"),
    ("stf", "STF"),
    ("jpeg[ _-]?xl|jxl", "JPEG XL"),
    ("jpeg[ _-]?2000|j2k|jp2", "JPEG 2000"),
    ("jpeg|jpg", "JPEG"),
    ("webp", "WebP"),
    ("avif", "AVIF"),
    ("heif|heic", "HEIF"),
    ("bpg", "BPG"),
    ("vtm", "VTM"),
    ("hm", "HM"),
    ("av1", "AV1"),
    ("elic", "ELIC"),
)
_DISPLAY_RE = [(re.compile(rf"(?:{pattern})(?![A-Za-z0-9])", re.IGNORECASE), shown) for pattern, shown in DISPLAY_NAMES]


def display_name(name: str) -> str:
    """The name of a curve as shown in figures and tables: a leading method or codec id replaced by
    its display name (:data:`DISPLAY_NAMES`), the rest kept; other names unchanged.

    ``"jpeg"`` -> "JPEG", ``"jpegxl"`` and ``"jxl"`` -> "JPEG XL", ``"webp (4 sample photos)"`` ->
    "WebP (4 sample photos)", ``"gabic (ours, λ=0.013)"`` -> "GABIC (ours, λ=0.013)"; ``"Zou2022
    (WACNN ...)"`` and ``"CompressAI mbt2018"`` stay as they are.
    """
    text = str(name)
    stripped = text.lstrip()
    for pattern, shown in _DISPLAY_RE:
        m = pattern.match(stripped)
        if m:
            return shown + stripped[m.end() :]
    return text
