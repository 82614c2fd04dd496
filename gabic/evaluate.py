"""Experiments over a set of images: RD points of codecs and checkpoints, and k sweeps.

:func:`evaluate_codec` codes every image of a folder at every quality setting of a classical
codec, :func:`evaluate_checkpoints` with every learned-codec checkpoint (one RD point each,
grouped into one curve per architecture and configuration), and :func:`k_sweep` with a GABIC
model at several k. Every image is measured by :func:`gabic.measurement.measure` (real coding;
bpp of the payload, PSNR and MS-SSIM on 8-bit RGB), so the three agree with each other and with
CompressAI's ``eval_model`` and ``bench``. An RD point is the mean over the images.

Results follow CompressAI's results schema (``name``, ``description``, ``results``) plus
``meta`` (with the image set, :mod:`gabic.image_sets`) and ``per_image``, so curves from either
tool mix; :func:`write_results` saves one.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from gabic._version import __version__
from gabic.checkpoints import build_checked, checkpoint_config, checkpoint_lambda, load_weights, read_checkpoint
from gabic.codecs import Codec, get_codec
from gabic.data import list_images, samples
from gabic.device import resolve_device
from gabic.errors import CheckpointError, CodecError, DataError
from gabic.image_sets import SAMPLES, image_set_of_sizes
from gabic.images import as_rgb, image_to_tensor, load_image, pixels_only, tensor_to_image
from gabic.layers import check_knn
from gabic.measurement import forward_padded, forward_psnr, measure
from gabic.metrics import ms_ssim_db
from gabic.models import GABIC, MODELS, ChannelContextCodec
from gabic.models.gabic import SMALLEST_WINDOW_NODES
from gabic.names import display_name
from gabic.results import finite_or_none, save

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "Images",
    "checkpoints_by_architecture",
    "SAMPLES_DATASET",
    "curve_label",
    "evaluate_checkpoints",
    "evaluate_codec",
    "find_checkpoints",
    "k_sweep",
    "read_images",
    "write_results",
]

logger = logging.getLogger(__name__)

#: The ``meta["dataset"]`` of an evaluation over the embedded sample photographs.
SAMPLES_DATASET = SAMPLES

#: Checkpoint file endings looked for in a folder given to :func:`evaluate_checkpoints`.
CHECKPOINT_SUFFIXES = (".pth.tar", ".pth", ".pt", ".ckpt")

#: Display names of the architectures (curve labels).

#: What a codec's and a checkpoint's curve hold, per point (means) and per image.
_CODEC_KEYS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb", "encoding_time", "decoding_time")
_CODEC_PER_IMAGE = ("bpp", "psnr-rgb", "ms-ssim-rgb")
_CHECKPOINT_KEYS = ("bpp", "bpp-likelihoods", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb", "encoding_time", "decoding_time")
_CHECKPOINT_PER_IMAGE = (
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


# -- shared by the experiments ---------------------------------------------------------------------


@dataclass
class Images:
    """The images of an experiment: their names, dataset name, the image set they form, their
    paths and, when asked for, their 8-bit RGB pixels."""

    names: list[str]
    dataset: str
    image_set: dict[str, Any]
    paths: list[Path]
    pixels: list[Image.Image] = field(default_factory=list)


def read_images(dataset: str | os.PathLike | Sequence[str | os.PathLike] | None, load: bool) -> Images:
    """The images of ``dataset`` (a folder, a list of image files; None: the embedded samples),
    every one read once so a bad file stops the experiment before any coding; their pixels kept
    when ``load``. A list is named by its files (``"rocket.jpg"``, ``"a.png, b.png, c.png, ..."``)."""
    if dataset is None:
        paths, name = samples(), SAMPLES_DATASET
    elif isinstance(dataset, str | os.PathLike):
        paths, name = list_images(dataset), str(dataset)
    else:
        paths = [Path(p) for p in dataset]
        if not paths:
            raise DataError("no images given: expected a folder or a list of image files")
        name = ", ".join(p.name for p in paths[:3]) + (", ..." if len(paths) > 3 else "")
    pixels, sizes = [], []
    for path in paths:
        img, notes = load_image(path)
        if notes:
            logger.warning("%s: %s", path, "; ".join(notes))
        sizes.append((path.name, *img.size))
        if load:
            pixels.append(pixels_only(img))
    return Images([p.name for p in paths], name, image_set_of_sizes(sizes, name), paths, pixels)


def _mean_over_images(rows: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    """One RD point: the mean of each measure over the images (as CompressAI's bench and
    eval_model average them); ``ms-ssim-db-rgb`` from the mean MS-SSIM (NaN when an image has none)."""
    mean = {k: float(np.mean([row[k] for row in rows])) for k in keys if k != "ms-ssim-db-rgb"}
    if "ms-ssim-db-rgb" in keys:
        msssim = mean["ms-ssim-rgb"]
        mean["ms-ssim-db-rgb"] = math.nan if math.isnan(msssim) else ms_ssim_db(msssim)
    return mean


@dataclass
class _Point:
    """One RD point before sorting: per-image rows, their mean, per-point meta (quality, lambda...)."""

    rows: list[dict[str, Any]]
    mean: dict[str, float]
    meta: dict[str, Any]


def _curve(
    points: list[_Point], images: Images, keys: Sequence[str], per_image_keys: Sequence[str], meta: dict[str, Any]
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


# -- classical codecs ------------------------------------------------------------------------------


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
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return workers


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
        points.append(_Point(rows, _mean_over_images(rows, _CODEC_KEYS), {"quality": q}))
    versions = {**codec.versions(), "pytorch-msssim": metadata.version("pytorch-msssim"), "numpy": np.__version__}
    meta = {"codec": codec.name, "source": f"measured with gabic {__version__}", "versions": versions}
    results, meta, per_image = _curve(points, images, _CODEC_KEYS, _CODEC_PER_IMAGE, meta)
    return {"name": codec.name, "description": codec.label, "results": results, "meta": meta, "per_image": per_image}


# -- learned codecs: checkpoints -------------------------------------------------------------------


def find_checkpoints(paths: str | os.PathLike | list[str | os.PathLike]) -> list[Path]:
    """Checkpoint files from files and folders: a folder stands for its files ending in one
    of :data:`CHECKPOINT_SUFFIXES` (not recursive, sorted by name); files are kept in order.

    Raises:
        CheckpointError: a path that does not exist, or a folder without checkpoints.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(CHECKPOINT_SUFFIXES))
            if not files:
                raise CheckpointError(f"{p}: no checkpoints in this folder (files ending in {', '.join(CHECKPOINT_SUFFIXES)})")
            found += files
        elif p.is_file():
            found.append(p)
        else:
            raise CheckpointError(f"{p}: no such checkpoint file or folder")
    if not found:
        raise CheckpointError("no checkpoints given")
    duplicates = sorted({str(p) for p in found if found.count(p) > 1})
    if duplicates:
        raise CheckpointError(f"checkpoints given twice: {', '.join(duplicates)}")
    return found


