"""The results dict of an experiment over a set of images: RD points as means over the images,
sorted by rate, with per-image values (CompressAI's results schema plus ``meta`` and ``per_image``)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gabic.image_sets import Images
from gabic.metrics import ms_ssim_db
from gabic.results import finite_or_none, save

__all__ = [
    "CHECKPOINT_KEYS",
    "CHECKPOINT_PER_IMAGE",
    "CODEC_KEYS",
    "CODEC_PER_IMAGE",
    "Point",
    "curve",
    "mean_over_images",
    "write_results",
]

logger = logging.getLogger(__name__)

#: What a codec's and a checkpoint's curve hold, per point (means) and per image.
CODEC_KEYS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb", "encoding_time", "decoding_time")
CODEC_PER_IMAGE = ("bpp", "psnr-rgb", "ms-ssim-rgb")
CHECKPOINT_KEYS = ("bpp", "bpp-likelihoods", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb", "encoding_time", "decoding_time")
CHECKPOINT_PER_IMAGE = (
    "bpp",
    "bpp-likelihoods",
    "bpp-file",
    "y_bytes",
    "z_bytes",
    "psnr-rgb",
    "ms-ssim-rgb",
    "encoding_time",
    "decoding_time",
)
_MS_SSIM_KEYS = ("ms-ssim-rgb", "ms-ssim-db-rgb")


def mean_over_images(rows: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    """One RD point: the mean of each measure over the images (as CompressAI's bench and
    eval_model average them); ``ms-ssim-db-rgb`` from the mean MS-SSIM (NaN when an image has none)."""
    mean = {k: float(np.mean([row[k] for row in rows])) for k in keys if k != "ms-ssim-db-rgb"}
    if "ms-ssim-db-rgb" in keys:
        msssim = mean["ms-ssim-rgb"]
        mean["ms-ssim-db-rgb"] = math.nan if math.isnan(msssim) else ms_ssim_db(msssim)
    return mean


@dataclass
class Point:
    """One RD point before sorting: per-image rows, their mean, per-point meta (quality, lambda...)."""

    rows: list[dict[str, Any]]
    mean: dict[str, float]
    meta: dict[str, Any]


def curve(
    points: list[Point], images: Images, keys: Sequence[str], per_image_keys: Sequence[str], meta: dict[str, Any]
) -> tuple[dict[str, list], dict[str, Any], dict[str, dict[str, list]]]:
    """``results``, ``meta`` and ``per_image`` of a curve: points sorted by mean bpp with every
    list in the same order (per-point meta lists too); MS-SSIM left out of ``results`` where an
    image is too small for it, with a note in ``meta["omitted"]``."""
    order = sorted(range(len(points)), key=lambda i: (points[i].mean["bpp"], i))
    points = [points[i] for i in order]
    results = {k: [p.mean[k] for p in points] for k in keys}
    meta = {
        "kind": "measured",
        "dataset": images.dataset,
        "num_images": len(images.names),
        "image_set": images.image_set,
        **meta,
        **{k: [p.meta[k] for p in points] for k in points[0].meta},
    }
    undefined = sorted({images.names[i] for p in points for i, row in enumerate(p.rows) if math.isnan(row["ms-ssim-rgb"])})
    if undefined:  # the schema holds finite numbers only: leave the undefined metric out, and say so
        logger.warning(
            "MS-SSIM is undefined for %d image(s) under 161 px a side (%s): left out of the results",
            len(undefined),
            ", ".join(undefined),
        )
        for k in _MS_SSIM_KEYS:
            results.pop(k, None)
        meta["omitted"] = f"MS-SSIM: undefined for images under 161 px a side ({', '.join(undefined)})"
    per_image = {
        name: {k: [finite_or_none(p.rows[i][k]) for p in points] for k in per_image_keys} for i, name in enumerate(images.names)
    }
    return results, meta, per_image


def write_results(result: dict, path: str | os.PathLike) -> Path:
    """Validate a results dict and write it as JSON to ``path`` atomically (:func:`gabic.results.save`)."""
    return save(result, path)
