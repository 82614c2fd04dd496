"""Looking at decoded images: error maps, the crop where a codec errs most, a figure with the
original, the reconstruction, zoomed crops of both and the error map, a figure comparing several
reconstructions of one image, and the stream sizes of a checkpoint evaluation.

Every function takes 8-bit RGB images (PIL images or ``(H, W, 3)`` uint8 arrays) of the same
size; figures are :class:`matplotlib.figure.Figure` objects ready for ``savefig`` and carry the
numbers they show (:mod:`gabic.figure_data`; :func:`gabic.plots.save_figure` writes them as CSV).
matplotlib (the ``plots`` extra) is imported by the drawing functions: the error maps and crops
need only numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from gabic.checks import check_int
from gabic.figure_data import attach_data
from gabic.metrics import psnr
from gabic.results import point_labels

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["comparison_figure", "error_map", "reconstruction_figure", "stream_size_figure", "worst_crop"]


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
    size = check_int(size, "size", 1, detail=" (pixels)")
    err = error_map(original, decoded)
    h, w = err.shape
    sh, sw = min(size, h), min(size, w)
    integral = np.pad(err.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[sh:, sw:] - integral[:-sh, sw:] - integral[sh:, :-sw] + integral[:-sh, :-sw]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(left), int(top), int(left) + sw, int(top) + sh


def _region_row(region: str, box: tuple[int, int, int, int], a: np.ndarray, b: np.ndarray, err: np.ndarray, vmax: float) -> dict:
    """One row of :func:`reconstruction_figure`'s data: a region, its box, PSNR and error statistics."""
    left, top, right, bottom = box
    e = err[top:bottom, left:right]
    return {
        "region": region,
        "left": left,
        "top": top,
        "right": right,
        "bottom": bottom,
        "psnr_db": psnr(a[top:bottom, left:right], b[top:bottom, left:right]),
        "mse": float(e.mean()),
        "max_squared_error": float(e.max()),
        "colour_scale_max": vmax,
    }