def checkpoints_by_architecture(paths: str | os.PathLike | list[str | os.PathLike], trust: bool = False) -> dict[str, list[Path]]:
    """The checkpoints of ``paths`` (files and folders, as :func:`find_checkpoints`) grouped by
    architecture (``{"gabic": [...], "wacnn": [...]}``), each file read as data (memory-mapped)
    and its architecture taken from its config or keys (:func:`gabic.checkpoints.checkpoint_config`).

    Raises:
        CheckpointError: as :func:`find_checkpoints`, or a file that is not a checkpoint of a
            known architecture (naming it).
    """
    groups: dict[str, list[Path]] = {}
    for path in find_checkpoints(paths):
        config = checkpoint_config(read_checkpoint(path, mmap=True, trust=trust), path)
        groups.setdefault(config["model"], []).append(path)
    return groups


def curve_label(config: dict[str, Any]) -> str:
    """The label of the RD curve of a model configuration: the architecture's name, followed
    by the hyper-parameters that differ from the paper's (:meth:`~gabic.models.LearnedCodec.paper_config`),
    e.g. ``"GABIC"`` or ``"GABIC (N=64, M=96, num_slices=8, knn=6)"``. Entries outside the
    configuration's identity (the attention backend) are left out."""
    name = config.get("model", "?")
    label = display_name(name)
    cls = MODELS.get(name)
    if cls is None:
        return label
    paper = cls.paper_config()
    changed = [
        f"{k}={v}"
        for k, v in config.items()
        if k != "model" and k not in cls.UNHASHED and (k not in paper or _plain_value(paper[k]) != _plain_value(v))
    ]
    return f"{label} ({', '.join(changed)})" if changed else label


