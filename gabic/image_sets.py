"""Which images an RD curve was measured on, so that curves from different image sets are never
compared silently.

A results file records its image set in ``meta["image_set"]``::

    {"name": "Kodak", "num_images": 24, "fingerprint": "sha256:1f0c..."}

The fingerprint is a SHA-256 over the sorted ``name WIDTHxHEIGHT`` lines of the images (file
names and pixel sizes, not their content: the same photos saved by another PNG encoder keep
it). Curves written before gabic recorded image sets, and the published anchors, are read by
:func:`image_set_of` from their ``meta["dataset"]`` and ``meta["num_images"]``: the published
curves say ``"kodak"``, gabic's evaluations of the sample photos ``"gabic samples"``, both of
which have a known fingerprint.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image

from gabic.data import KODAK_NAMES, kodak_hashes, list_images, samples
from gabic.errors import DataError, ImageError
from gabic.images import load_image, pixels_only

log = logging.getLogger(__name__)

__all__ = [
    "KODAK",
    "SAMPLES",
    "Images",
    "read_images",
    "describe",
    "fingerprint",
    "image_set",
    "image_set_of",
    "known_image_set",
    "same_image_set",
]

#: The names of the two known image sets, as ``meta["dataset"]`` writes them.
KODAK, SAMPLES = "Kodak", "gabic samples"


def fingerprint(images: Iterable[tuple[str, int, int]]) -> str:
    """``"sha256:<hex>"`` of the sorted ``name WIDTHxHEIGHT`` lines of ``(name, width, height)`` triples."""
    lines = sorted(f"{name} {w}x{h}\n" for name, w, h in images)
    return "sha256:" + hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def _size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as im:  # reads the header only
            return im.size
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: cannot read the image size ({err})") from None


@lru_cache(maxsize=2)
def known_image_set(name: str) -> dict[str, Any]:
    """The image set :data:`KODAK` (from the shipped table of Kodak names and sizes) or
    :data:`SAMPLES` (the embedded sample photos)."""
    if name == KODAK:
        table = kodak_hashes()
        entries = [(n, *table[n][1]) for n in KODAK_NAMES]
    elif name == SAMPLES:
        entries = [(p.name, *_size(p)) for p in samples()]
    else:
        raise ValueError(f"no known image set {name!r}: expected {KODAK!r} or {SAMPLES!r}")
    return {"name": name, "num_images": len(entries), "fingerprint": fingerprint(entries)}


def image_set(paths: Sequence[str | os.PathLike], name: str | None = None) -> dict[str, Any]:
    """The image set of a list of image files: ``{"name", "num_images", "fingerprint"}``.

    The name is :data:`KODAK` or :data:`SAMPLES` when the files are those images (by
    fingerprint), else ``name`` (default: the folder of the first file).
    """
    paths = [Path(p) for p in paths]
    return image_set_of_sizes([(p.name, *_size(p)) for p in paths], name or (str(paths[0].parent) if paths else "no images"))


def image_set_of_sizes(images: Sequence[tuple[str, int, int]], name: str) -> dict[str, Any]:
    """:func:`image_set` from ``(name, width, height)`` triples (images held in memory)."""
    fp = fingerprint(images)
    for known in (KODAK, SAMPLES):
        if known_image_set(known)["fingerprint"] == fp:
            name = known
    return {"name": name, "num_images": len(images), "fingerprint": fp}


def image_set_of(result: dict[str, Any]) -> dict[str, Any] | None:
    """The image set a results dict was measured on, or None when it does not say.

    ``meta["image_set"]`` when the file records it; otherwise read from ``meta["dataset"]``:
    ``"kodak"`` (any case; the published curves) and ``"gabic samples"`` are the known sets,
    any other name gives ``{"name", "num_images" (from meta, or None), "fingerprint": None}``.
    """
    meta = result.get("meta") if isinstance(result.get("meta"), dict) else {}
    recorded = meta.get("image_set")
    if isinstance(recorded, dict) and recorded.get("name"):
        return {"name": recorded["name"], "num_images": recorded.get("num_images"), "fingerprint": recorded.get("fingerprint")}
    dataset = meta.get("dataset")
    if not isinstance(dataset, str) or not dataset.strip():
        return None
    if dataset.strip().lower() == KODAK.lower():
        return known_image_set(KODAK)
    if dataset == SAMPLES:
        return known_image_set(SAMPLES)
    count = meta.get("num_images")
    return {"name": dataset, "num_images": count if isinstance(count, int) else None, "fingerprint": None}


def same_image_set(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool | None:
    """Whether two image sets are the same: by fingerprint when both have one, else by name and
    number of images; None when either is unknown."""
    if a is None or b is None:
        return None
    if a.get("fingerprint") and b.get("fingerprint"):
        return a["fingerprint"] == b["fingerprint"]
    return str(a.get("name")).lower() == str(b.get("name")).lower() and a.get("num_images") == b.get("num_images")


def describe(image_set: dict[str, Any]) -> str:
    """A few words for a figure or a table: ``"Kodak"``, ``"4 sample photos"``, ``"3 images of mine"``
    (a folder is named by its last part); images given one by one (named by their files, see
    :func:`gabic.evaluate.read_images`): ``"rocket.jpg"``, ``"2 images (a.png, b.png)"``."""
    name, n = image_set.get("name"), image_set.get("num_images")
    if name == KODAK and n == 24:
        return KODAK
    if name == SAMPLES:
        return f"{n} sample photo{'s' if n != 1 else ''}"
    count = f"{n} image{'s' if n != 1 else ''}" if isinstance(n, int) else "images"
    text = str(name)
    if ", " in text or Path(text).suffix:  # files, not a folder
        return text if n == 1 else f"{count} ({text})"
    return f"{count} of {Path(text).name or text}"


@dataclass
class Images:
    """The images of an experiment: their names, dataset name, the image set they form, their
    paths and, when asked for, their 8-bit RGB pixels."""

    names: list[str]
    dataset: str
    image_set: dict[str, Any]
    paths: list[Path]
    pixels: list[Image.Image] = field(default_factory=list)


def read_images(dataset: str | os.PathLike | Sequence[str | os.PathLike] | None, load: bool) -> Images:
    """The images of ``dataset`` (a folder, a list of image files; None: the embedded samples),
    every one read once so a bad file stops the experiment before any coding; their pixels kept
    when ``load``. A list is named by its files (``"rocket.jpg"``, ``"a.png, b.png, c.png, ..."``)."""
    if dataset is None:
        paths, name = samples(), SAMPLES
    elif isinstance(dataset, str | os.PathLike):
        paths, name = list_images(dataset), str(dataset)
    else:
        paths = [Path(p) for p in dataset]
        if not paths:
            raise DataError("no images given: expected a folder or a list of image files")
        name = ", ".join(p.name for p in paths[:3]) + (", ..." if len(paths) > 3 else "")
    pixels, sizes = [], []
    for path in paths:
        img, notes = load_image(path)
        if notes:
            log.warning("%s: %s", path, "; ".join(notes))
        sizes.append((path.name, *img.size))
        if load:
            pixels.append(pixels_only(img))
    return Images([p.name for p in paths], name, image_set_of_sizes(sizes, name), paths, pixels)