def reconstruction_figure(
    original: Image.Image | np.ndarray,
    decoded: Image.Image | np.ndarray,
    title: str | None = None,
    box: tuple[int, int, int, int] | None = None,
    crop_size: int = 96,
    width: float = 10.0,
    bpp: float | None = None,
) -> Figure:
    """The original and the reconstruction side by side, with the error map and zoomed crops.

    Top row: original (the crop outlined), reconstruction with its PSNR (and bpp when given),
    error map (squared error per pixel, mean over channels). Bottom row: the crop of each,
    enlarged without interpolation, and the crop of the error map.

    The data attached to the figure (:mod:`gabic.figure_data`) has one row per region,
    ``image`` and ``crop``: ``region``, the box ``left, top, right, bottom`` (pixels, right and
    bottom excluded), ``bpp`` (the image's, when given), ``psnr_db``, ``mse`` and
    ``max_squared_error`` (8-bit levels², mean over channels) and ``colour_scale_max`` (the
    squared error at which the error maps' colours saturate).

    Args:
        original, decoded: RGB images of the same size.
        title: figure title (e.g. the codec, bpp and PSNR); default none.
        box: the crop ``(left, top, right, bottom)``; default None: :func:`worst_crop` with
            ``crop_size``.
        crop_size: side of the automatic crop in pixels (default 96).
        width: figure width in inches (default 10).
        bpp: the reconstruction's rate, shown in its title and kept in the data; default None.
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
    rate = "" if bpp is None else f"{bpp:.3f} bpp, "
    panels = [
        (a, "original"),
        (b, f"reconstruction ({rate}{quality:.2f} dB)"),
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
    rows = [_region_row("image", (0, 0, w, h), a, b, err, vmax), _region_row("crop", (left, top, right, bottom), a, b, err, vmax)]
    for row in rows:
        row["bpp"] = bpp if row["region"] == "image" else None
    attach_data(fig, rows, name="regions")
    return fig


def comparison_figure(
    original: Image.Image | np.ndarray,
    reconstructions: Mapping[str, Image.Image | np.ndarray],
    bpp: Mapping[str, float] | None = None,
    title: str | None = None,
    width: float = 10.0,
) -> Figure:
    """The original and one or more reconstructions of it side by side, each titled with its
    label, bpp (when given) and PSNR, e.g. a model before and after training, or two codecs.

    The data attached to the figure (:mod:`gabic.figure_data`) has one row per panel:
    ``panel`` (``"original"`` or the label), ``width``, ``height`` (pixels), ``bpp`` (None for
    the original and where not given), ``psnr_db`` (None for the original) and ``mse`` (8-bit
    levels², mean over pixels and channels).

    Args:
        original: the RGB image coded.
        reconstructions: ``{label: decoded RGB image}`` (same size as ``original``), in panel order.
        bpp: ``{label: bits per pixel}`` for some or all of the reconstructions; default None.
        title: figure title; default none.
        width: figure width in inches (default 10); the height follows the image's aspect.

    Raises:
        ValueError: no reconstructions, or an image of another size or not RGB (naming it).
    """
    from matplotlib.figure import Figure

    if not reconstructions:
        raise ValueError("comparison_figure: no reconstructions given")
    bpp = dict(bpp or {})
    unknown = sorted(set(bpp) - set(reconstructions))
    if unknown:
        raise ValueError(f"comparison_figure: bpp given for {unknown}, which are not among the reconstructions")
    a = _pixels(original, "original")
    h, w = a.shape[:2]
    n = len(reconstructions) + 1
    fig = Figure(figsize=(width, width / n * h / w + 0.6 + (0.3 if title else 0)), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    axes[0].imshow(a, interpolation="nearest")
    axes[0].set(title=f"original ({w}x{h})", xticks=[], yticks=[])
    rows = [{"panel": "original", "width": w, "height": h, "bpp": None, "psnr_db": None, "mse": None}]
    for ax, (label, decoded) in zip(axes[1:], reconstructions.items(), strict=True):
        a, b = _pair(original, decoded)
        quality = psnr(a, b)
        rate = "" if bpp.get(label) is None else f"{bpp[label]:.3f} bpp, "
        db = "∞" if math.isinf(quality) else f"{quality:.2f}"
        ax.imshow(b, interpolation="nearest")
        ax.set(title=f"{label}: {rate}{db} dB", xticks=[], yticks=[])
        rows.append(
            {"panel": label, "width": w, "height": h, "bpp": bpp.get(label), "psnr_db": quality, "mse": float(error_map(a, b).mean())}
        )
    for ax in axes:
        ax.title.set_fontsize("medium" if n <= 3 else "small")
    if title:
        fig.suptitle(title)
    attach_data(fig, rows, name="panels")
    return fig


def stream_size_figure(result: dict[str, Any], point: int | None = None, width: float = 7.0) -> Figure:
    """Bytes of the y and z streams per image, stacked bars, for one point of a checkpoint
    evaluation (:func:`gabic.evaluate.evaluate_checkpoints`; its ``per_image`` holds
    ``y_bytes`` and ``z_bytes``).

    The data attached to the figure (:mod:`gabic.figure_data`) has one row per image:
    ``image``, ``point`` (index of the RD point), ``setting`` (its checkpoint, quality or lambda,
    :func:`gabic.results.point_labels`), ``y_bytes``, ``z_bytes``, ``total_bytes``, ``z_share``
    (z's share of the total, 0..1) and, where the file has them, the image's ``bpp``.

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
    point = point % n
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
    setting = point_labels(result)[point]
    rows = []
    for name, yi, zi in zip(names, y, z, strict=True):
        row = {"image": name, "point": point, "setting": setting, "y_bytes": int(yi), "z_bytes": int(zi), "total_bytes": int(yi + zi)}
        row["z_share"] = float(zi / (yi + zi))
        bpps = per_image[name].get("bpp")
        row["bpp"] = bpps[point] if isinstance(bpps, list) and len(bpps) == n else None
        rows.append(row)
    attach_data(fig, rows, name="stream_sizes")
    return fig