def _plain_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass
class _Checkpoint:
    """A checkpoint to evaluate: its file, what it holds (tensors mapped from the file) and the
    model of its configuration, shared by every checkpoint of that configuration."""

    path: Path
    ckpt: dict[str, Any]
    model: ChannelContextCodec


def _plan(files: list[Path], overrides: dict[str, Any], trust: bool) -> list[_Checkpoint]:
    """Read every checkpoint (mapped from its file, not loaded), resolve its configuration with
    the overrides, and build one model per configuration: a damaged or foreign checkpoint or a
    bad override stops the evaluation here, before any coding."""
    models: dict[str, ChannelContextCodec] = {}
    plan = []
    for path in files:
        ckpt = read_checkpoint(path, mmap=True, trust=trust)
        config = checkpoint_config(ckpt, path, **overrides)
        key = repr(sorted(config.items()))  # the backend too: a model computes with one
        if key not in models:
            models[key] = build_checked(config, path)
        plan.append(_Checkpoint(path, ckpt, models[key]))
    return plan


def _machine(device: torch.device) -> str:
    threads = torch.get_num_threads()
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {threads} thread{'s' if threads > 1 else ''}"


def evaluate_checkpoints(
    checkpoints: str | os.PathLike | list[str | os.PathLike],
    dataset: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    device: str = "auto",
    progress: bool = True,
    trust: bool = False,
    **overrides: Any,
) -> list[dict]:
    """Rate-distortion points of learned-codec checkpoints over a folder of images.

    Every image is coded for real (:func:`gabic.measurement.measure`) with every checkpoint;
    each checkpoint gives one RD point, the mean over the images. The points are grouped into
    curves by architecture and configuration (:meth:`~gabic.models.LearnedCodec.identity`; the
    lambda and the weights may differ): checkpoints of different architectures or
    configurations never share a curve. One model is built per configuration and takes each of
    its checkpoints' weights in turn.

    Args:
        checkpoints: checkpoint files (released GABIC / WACNN / STF ``.pth.tar`` or gabic's
            own) and folders of them (see :func:`find_checkpoints`).
        dataset: folder of images (see :func:`gabic.data.list_images`) or a list of image
            files; default None: the embedded sample photographs.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        progress: one tqdm bar over all (checkpoint, image) pairs.
        trust: unpickle checkpoints that hold more than data in full (they can run code; see
            :func:`gabic.checkpoints.read_checkpoint`). Default False: such a file is refused.
        **overrides: hyper-parameters for every checkpoint, as for
            :func:`gabic.checkpoints.load_checkpoint` (e.g. ``backend="pyg"``, ``knn=6``,
            ``knn_rule="self-excluded"``).

    Returns:
        One results dict per curve, in the order their first checkpoint was given:
        ``{"name", "description", "results": {"bpp", "bpp-likelihoods", "psnr-rgb",
        "ms-ssim-rgb", "ms-ssim-db-rgb", "encoding_time", "decoding_time"}, "meta":
        {"kind": "measured", "dataset", "num_images", "image_set", "model", "config", "lambda",
        "checkpoint", "device", "source", "versions"}, "per_image": {file name: {measure: [one
        value per point]}}}``, points sorted by bpp with every list (``meta["lambda"]`` and
        ``meta["checkpoint"]`` too) in the same order. ``lambda`` is the one stored in the
        checkpoint (gabic's training writes it), None where the file does not say.

    Raises, before any coding starts:
        CheckpointError: a missing, unreadable or foreign checkpoint, or a bad override (naming the file).
        DataError: a missing folder, or one without images.
        ImageError: an unreadable image.
        ValueError: an unknown device or one that is not there.
    """
    files = find_checkpoints(checkpoints)
    dev = resolve_device(device)
    images = read_images(dataset, load=True)
    plan = _plan(files, overrides, trust)
    curves: dict[bytes, list[_Point]] = {}
    configs: dict[bytes, dict[str, Any]] = {}
    with tqdm(total=len(plan) * len(images.names), desc="evaluate", unit="image", disable=not progress) as bar:
        for item in plan:
            bar.set_postfix_str(item.path.name)
            model = load_weights(item.model, item.ckpt, item.path, dev)
            rows = []
            for img in images.pixels:
                rows.append(measure(model, img).record())
                bar.update(1)
            point = _Point(
                rows, _mean_over_images(rows, _CHECKPOINT_KEYS), {"lambda": checkpoint_lambda(item.ckpt), "checkpoint": str(item.path)}
            )
            item.ckpt = {}  # unmap the file
            identity = model.identity()
            configs.setdefault(identity, model.config)
            curves.setdefault(identity, []).append(point)
            logger.info("%s: %.4f bpp, %.2f dB", item.path.name, point.mean["bpp"], point.mean["psnr-rgb"])
        del plan
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    versions = {"gabic": __version__, "torch": torch.__version__, "compressai": metadata.version("compressai")}
    return [_checkpoint_curve(points, configs[key], images, _machine(dev), versions) for key, points in curves.items()]


