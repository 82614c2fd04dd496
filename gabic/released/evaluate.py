"""Released checkpoints measured: their RD curves, each point labelled with its catalogue entry."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gabic.errors import GabicError
from gabic.evaluate import evaluate_checkpoints
from gabic.names import display_name
from gabic.released.catalogue import DEFAULT_DEST, Entry, catalogue, catalogue_source
from gabic.released.lock import released_checkpoints

__all__ = ["evaluate_released", "label_released"]

log = logging.getLogger(__name__)


def evaluate_released(
    names: Sequence[str] | str,
    dataset: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    dest: str | os.PathLike = DEFAULT_DEST,
    device: str = "auto",
    progress: bool = True,
    data: dict[str, Any] | None = None,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """RD curves of the released checkpoints of ``names`` (e.g. ``"gabic"``) found in ``dest``,
    through :func:`gabic.evaluate.evaluate_checkpoints` (real coding over ``dataset``), each point
    labelled with its catalogue entry (``meta["release"]``) and the lambda its source states
    (``meta["lambda"]``, where the file itself says none); the curve is named "<architecture>
    (released)".

    Raises:
        GabicError: none of them is in ``dest`` (saying how to download them).
        CheckpointError: as :func:`released_checkpoints`.
    """
    names = [names] if isinstance(names, str) else list(names)
    data = data or catalogue()
    present = released_checkpoints(names, dest, data)
    for name in names:
        if present and not any(name in ("all", e.name, e.architecture) for e, _ in present):
            log.warning("%s: not in %s (gabic checkpoints download %s); evaluating the others", name, dest, name)
    if not present:
        raise GabicError(
            f"no released checkpoint of {', '.join(names)} in {dest}: "
            f"download them first (gabic checkpoints download {' '.join(names)})"
        )
    curves = evaluate_checkpoints([p for _, p in present], dataset, device=device, progress=progress, **overrides)
    return _label(curves, present, data)


def label_released(
    curves: list[dict[str, Any]], dest: str | os.PathLike = DEFAULT_DEST, data: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Label the points of ``curves`` (from :func:`gabic.evaluate.evaluate_checkpoints`) that were
    measured on released checkpoints in ``dest``: ``meta["release"]`` (the entry's name, None for
    other points), ``meta["quality_label"]``, and the lambda the source states where the file says
    none; a curve of released checkpoints only is named "<architecture> (released)". The files
    are checked against the lock first (:func:`released_checkpoints`). Returns ``curves``, changed
    in place."""
    data = data or catalogue()
    return _label(curves, released_checkpoints(None, dest, data), data)


def _label(curves: list[dict[str, Any]], present: list[tuple[Entry, Path]], data: dict[str, Any]) -> list[dict[str, Any]]:
    by_path = {Path(p).resolve(): e for e, p in present}
    for curve in curves:
        meta = curve["meta"]
        found = [by_path.get(Path(c).resolve()) for c in meta["checkpoint"]]
        if not any(found):
            continue
        meta["release"] = [e.name if e else None for e in found]
        meta["quality_label"] = [e.quality if e else None for e in found]
        meta["lambda"] = [given if given is not None or e is None else e.lmbda for given, e in zip(meta["lambda"], found, strict=True)]
        if all(found):
            meta["source"] = "released checkpoints: " + ", ".join(sorted({catalogue_source(e, data) for e in found}))
            curve["name"] = f"{display_name(meta.get('model', found[0].architecture))} (released)"
    return curves
