"""Quality and rate measures, computed as the papers report them."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

__all__ = ["bpp_from_bytes", "psnr"]


def psnr(reference: Image.Image | np.ndarray, test: Image.Image | np.ndarray) -> float:
    """PSNR in dB between two 8-bit RGB images (PIL or ``(H, W, 3)`` uint8 arrays).

    ``10 log10(255^2 / MSE)`` over all pixels and channels; ``inf`` for identical images.
    """
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(test, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} and {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def bpp_from_bytes(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of ``num_bytes`` for a ``height x width`` image."""
    return num_bytes * 8.0 / (height * width)