def _checkpoint_curve(points: list[_Point], config: dict[str, Any], images: Images, machine: str, versions: dict) -> dict:
    """One results dict from the points of one configuration."""
    cls = MODELS[config["model"]]
    config = {k: v for k, v in config.items() if k not in cls.UNHASHED}
    label = curve_label(config)
    meta = {
        "model": config["model"],
        "config": config,
        "device": machine,
        "source": f"measured with gabic {__version__}: real coding, bpp of the y and z strings",
        "versions": versions,
    }
    results, meta, per_image = _curve(points, images, _CHECKPOINT_KEYS, _CHECKPOINT_PER_IMAGE, meta)
    n = len(points)
    description = f"{label} on {images.dataset}: {n} checkpoint{'s' if n > 1 else ''}, real coding ({machine})"
    return {"name": label, "description": description, "results": results, "meta": meta, "per_image": per_image}


# -- k at inference ----------------------------------------------------------------------------------

#: What :func:`k_sweep` takes as images.
ImageLike = str | os.PathLike | Image.Image | torch.Tensor


def _sweep_image(image: ImageLike, i: int) -> tuple[str, Image.Image]:
    """``(name, 8-bit RGB image)`` of a path, a PIL image or a ``(1, 3, H, W)`` tensor in [0, 1]."""
    if isinstance(image, str | os.PathLike):
        return Path(image).name, as_rgb(image)
    if isinstance(image, Image.Image):
        return f"image{i}", as_rgb(image)
    if isinstance(image, torch.Tensor):
        if image.dim() != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"image must be a (1, 3, H, W) tensor, got shape {tuple(image.shape)}")
        return f"image{i}", tensor_to_image(image)
    raise ValueError(f"image must be a path, a PIL image or a (1, 3, H, W) tensor, got {type(image).__name__}")


def _check_ks(model: GABIC, ks: Sequence[int]) -> list[int]:
    if not isinstance(model, GABIC):
        raise ValueError(f"k_sweep needs a GABIC model, got {type(model).__name__}")
    if isinstance(ks, int) or not isinstance(ks, Sequence) or not ks:
        raise ValueError(f"ks must be a non-empty list of integers, got {ks!r}")
    for k in ks:
        check_knn(k, SMALLEST_WINDOW_NODES)  # as GABIC.set_knn will
    if len(set(ks)) != len(ks):
        raise ValueError(f"ks has repeated values: {list(ks)}")
    return list(ks)


