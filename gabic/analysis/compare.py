"""Two models on one image, region by region: where one spends fewer bits for the same error.

:func:`compare_models` codes the image with both models for real (:func:`gabic.measurement.measure`:
the decoded images and the bitstreams' bpp) and takes each model's bits per latent position from
its entropy model (:func:`gabic.analysis.latent.latent_capture`). The image is cut into tiles
aligned with the models' own grid (the padded image, :func:`gabic.images.pad`; a tile is a
multiple of 64 pixels, so it holds whole latent and hyper-latent positions); each tile gets, per
model, its bits (latent + hyper-latent, so that the tiles sum to the likelihood rate), its bpp
over the image pixels it covers, the PSNR and (tiles of 161 pixels or more a side) MS-SSIM of the
decoded pixels, and the texture of the original there (:func:`gradient_energy`).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import Tensor

from gabic.analysis.latent import LatentCapture, check_tile, latent_capture
from gabic.images import PAD_MULTIPLE, as_rgb, pad_offset
from gabic.measurement import Measurement, measure
from gabic.metrics import MS_SSIM_MIN_SIDE, ms_ssim, psnr
from gabic.models import LearnedCodec
from gabic.names import display_name

__all__ = [
    "ROLES",
    "TILE_COLUMNS",
    "ModelComparison",
    "check_tile",
    "compare_models",
    "comparison_of",
    "gradient_energy",
    "image_tile_boxes",
    "pair_names",
    "tile_boxes",
    "tile_quality",
]

#: The two sides of a comparison, in order: the keys of a report's per-model entries and names
#: (:func:`gabic.analysis.compare_report`); ``a`` and ``b`` of :class:`ModelComparison` are the same two.
ROLES = ("first", "second")

#: The columns of :attr:`ModelComparison.tiles`, in order (``_a``/``_b``: the first/second model).
TILE_COLUMNS = (
    "tile_row",
    "tile_col",
    "top",
    "left",
    "bottom",
    "right",
    "pixels",
    "gradient_energy",
    "bits_a",
    "bits_b",
    "bpp_a",
    "bpp_b",
    "psnr_a",
    "psnr_b",
    "ms_ssim_a",
    "ms_ssim_b",
    "delta_bpp",
    "delta_psnr",
)


def pair_names(first: str, second: str, names: Sequence[str] | None = None) -> tuple[str, str]:
    """The labels of two compared models: ``names`` when given (two different strings), else the
    display names of their architectures ``first`` and ``second`` ("GABIC", "WACNN"), numbered
    "(1)", "(2)" when both are the same architecture.

    Raises:
        ValueError: ``names`` that are not two different non-empty strings.
    """
    if names is not None:
        names = tuple(names)
        if len(names) != 2 or not all(isinstance(n, str) and n.strip() for n in names) or names[0] == names[1]:
            raise ValueError(f"names must be two different labels, got {names!r}")
        return names[0], names[1]
    a, b = display_name(first), display_name(second)
    return (f"{a} (1)", f"{b} (2)") if a == b else (a, b)


def checkpoint_labels(first: str | os.PathLike, second: str | os.PathLike) -> tuple[str, str]:
    """Labels that tell two checkpoint files apart: their names, with as many of their folders in front
    as it takes (``demo/best.pth.tar`` and ``demo-wacnn/best.pth.tar`` rather than ``best.pth.tar`` twice)."""
    a, b = Path(first).resolve().parts, Path(second).resolve().parts
    for n in range(1, max(len(a), len(b)) + 1):
        la, lb = "/".join(a[-n:]), "/".join(b[-n:])
        if la != lb:
            return la, lb
    return str(first), str(second)


def check_different_checkpoints(first: Sequence[str | os.PathLike], second: Sequence[str | os.PathLike]) -> None:
    """Raise ValueError when a checkpoint is on both sides of a comparison: the same file, or two files
    with the same bytes (a model compared with itself). Each path is resolved once, and a file is read
    (hashed) only when a file of the same size is on the other side, at most once."""
    digests: dict[Path, str] = {}

    def digest(path: Path) -> str:
        if path not in digests:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            digests[path] = h.hexdigest()
        return digests[path]

    same = "the same checkpoint on both sides of the comparison; compare a model with another one"
    others = [(b, Path(b).resolve()) for b in second]
    for a in first:
        pa = Path(a).resolve()
        for b, pb in others:
            if pa == pb:
                raise ValueError(f"{a}: {same}")
            if pa.stat().st_size == pb.stat().st_size and digest(pa) == digest(pb):
                raise ValueError(f"{a} and {b} (the same bytes): {same}")


def gradient_energy(pixels: np.ndarray | Image.Image) -> float:
    """Texture of an 8-bit RGB region ``(H, W, 3)``: the mean squared gradient of its luma (BT.601,
    0..255) by forward differences, ``mean(dx^2) + mean(dy^2)`` over the differences inside the
    region (0 for a flat region; NaN for a single pixel)."""
    a = np.asarray(pixels, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"gradient_energy needs an (H, W, 3) RGB region, got shape {a.shape}")
    luma = a @ np.array([0.299, 0.587, 0.114])
    dx, dy = np.diff(luma, axis=1), np.diff(luma, axis=0)
    if dx.size == 0 and dy.size == 0:
        return math.nan
    return float((dx**2).mean() if dx.size else 0.0) + float((dy**2).mean() if dy.size else 0.0)


def tile_boxes(capture: LatentCapture, tile: int) -> list[tuple[int, int, tuple[int, int, int, int]]]:
    """The tiles of ``tile`` pixels on the padded grid of ``capture``, as ``(tile_row, tile_col,
    (top, left, bottom, right))`` boxes in original-image pixels, clipped to the image (bottom/right
    excluded), row-major. Tiles that hold no image pixel are left out."""
    return _boxes(capture.image_size, capture.padded_size, capture.offset, tile)


def image_tile_boxes(height: int, width: int, tile: int) -> list[tuple[int, int, tuple[int, int, int, int]]]:
    """:func:`tile_boxes` of a ``height x width`` image without its capture: the same grid, the image
    padded to a multiple of 64 as :func:`gabic.images.pad` pads it (:func:`gabic.images.pad_offset`)."""
    padded = (-(-height // PAD_MULTIPLE) * PAD_MULTIPLE, -(-width // PAD_MULTIPLE) * PAD_MULTIPLE)
    return _boxes((height, width), padded, pad_offset(height, width), tile)


def _boxes(
    image_size: tuple[int, int], padded_size: tuple[int, int], offset: tuple[int, int], tile: int
) -> list[tuple[int, int, tuple[int, int, int, int]]]:
    check_tile(tile)
    (H, W), (Hp, Wp), (top, left) = image_size, padded_size, offset
    boxes = []
    for i in range(math.ceil(Hp / tile)):
        for j in range(math.ceil(Wp / tile)):
            t, lft = max(0, i * tile - top), max(0, j * tile - left)
            b, r = min(H, (i + 1) * tile - top), min(W, (j + 1) * tile - left)
            if b > t and r > lft:
                boxes.append((i, j, (t, lft, b, r)))
    return boxes


@dataclass
class ModelComparison:
    """Two models on one image (:func:`compare_models`).

    Attributes:
        names: the two models' labels ``(a, b)``.
        image: the original 8-bit RGB image.
        measurements: each model's :class:`~gabic.measurement.Measurement` (real coding).
        captures: each model's :class:`~gabic.analysis.latent.LatentCapture` (bits per position).
        tile: the tile side in pixels.
        tiles: one dict per tile with :data:`TILE_COLUMNS`.
    """

    names: tuple[str, str]
    image: Image.Image = field(repr=False)
    measurements: tuple[Measurement, Measurement] = field(repr=False)
    captures: tuple[LatentCapture, LatentCapture] = field(repr=False)
    tile: int
    tiles: list[dict[str, Any]] = field(repr=False)

    @property
    def bits_maps(self) -> tuple[Tensor, Tensor]:
        """Each model's latent bits per position ``(h, w)`` (summed over channels)."""
        return self.captures[0].bits_map, self.captures[1].bits_map

    @property
    def difference(self) -> Tensor:
        """``b - a`` of the latent bits per position ``(h, w)`` (positive: b spends more)."""
        a, b = self.bits_maps
        return b - a

    def column(self, name: str) -> np.ndarray:
        """One column of :attr:`tiles` as a float array (tiles in row-major order)."""
        if name not in TILE_COLUMNS:
            raise KeyError(f"{name!r}: the tile table has {', '.join(TILE_COLUMNS)}")
        return np.array([row[name] for row in self.tiles], dtype=np.float64)

    def summary(self) -> dict[str, Any]:
        """Per model: the bitstream's bpp, the likelihood bpp, PSNR and MS-SSIM of the whole image;
        and the share of tiles where b spends fewer bits."""
        out: dict[str, Any] = {"tile": self.tile, "tiles": len(self.tiles)}
        for key, name, m, c in zip("ab", self.names, self.measurements, self.captures, strict=True):
            out[key] = {"name": name, "bpp": m.bpp, "bpp_likelihoods": c.bpp, "psnr_rgb": m.psnr_rgb, "ms_ssim_rgb": m.ms_ssim_rgb}
        d = self.column("delta_bpp")
        out["share_tiles_b_fewer_bits"] = float((d < 0).mean()) if d.size else math.nan
        return out


