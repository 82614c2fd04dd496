"""Looking at decoded images: error maps, the crop where a codec errs most, a figure with the
original, the reconstruction, zoomed crops of both and the error map, a figure comparing several
reconstructions of one image, and the stream sizes of a checkpoint evaluation.

Every function takes 8-bit RGB images (PIL images or ``(H, W, 3)`` uint8 arrays) of the same
size; figures are :class:`matplotlib.figure.Figure` objects ready for ``savefig`` and carry the
numbers they show (:mod:`gabic.figure_data`; :func:`gabic.plots.save_figure` writes them as CSV).
matplotlib (the ``plots`` extra) is imported by the drawing functions: the error maps and crops
need only numpy.

Type is set in points, as in the RD figures (:data:`gabic.plots.FONT_SIZE` for titles and axis
labels, :data:`gabic.plots.LEGEND_FONT_SIZE`, 7 pt, for tick labels, legends and notes), so a
figure drawn at the width it is printed at (``width="single"``, 3.5 in, or ``"double"``) keeps it
at 7 pt or more; the panels are laid out for that width (fewer side by side on a narrow figure).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from gabic.checks import check_int
from gabic.figure_data import attach_data
from gabic.figure_layout import FONT_SIZE, LEGEND_FONT_SIZE, WIDE_LAYOUT, figure_width, fit_lines, text_height, text_width
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
    width: str | float = 10.0,
    bpp: float | None = None,
) -> Figure:
    """The original and the reconstruction side by side, with the error map and zoomed crops.

    The original (the crop outlined), the reconstruction with its PSNR (and bpp when given) and
    the error map (squared error per pixel, mean over channels), each beside or above the crop of
    it, enlarged without interpolation: on a figure :data:`WIDE_LAYOUT` inches wide or more, the
    whole images in the top row and their crops in the bottom row (colour bar on the right); on a
    narrower one (one column), one row per image, the crop on the right (colour bar at the bottom).
    The axes are made in the order original, reconstruction, error map, then their crops.

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
        width: figure width: ``"single"`` (one column, 3.5 in), ``"double"`` (7.16 in) or inches
            (default 10); the height follows the image's aspect.
        bpp: the reconstruction's rate, shown in its title and kept in the data; default None.

    Raises:
        ValueError: images not RGB or of different sizes, a box outside the image, a bad width.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig_width = figure_width(width)
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
    wide = fig_width >= WIDE_LAYOUT
    rows, cols = (2, 3) if wide else (3, 2)
    bar = 0.8 if wide else 0.0  # the colour bar's width on the right (below, on a narrow figure)
    panel = (fig_width - bar) / cols - 0.1
    rate = "" if bpp is None else f"{bpp:.3f} bpp, "
    panels = [
        (a, ["original"]),
        (b, ["reconstruction", f"({rate}{quality:.2f} dB)"]),
        (err, ["squared error", "(top 0.5 % saturated)"]),
        (a[top:bottom, left:right], ["original,", "crop", f"at ({left}, {top})"]),
        (b[top:bottom, left:right], ["reconstruction,", "crop"]),
        (err[top:bottom, left:right], ["squared error,", "crop"]),
    ]
    labels = [fit_lines(pieces, panel, FONT_SIZE) for _, pieces in panels]
    title_height = max(text_height(label, FONT_SIZE) for label in labels)
    height = rows * (panel * h / w + title_height + 0.05) + (0 if wide else 0.75)
    if title:
        title = fit_lines(title.split(" "), fig_width - 0.2, FONT_SIZE + 1)
        height += text_height(title, FONT_SIZE + 1)
    fig = Figure(figsize=(fig_width, height + 0.1), layout="constrained")
    grid = fig.add_gridspec(rows, cols)
    places = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)] if wide else [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    axes = [fig.add_subplot(grid[r, c]) for r, c in places]
    for i, (ax, (pixels, _), label) in enumerate(zip(axes, panels, labels, strict=True)):
        if pixels.ndim == 2:
            im = ax.imshow(pixels, cmap="inferno", vmin=0, vmax=vmax, interpolation="nearest")
        else:
            ax.imshow(pixels, interpolation="nearest")
        ax.set(xticks=[], yticks=[])
        ax.set_title(label, fontsize=FONT_SIZE)
        if i < 3:
            ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, ec="cyan", lw=1.2))
    errors = [axes[2], axes[5]]
    bar_args = {"shrink": 0.8} if wide else {"location": "bottom", "shrink": 0.9, "aspect": 30}
    colorbar = fig.colorbar(im, ax=errors, **bar_args)
    colorbar.set_label("squared error (8-bit levels²)", fontsize=LEGEND_FONT_SIZE)
    colorbar.ax.tick_params(labelsize=LEGEND_FONT_SIZE)
    if title:
        fig.suptitle(title, fontsize=FONT_SIZE + 1)
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
    width: str | float = 10.0,
) -> Figure:
    """The original and one or more reconstructions of it side by side, each titled with its
    label, bpp (when given) and PSNR, e.g. a model before and after training, or two codecs.

    As many panels go side by side as leave each title room on one line (at least one); the
    others follow in more rows, in order.

    The data attached to the figure (:mod:`gabic.figure_data`) has one row per panel:
    ``panel`` (``"original"`` or the label), ``width``, ``height`` (pixels), ``bpp`` (None for
    the original and where not given), ``psnr_db`` (None for the original) and ``mse`` (8-bit
    levels², mean over pixels and channels).

    Args:
        original: the RGB image coded.
        reconstructions: ``{label: decoded RGB image}`` (same size as ``original``), in panel order.
        bpp: ``{label: bits per pixel}`` for some or all of the reconstructions; default None.
        title: figure title; default none.
        width: figure width: ``"single"`` (one column, 3.5 in), ``"double"`` (7.16 in) or inches
            (default 10); the height follows the image's aspect and the rows.

    Raises:
        ValueError: no reconstructions, or an image of another size or not RGB (naming it), or a
            bad width.
    """
    from matplotlib.figure import Figure

    if not reconstructions:
        raise ValueError("comparison_figure: no reconstructions given")
    fig_width = figure_width(width)
    bpp = dict(bpp or {})
    unknown = sorted(set(bpp) - set(reconstructions))
    if unknown:
        raise ValueError(f"comparison_figure: bpp given for {unknown}, which are not among the reconstructions")
    a = _pixels(original, "original")
    h, w = a.shape[:2]
    titles = [[f"original ({w}x{h})"]]
    rows = [{"panel": "original", "width": w, "height": h, "bpp": None, "psnr_db": None, "mse": None}]
    decoded_images = []
    for label, decoded in reconstructions.items():
        a, b = _pair(original, decoded)
        quality = psnr(a, b)
        rate = "" if bpp.get(label) is None else f"{bpp[label]:.3f} bpp, "
        db = "∞" if math.isinf(quality) else f"{quality:.2f}"
        titles.append([f"{label}:", f"{rate}{db} dB"])
        decoded_images.append(b)
        rows.append(
            {"panel": label, "width": w, "height": h, "bpp": bpp.get(label), "psnr_db": quality, "mse": float(error_map(a, b).mean())}
        )
    n = len(titles)
    needed = max(text_width(" ".join(t), FONT_SIZE) for t in titles) + 0.1  # inches a title takes on one line, with a gap
    cols = max(1, min(n, int(fig_width // needed)))
    grid_rows = math.ceil(n / cols)
    panel = fig_width / cols - 0.1
    labels = [fit_lines(t, panel, FONT_SIZE) for t in titles]
    height = grid_rows * (panel * h / w + max(text_height(label, FONT_SIZE) for label in labels) + 0.05)
    if title:
        title = fit_lines(title.split(" "), fig_width - 0.2, FONT_SIZE + 1)
        height += text_height(title, FONT_SIZE + 1)
    fig = Figure(figsize=(fig_width, height + 0.1), layout="constrained")
    axes = fig.subplots(grid_rows, cols, squeeze=False).reshape(-1)
    for ax in axes[n:]:
        fig.delaxes(ax)
    for ax, pixels, label in zip(axes, [a, *decoded_images], labels, strict=False):
        ax.imshow(pixels, interpolation="nearest")
        ax.set(xticks=[], yticks=[])
        ax.set_title(label, fontsize=FONT_SIZE)
    if title:
        fig.suptitle(title, fontsize=FONT_SIZE + 1)
    attach_data(fig, rows, name="panels")
    return fig


def stream_size_figure(result: dict[str, Any], point: int | None = None, width: str | float = 7.0) -> Figure:
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
        width: figure width: ``"single"`` (one column, 3.5 in), ``"double"`` (7.16 in) or inches
            (default 7); the height follows the number of images.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig_width = figure_width(width)
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
    title = fit_lines([f"{result.get('name', '')}:", "stream sizes,", f"point {point}"], fig_width - 0.2, FONT_SIZE)
    height = max(0.2 * len(names), 0.6) + 1.0 + text_height(title, FONT_SIZE)
    fig = Figure(figsize=(fig_width, height), layout="constrained")
    ax = fig.subplots()
    ax.barh(names, y, label="y (latent)")
    ax.barh(names, z, left=y, label="z (hyper-latent)")
    for i, (yi, zi) in enumerate(zip(y, z, strict=True)):
        ax.text(yi + zi, i, f" {100 * zi / (yi + zi):.1f}% z", va="center", fontsize=LEGEND_FONT_SIZE)
    ax.invert_yaxis()
    # room on the right of the longest bar for its share: the label's width over the plot's (an estimate before layout)
    plot_in = max(fig_width - max(text_width(name, LEGEND_FONT_SIZE) for name in names) - 0.35, 0.5)
    label_in = text_width(" 100.0% z", LEGEND_FONT_SIZE) + 0.05
    ax.set_xlim(0, float((y + z).max()) / max(1.0 - label_in / plot_in, 0.4))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=max(2, int(plot_in / 0.7)), integer=True))
    ax.set_xlabel("bytes", fontsize=FONT_SIZE)
    ax.set_title(title, fontsize=FONT_SIZE)
    ax.tick_params(labelsize=LEGEND_FONT_SIZE)
    fig.legend(loc="outside lower center", ncols=2, fontsize=LEGEND_FONT_SIZE, frameon=False)
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