def _estimate(model: GABIC, img: Image.Image) -> dict[str, float]:
    """bpp from the likelihoods and PSNR of the 8-bit-rounded reconstruction of the forward pass."""
    _, x_hat, bpp = forward_padded(model, image_to_tensor(img))
    return {"bpp": bpp, "psnr-rgb": forward_psnr(img, x_hat)}


def k_sweep(
    model: GABIC,
    images: ImageLike | Sequence[ImageLike],
    ks: Sequence[int],
    real_coding: bool = False,
    name: str | None = None,
    dataset: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Rate and quality of a GABIC model when every block's k is changed at inference (same weights).

    For every k (:meth:`GABIC.set_knn`) and every image: bpp and PSNR (8-bit RGB, on the image
    cropped back from the padding), the mean over images per k. The model's k of every block is
    restored afterwards, even on error.

    Args:
        model: a GABIC model.
        images: one image or a list (paths, PIL images or ``(1, 3, H, W)`` tensors in [0, 1]).
        ks: the k values, each in ``1..n-1`` of the smallest window (1..15 for 4x4 windows).
        real_coding: False: bpp estimated from the likelihoods of the forward pass and PSNR of its
            reconstruction; True: real coding with :func:`gabic.measurement.measure` (bpp of
            the y and z strings, as :func:`evaluate_checkpoints`; ``bpp-file`` beside it per image).
        name: the result's name (default ``"<model> k sweep"``).
        dataset: ``meta["dataset"]`` (default: the image names joined).
        progress: show a tqdm bar.

    Returns:
        A dict in the results schema (:func:`gabic.results.validate`): ``results`` ``{"bpp", "psnr-rgb"}``
        with one point per k in the order of ``ks``, ``meta`` ``{"knn", "trained_knn", "images",
        "num_images", "image_set", "dataset", "estimate" ("likelihoods" or "bitstream"), "model",
        "source"}`` and ``per_image`` ``{name: {"bpp", "psnr-rgb"}}``. Save it with
        :func:`gabic.results.save`.
    """
    ks = _check_ks(model, ks)
    items = list(images) if isinstance(images, list | tuple) else [images]
    if not items:
        raise ValueError("images is empty: give at least one image")
    named = [_sweep_image(im, i) for i, im in enumerate(items)]
    names = [n for n, _ in named]
    blocks = model.graph_attentions()
    original = {n: m.knn for n, m in blocks.items()}
    values: dict[tuple[int, int], dict[str, Any]] = {}
    try:
        with tqdm(total=len(ks) * len(named), desc="k sweep", unit="image", disable=not progress) as bar:
            for j, k in enumerate(ks):
                model.set_knn(k)
                for i, (_, img) in enumerate(named):
                    values[i, j] = measure(model, img).record() if real_coding else _estimate(model, img)
                    bar.update(1)
    finally:
        for n, m in blocks.items():
            m.knn = original[n]
    trained = sorted(set(original.values()))
    keys = ("bpp", "psnr-rgb")
    per_image = {names[i]: {key: [values[i, j][key] for j in range(len(ks))] for key in keys} for i in range(len(named))}
    if real_coding:
        for i in range(len(named)):
            per_image[names[i]]["bpp-file"] = [values[i, j]["bpp-file"] for j in range(len(ks))]
    results = {key: [float(np.mean([values[i, j][key] for i in range(len(named))])) for j in range(len(ks))] for key in keys}
    meta = {
        "knn": ks,
        "trained_knn": trained[0] if len(trained) == 1 else original,
        "images": names,
        "num_images": len(names),
        "image_set": image_set_of_sizes([(n, *img.size) for n, img in named], dataset or ", ".join(names)),
        "dataset": dataset or ", ".join(names),
        "estimate": "bitstream" if real_coding else "likelihoods",
        "model": model.config,
        "source": f"measured with gabic {__version__}",
    }
    label = "bpp of the y and z strings" if real_coding else "bpp estimated from the likelihoods"
    return {
        "name": name or f"{model.name} k sweep",
        "description": f"{model.name} with k neighbours per node changed at inference, same weights ({label}, PSNR on 8-bit RGB)",
        "results": results,
        "meta": meta,
        "per_image": per_image,
    }