def tile_quality(image: str | os.PathLike | Image.Image, decoded: Image.Image, tile: int) -> list[tuple[float, float]]:
    """``(psnr, ms_ssim)`` of the decoded pixels of each tile of :func:`image_tile_boxes` (in its
    order) against the original ``image``: MS-SSIM on tiles of :data:`gabic.metrics.MS_SSIM_MIN_SIDE`
    (161) pixels or more a side, NaN on smaller ones. What the tile comparison needs of a decoded
    image, so that a caller keeps these numbers rather than the image (:func:`gabic.analysis.compare_report`)."""
    ref, dec = np.asarray(as_rgb(image)), np.asarray(decoded)
    if ref.shape != dec.shape:
        raise ValueError(f"the decoded image is {dec.shape[1]}x{dec.shape[0]}, the original {ref.shape[1]}x{ref.shape[0]}")
    out = []
    for _, _, (t, lft, b, r) in image_tile_boxes(ref.shape[0], ref.shape[1], tile):
        ms = ms_ssim(ref[t:b, lft:r], dec[t:b, lft:r]) if min(b - t, r - lft) >= MS_SSIM_MIN_SIDE else math.nan
        out.append((psnr(ref[t:b, lft:r], dec[t:b, lft:r]), ms))
    return out


def _tile_rows(
    image: np.ndarray,
    quality: tuple[list[tuple[float, float]], list[tuple[float, float]]],
    captures: tuple[LatentCapture, LatentCapture],
    tile: int,
):
    bits = [c.tile_bits(tile) for c in captures]
    boxes = tile_boxes(captures[0], tile)
    if not len(boxes) == len(quality[0]) == len(quality[1]):
        raise ValueError(f"{len(boxes)} tiles of {tile} pixels, but the tile quality of {len(quality[0])} and {len(quality[1])}")
    rows = []
    for n, (i, j, (t, lft, b, r)) in enumerate(boxes):
        ref = image[t:b, lft:r]
        row: dict[str, Any] = {"tile_row": i, "tile_col": j, "top": t, "left": lft, "bottom": b, "right": r}
        row["pixels"] = (b - t) * (r - lft)
        row["gradient_energy"] = gradient_energy(ref)
        for key, q, tb in zip("ab", quality, bits, strict=True):
            row[f"bits_{key}"] = float(tb[i, j])
            row[f"bpp_{key}"] = float(tb[i, j]) / row["pixels"]
            row[f"psnr_{key}"], row[f"ms_ssim_{key}"] = q[n]
        row["delta_bpp"] = row["bpp_b"] - row["bpp_a"]
        row["delta_psnr"] = row["psnr_b"] - row["psnr_a"]
        rows.append({k: row[k] for k in TILE_COLUMNS})
    return rows


