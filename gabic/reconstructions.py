"""Looking at decoded images: error maps, the crop where a codec errs most, and a figure with
the original, the reconstruction, zoomed crops of both and the error map.

Every function takes 8-bit RGB images (PIL images or ``(H, W, 3)`` uint8 arrays) of the same
size; figures are :class:`matplotlib.figure.Figure` objects ready for ``savefig``. matplotlib (the
``plots`` extra) is imported by the drawing functions: the error maps and crops need only numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from gabic.metrics import psnr

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["error_map", "reconstruction_figure", "stream_size_figure", "worst_crop"]


def _pixels(image: Image.Image | np.ndarray, name: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 pixels of an RGB image, or a ValueError naming the argument."""
    arr = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"{name} must be an RGB image (PIL or (H, W, 3) uint8 array), got shape {arr.shape} {arr.dtype}")
    return arr


def _pair(original, decoded) -> tuple[np.ndarray, np.ndarray]:
    a, b = _pixels(original, "original"), _pixels(decoded, "decoded")
    if a.shape != b.shape:
        raise ValueError(f"original and decoded differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")
    return a, b


def error_map(original: Image.Image | np.ndarray, decoded: Image.Image | np.ndarray) -> np.ndarray:
    """Per-pixel squared error, averaged over the three channels: ``(H, W)`` float64 in
    ``[0, 255**2]``. Its mean is the MSE behind the image's PSNR (:func:`gabic.metrics.psnr`)."""
    a, b = _pair(original, decoded)
    return ((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean(axis=2)


def worst_crop(original: Image.Image | np.ndarray, decoded: Image.Image | np.ndarray, size: int = 96) -> tuple[int, int, int, int]:
    """The ``size`` x ``size`` square with the largest summed squared error.

    Returns ``(left, top, right, bottom)`` in pixels (PIL's box convention); the square is
    shrunk to the image when the image is smaller; ties go to the top-left-most square.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer (pixels), got {size!r}")
    err = error_map(original, decoded)
    h, w = err.shape
    sh, sw = min(size, h), min(size, w)
    integral = np.pad(err.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[sh:, sw:] - integral[:-sh, sw:] - integral[sh:, :-sw] + integral[:-sh, :-sw]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(left), int(top), int(left) + sw, int(top) + sh


def reconstruction_figure(
    original: Image.Image | np.ndarray,
    decoded: Image.Image | np.ndarray,
    title: str | None = None,
    box: tuple[int, int, int, int] | None = None,
    crop_size: int = 96,
    width: float = 10.0,
) -> Figure:
    """The original and the reconstruction side by side, with the error map and zoomed crops.

    Top row: original (the crop outlined), reconstruction with its PSNR, error map (squared
    error per pixel, mean over channels). Bottom row: the crop of each, enlarged without
    interpolation, and the crop of the error map.

    Args:
        original, decoded: RGB images of the same size.
        title: figure title (e.g. the codec, bpp and PSNR); default none.
        box: the crop ``(left, top, right, bottom)``; default None: :func:`worst_crop` with
            ``crop_size``.
        crop_size: side of the automatic crop in pixels (default 96).
        width: figure width in inches (default 10).
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    a, b = _pair(original, decoded)
    err = error_map(a, b)
    if box is None:
        box = worst_crop(a, b, crop_size)
    left, top, right, bottom = box
    if not (0 <= left < right <= a.shape[1] and 0 <= top < bottom <= a.shape[0]):
        raise ValueError(f"box {box} is not inside the {a.shape[1]}x{a.shape[0]} image")
    quality = psnr(a, b)
    vmax = max(float(np.percentile(err, 99.5)), 1.0)  # the brightest 0.5 % saturate, so the rest stays visible

    h, w = a.shape[:2]
    fig = Figure(figsize=(width, width * (h / w) * 2 / 3 + 0.8), layout="constrained")
    axes = fig.subplots(2, 3)
    panels = [
        (a, "original"),
        (b, f"reconstruction ({quality:.2f} dB)"),
        (err, "squared error (top 0.5 % saturated)"),
        (a[top:bottom, left:right], f"original, crop at ({left}, {top})"),
        (b[top:bottom, left:right], "reconstruction, crop"),
        (err[top:bottom, left:right], "squared error, crop"),
    ]
    for i, (ax, (pixels, label)) in enumerate(zip(axes.flat, panels, strict=True)):
        if pixels.ndim == 2:
            im = ax.imshow(pixels, cmap="inferno", vmin=0, vmax=vmax, interpolation="nearest")
        else:
            ax.imshow(pixels, interpolation="nearest")
        ax.set(title=label, xticks=[], yticks=[])
        if i < 3:
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, ec="cyan", lw=1.2))
    fig.colorbar(im, ax=axes[:, 2], shrink=0.8, label="squared error (8-bit levels²)")
    if title:
        fig.suptitle(title)
    return fig


def stream_size_figure(result: dict[str, Any], point: int | None = None, width: float = 7.0) -> Figure:
    """Bytes of the y and z streams per image, stacked bars, for one point of a checkpoint
    evaluation (:func:`gabic.evaluate.evaluate_checkpoints`; its ``per_image`` holds
    ``y_bytes`` and ``z_bytes``).

    Args:
        result: one curve from ``evaluate_checkpoints``.
        point: index of the RD point (checkpoint); default None: the last (highest rate).
        width: figure width in inches.
    """
    from matplotlib.figure import Figure

    per_image = result.get("per_image") or {}
    if not per_image or any("y_bytes" not in v or "z_bytes" not in v for v in per_image.values()):
        raise ValueError(f"{result.get('name', 'result')}: no y_bytes / z_bytes per image (not a checkpoint evaluation)")
    n = len(result["results"]["bpp"])
    point = n - 1 if point is None else point
    if not -n <= point < n:
        raise ValueError(f"point must be in 0..{n - 1}, got {point}")
    names = list(per_image)
    y = np.array([per_image[k]["y_bytes"][point] for k in names], dtype=float)
    z = np.array([per_image[k]["z_bytes"][point] for k in names], dtype=float)
    fig = Figure(figsize=(width, 0.35 * len(names) + 1.2), layout="constrained")
    ax = fig.subplots()
    ax.barh(names, y, label="y (latent)")
    ax.barh(names, z, left=y, label="z (hyper-latent)")
    for i, (yi, zi) in enumerate(zip(y, z, strict=True)):
        ax.text(yi + zi, i, f"  {100 * zi / (yi + zi):.1f}% z", va="center", fontsize="small")
    ax.invert_yaxis()
    ax.set(xlabel="bytes", title=f"{result.get('name', '')}: stream sizes, point {point}", xlim=(0, 1.18 * float((y + z).max())))
    fig.legend(loc="outside lower center", ncols=2)
    return fig
