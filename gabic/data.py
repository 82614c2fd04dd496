"""Image data: the embedded sample photographs (more datasets come with the data issue)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["SAMPLE_NAMES", "samples"]

#: The embedded photographs (public domain or CC0; see gabic/sample_images/README.md).
SAMPLE_NAMES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")


def samples() -> list[Path]:
    """Paths of the embedded real colour photographs, which need no network.

    astronaut (512x512), chelsea (451x300), coffee (600x400), rocket (640x427), from
    scikit-image's public-domain and CC0 data.
    """
    root = resources.files("gabic") / "sample_images"
    return [Path(str(root / name)) for name in SAMPLE_NAMES]