def comparison_of(
    names: tuple[str, str],
    image: Image.Image,
    measurements: tuple[Measurement, Measurement],
    captures: tuple[LatentCapture, LatentCapture],
    tile: int,
    quality: tuple[list[tuple[float, float]], list[tuple[float, float]]] | None = None,
) -> ModelComparison:
    """The :class:`ModelComparison` of two models already measured (:func:`gabic.measurement.measure`)
    and captured (:func:`~gabic.analysis.latent.latent_capture`) on the 8-bit RGB ``image``: what
    :func:`compare_models` does after its coding. ``quality``: each model's :func:`tile_quality`,
    default None: from the measurements' decoded images (give it when those were not kept)."""
    if quality is None:
        quality = (tile_quality(image, measurements[0].decoded, tile), tile_quality(image, measurements[1].decoded, tile))
    rows = _tile_rows(np.asarray(image), quality, captures, tile)
    return ModelComparison(tuple(names), image, measurements, captures, tile, rows)


def compare_models(
    model_a: LearnedCodec,
    model_b: LearnedCodec,
    image: str | os.PathLike | Image.Image,
    tile: int = 64,
    names: tuple[str, str] | None = None,
) -> ModelComparison:
    """Compare two learned codecs on one image, tile by tile.

    Args:
        model_a, model_b: learned codecs with updated entropy tables (e.g. a GABIC and a WACNN
            checkpoint at nearby rates, from :func:`gabic.load_checkpoint`).
        image: a path or a PIL image (converted to 8-bit RGB).
        tile: tile side in pixels, a multiple of 64 (default 64: 4x4 latent positions, one
            hyper-latent position); MS-SSIM is measured on tiles of at least 161 pixels a side.
        names: labels of the two models (default :func:`pair_names`: their architectures' display
            names, "GABIC", "WACNN").

    Returns:
        A :class:`ModelComparison`. The tiles' bits sum to each model's likelihood rate; the
        whole-image numbers come from the real bitstreams.

    Raises:
        ValueError: a tile that is not a multiple of 64.
    """
    check_tile(tile)
    img = as_rgb(image)
    captures = (latent_capture(model_a, img), latent_capture(model_b, img))
    measurements = (measure(model_a, img), measure(model_b, img))
    return comparison_of(pair_names(model_a.name, model_b.name, names), img, measurements, captures, tile)
