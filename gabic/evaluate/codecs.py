"""RD sweeps of classical codecs over a set of images, in worker processes."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from gabic._version import __version__
from gabic.checks import check_int
from gabic.codecs import Codec, get_codec
from gabic.errors import CodecError
from gabic.evaluate.results import CODEC_KEYS, CODEC_PER_IMAGE, Point, curve, mean_over_images
from gabic.image_sets import read_images
from gabic.images import load_image, pixels_only
from gabic.measurement import measure

__all__ = ["evaluate_codec"]

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _load_pixels(path: str) -> Image.Image:
    """The image at ``path`` as metadata-free RGB pixels; cached because the jobs of one image
    are submitted one after the other."""
    return pixels_only(load_image(path)[0])


def _init_worker() -> None:
    """Worker process set-up: one torch thread (MS-SSIM), as PyTorch's DataLoader workers do,
    so that N workers use N cores and a forked child never re-enters the parent's OpenMP pool."""
    torch.set_num_threads(1)


def _run_job(codec_name: str, path: str, quality: int) -> dict[str, Any]:
    """One (image, quality) job, in a worker process or in this one: :func:`~gabic.measurement.measure`'s record."""
    return measure(get_codec(codec_name), _load_pixels(path), quality).record()


def _mp_context():
    """``fork`` where the platform offers it (workers start in milliseconds instead of
    re-importing torch), otherwise the platform's default (``spawn`` on macOS and Windows)."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _check_qualities(codec: Codec, qualities) -> list[int]:
    if qualities is None:
        return list(codec.default_qualities)
    if isinstance(qualities, int | str) or not hasattr(qualities, "__iter__"):
        qualities = [qualities]
    qs = [codec.check_quality(q) for q in qualities]
    if not qs:
        raise CodecError(f"codec {codec.name!r}: no quality settings given")
    duplicates = sorted({q for q in qs if qs.count(q) > 1})
    if duplicates:
        raise CodecError(f"codec {codec.name!r}: quality settings repeated: {', '.join(map(str, duplicates))}")
    return qs


def _check_workers(workers: int | None) -> int:
    if workers is None:
        return os.cpu_count() or 1
    return check_int(workers, "workers", 1)


def _run_jobs(codec: Codec, paths: list[Path], qs: list[int], workers: int, progress: bool) -> dict[tuple[int, int], dict]:
    """Every (image i, quality j) job, in ``workers`` processes (1: in this one), one progress bar."""
    jobs = [(i, j) for i in range(len(paths)) for j in range(len(qs))]  # image-major: the cache hits
    values: dict[tuple[int, int], dict[str, Any]] = {}
    workers = min(workers, len(jobs))
    logger.info("%s: %d images x %d qualities on %d worker(s)", codec.name, len(paths), len(qs), workers)
    try:
        with tqdm(total=len(jobs), desc=codec.name, unit="job", disable=not progress) as bar:
            if workers == 1:
                for i, j in jobs:
                    values[i, j] = _run_job(codec.name, str(paths[i]), qs[j])
                    bar.update(1)
                return values
            with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(), initializer=_init_worker) as pool:
                futures: dict[Future, tuple[int, int]] = {
                    pool.submit(_run_job, codec.name, str(paths[i]), qs[j]): (i, j) for i, j in jobs
                }
                try:
                    for future in as_completed(futures):
                        values[futures[future]] = future.result()
                        bar.update(1)
                except BaseException:  # a failed job or Ctrl-C: drop the queued jobs, do not wait for them
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        _load_pixels.cache_clear()
    return values


def evaluate_codec(
    name: str,
    dataset: str | os.PathLike | None = None,
    qualities: list[int] | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Rate-distortion sweep of a classical codec over a folder of images.

    For every quality and every image, :func:`gabic.measurement.measure`: bpp (``bytes * 8 /
    pixels``), PSNR and MS-SSIM on the 8-bit RGB images, encoding and decoding wall times; then
    the mean over images per quality, as CompressAI's bench computes them. ``ms-ssim-db-rgb`` is
    ``-10 log10(1 - mean MS-SSIM)``. MS-SSIM is undefined for images under 161 pixels a side:
    it is recorded as null for them in ``per_image`` and the MS-SSIM columns are left out of
    ``results`` (a mean over fewer images than the other columns would not pair with them),
    with a note in ``meta["omitted"]``.

    Args:
        name: registered codec name (see :func:`gabic.codecs.list_codecs`).
        dataset: folder of images (not recursive; see :func:`gabic.data.list_images`); default
            None: the embedded sample photographs (:func:`gabic.data.samples`).
        qualities: quality settings; default None: the codec's ``default_qualities``.
        workers: processes to run the (image, quality) jobs in; default None: ``os.cpu_count()``;
            1 runs everything in this process.
        progress: show one tqdm bar over all (image, quality) jobs.

    Returns:
        ``{"name", "description", "results": {"bpp", "psnr-rgb", "ms-ssim-rgb",
        "ms-ssim-db-rgb", "encoding_time", "decoding_time"}, "meta": {"kind", "dataset",
        "num_images", "image_set", "quality", "codec", "source", "versions"}, "per_image": {file
        name: {"bpp", "psnr-rgb", "ms-ssim-rgb"}}}``, one entry per quality in every list, all
        sorted together by mean bpp (``meta["quality"][i]`` is the setting of point ``i``; the
        per-image lists follow the same order).

    Raises, before any coding starts:
        CodecError: unknown or unavailable codec, a quality outside the codec's range, no or
            repeated qualities.
        DataError: a missing folder, or one without images.
        ImageError: an unreadable image (naming the file): every image is read once first, so
            a bad file stops the sweep instead of being skipped silently.
        ValueError: ``workers`` below 1.
    """
    codec = get_codec(name)
    codec.require()
    qs = _check_qualities(codec, qualities)
    workers = _check_workers(workers)
    images = read_images(dataset, load=False)  # the jobs read the pixels themselves (in the workers)
    values = _run_jobs(codec, images.paths, qs, workers, progress)
    points = []
    for j, q in enumerate(qs):
        rows = [values[i, j] for i in range(len(images.names))]
        points.append(Point(rows, mean_over_images(rows, CODEC_KEYS), {"quality": q}))
    versions = {**codec.versions(), "pytorch-msssim": metadata.version("pytorch-msssim"), "numpy": np.__version__}
    meta = {"codec": codec.name, "source": f"measured with gabic {__version__}", "versions": versions}
    results, meta, per_image = curve(points, images, CODEC_KEYS, CODEC_PER_IMAGE, meta)
    return {"name": codec.name, "description": codec.label, "results": results, "meta": meta, "per_image": per_image}
