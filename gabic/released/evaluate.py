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
    """RD curves of the released checkpoints of ``names`` (e.g. ``"gabic"``, ``"mbt2018-mean"``)
    found in ``dest``, through :func:`gabic.evaluate.evaluate_checkpoints` (real coding over
    ``dataset``; ``meta["kind"]`` is ``"measured"``), each point labelled with its catalogue entry
    (``meta["release"]``), its authors' quality label (``meta["quality_label"]``) and the lambda
    its source states (``meta["lambda"]``, where the file itself says none); one curve per
    architecture, named "<architecture> (released)".

    An architecture released at several sizes (the CompressAI zoo's mbt2018-mean: N=128, M=192 at
    qualities 1-4, N=192, M=320 at 5-8) is measured as one curve, as its publisher shows it:
    ``meta["config"]`` then lists each point's configuration (one per point, in the curve's order)
    instead of holding one.

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
    return _one_per_architecture(_label(curves, present, data))


def label_released(
    curves: list[dict[str, Any]], dest: str | os.PathLike = DEFAULT_DEST, data: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Label the points of ``curves`` (from :func:`gabic.evaluate.evaluate_checkpoints`) that were
    measured on released checkpoints in ``dest``: ``meta["release"]`` (the entry's name, None for
    other points), ``meta["quality_label"]``, and the lambda the source states where the file says
    none; a curve of released checkpoints only is named "<architecture> (released)", and such
    curves of one architecture over the same images (its released sizes, as the CompressAI zoo's
    mbt2018-mean has two) are joined into one, as :func:`evaluate_released` does. The files are
    checked against the lock first (:func:`released_checkpoints`). Returns the curves (those not
    joined are ``curves``' own, changed in place)."""
    data = data or catalogue()
    return _one_per_architecture(_label(curves, released_checkpoints(None, dest, data), data))


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


#: The per-point lists of a curve's ``meta`` (those :func:`evaluate_checkpoints` writes, and :func:`_label`'s).
_PER_POINT = ("lambda", "checkpoint", "release", "quality_label")


def _one_per_architecture(curves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The curves of released checkpoints only of one architecture over the same images (its
    released sizes, which :func:`~gabic.evaluate.evaluate_checkpoints` keeps apart) joined into
    one, at the place of the first; other curves as they are."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    out: list[list[dict[str, Any]]] = []
    for c in curves:
        meta = c["meta"]
        release = meta.get("release")
        if not (isinstance(release, list) and release and all(release)):
            out.append([c])
            continue
        images = (meta.get("dataset"), meta.get("num_images"), repr(meta.get("image_set")), tuple(c.get("per_image", {})))
        key = (meta["model"], images)
        if key in groups:
            groups[key].append(c)
        else:
            groups[key] = [c]
            out.append(groups[key])
    return [group[0] if len(group) == 1 else _joined(group) for group in out]


def _joined(group: list[dict[str, Any]]) -> dict[str, Any]:
    """One curve of the points of ``group`` (curves of one architecture over the same images),
    sorted by bpp with every per-point list in the same order; ``meta["config"]`` one per point."""
    first = group[0]
    bpp = [b for c in group for b in c["results"]["bpp"]]
    order = sorted(range(len(bpp)), key=lambda i: (bpp[i], i))

    def joined(lists: Any) -> list[Any]:
        flat = [v for values in lists for v in values]
        return [flat[i] for i in order]

    keys = [k for k in first["results"] if all(k in c["results"] for c in group)]
    meta = dict(first["meta"])
    for k in _PER_POINT:
        if all(isinstance(c["meta"].get(k), list) for c in group):
            meta[k] = joined(c["meta"][k] for c in group)
    meta["config"] = joined([c["meta"]["config"]] * len(c["results"]["bpp"]) for c in group)
    omitted = next((c["meta"]["omitted"] for c in group if "omitted" in c["meta"]), None)
    if omitted is not None:
        meta["omitted"] = omitted
    per_image = {
        image: {k: joined(c["per_image"][image][k] for c in group) for k in first["per_image"][image]} for image in first["per_image"]
    }
    description = (
        f"{first['name']} on {meta.get('dataset')}: {len(bpp)} checkpoints at {len(group)} configurations, "
        f"real coding ({meta.get('device')})"
    )
    return {
        "name": first["name"],
        "description": description,
        "results": {k: joined(c["results"][k] for c in group) for k in keys},
        "meta": meta,
        "per_image": per_image,
    }
