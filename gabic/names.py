"""The names of methods and codecs as figures and tables show them ("JPEG", "WebP", "GABIC").

One table for every place a curve or a model is named: the RD figures, the BD tables, the plotly
figure and the widgets (through :func:`gabic.plots.load_curves`), the curve labels of
:func:`gabic.evaluate.evaluate_checkpoints` and the comparison reports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePath

__all__ = ["DISPLAY_NAMES", "checkpoint_labels", "display_name", "lambda_label", "short_name"]

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


#: A trailing configuration in parentheses: ``" (N=64, M=96, num_slices=8, knn=6)"``.
_CONFIG_RE = re.compile(r"\s*\((?:[^()=,]+=[^(),]*)(?:,\s*[^()=,]+=[^(),]*)*\)\s*$")


def short_name(name: str) -> str:
    """The :func:`display_name` of ``name`` without a trailing configuration in parentheses, for
    controls where the architecture's whole configuration does not fit (a dropdown):
    ``"GABIC (N=64, M=96, num_slices=8, knn=6)"`` -> "GABIC"; ``"gabic (ours, λ=0.013)"`` and
    ``"GABIC (released)"`` keep their parentheses (not a configuration)."""
    shown = display_name(name)
    return _CONFIG_RE.sub("", shown) or shown


def lambda_label(lmbda: float) -> str:
    """The rate-distortion lambda as a short label: ``0.013`` -> ``"λ=0.013"``."""
    return f"λ={lmbda:g}"


def checkpoint_labels(
    paths: Sequence[str | PurePath], lambdas: Sequence[float | None] | None = None, suffixes: Sequence[str] = ()
) -> list[str]:
    """Short labels for checkpoints shown side by side (a slider's steps), saying what differs
    between them: their lambdas when each has a different known one (``"λ=0.013"``); else their
    run folders (``"notebook01"``), else their file names without the ``suffixes``
    (``"best"``), else both (``"notebook01/best"``), with the lambda where known; else the
    paths. One checkpoint: ``"notebook01/best, λ=0.013"``.

    Args:
        paths: the checkpoint files.
        lambdas: their lambdas (None where unknown), in the same order; default None: all unknown.
        suffixes: file-name endings to drop (``(".pth.tar", ".pth")``...); default none.

    Raises:
        ValueError: ``lambdas`` and ``paths`` differ in length.
    """
    paths = [PurePath(p) for p in paths]
    lambdas = [None] * len(paths) if lambdas is None else list(lambdas)
    if len(lambdas) != len(paths):
        raise ValueError(f"checkpoint_labels: {len(paths)} paths but {len(lambdas)} lambdas")
    lams = [lambda_label(x) if isinstance(x, int | float) and not isinstance(x, bool) else None for x in lambdas]

    def stem(p: PurePath) -> str:
        ending = next((s for s in suffixes if p.name.endswith(s) and p.name != s), "")
        return p.name[: len(p.name) - len(ending)]

    def with_lambda(labels: list[str]) -> list[str]:
        return [f"{label}, {lam}" if lam else label for label, lam in zip(labels, lams, strict=True)]

    if len(paths) == 1:
        return with_lambda([f"{paths[0].parent.name}/{stem(paths[0])}" if paths[0].parent.name else stem(paths[0])])
    if None not in lams and len(set(lams)) == len(lams):
        return list(lams)  # type: ignore[arg-type]
    for labels in ([p.parent.name for p in paths], [stem(p) for p in paths], [f"{p.parent.name}/{stem(p)}" for p in paths]):
        if all(labels) and len(set(labels)) == len(labels):
            return with_lambda(labels)
    return [str(p) for p in paths]
