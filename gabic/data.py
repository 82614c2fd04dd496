"""Image data: the embedded sample photographs (more datasets come with the data issue)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from gabic.errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "SAMPLE_NAMES", "list_images", "samples"]

#: File extensions read as images in a dataset folder.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")

#: The embedded photographs (public domain or CC0; see gabic/sample_images/README.md).
SAMPLE_NAMES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")


def samples() -> list[Path]:
    """Paths of the embedded real colour photographs, which need no network.

    astronaut (512x512), chelsea (451x300), coffee (600x400), rocket (640x427), from
    scikit-image's public-domain and CC0 data.
    """
    root = resources.files("gabic") / "sample_images"
    return [Path(str(root / name)) for name in SAMPLE_NAMES]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder (not recursive), sorted by name.

    Raises :class:`~gabic.errors.DataError` naming the folder when it does not exist, is
    not a folder, or holds no file with an extension of ``IMAGE_EXTENSIONS``.
    """
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise DataError(f"{folder}: no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return images
