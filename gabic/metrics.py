"""Quality and rate measures, computed as the papers report them."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

__all__ = ["bpp_from_bytes", "ms_ssim", "psnr"]


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


def ms_ssim(reference: Image.Image | np.ndarray, test: Image.Image | np.ndarray) -> float:
    """MS-SSIM (linear, in [0, 1]) between two 8-bit RGB images, with pytorch-msssim.

    The images are compared as float tensors on the 0..255 scale (``data_range=255``).
    Images smaller than 161 pixels on a side are too small for the 5-scale MS-SSIM and
    raise ValueError.
    """
    from pytorch_msssim import ms_ssim as _ms_ssim

    a = np.asarray(reference, dtype=np.float32)
    b = np.asarray(test, dtype=np.float32)
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} and {b.shape}")
    if min(a.shape[:2]) < 161:
        raise ValueError(f"MS-SSIM needs images of at least 161x161 pixels, got {a.shape[1]}x{a.shape[0]}")
    ta = torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0)
    tb = torch.from_numpy(b).permute(2, 0, 1).unsqueeze(0)
    return float(_ms_ssim(ta, tb, data_range=255.0))


def bpp_from_bytes(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of ``num_bytes`` for a ``height x width`` image."""
    return num_bytes * 8.0 / (height * width)
