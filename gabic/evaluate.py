"""Evaluate codecs over a folder of images: rate-distortion points in the results schema.

:func:`evaluate_codec` encodes and decodes every image of a folder at every quality setting
of a classical codec and reports, per quality, the mean over images of the rate (bpp), PSNR
and MS-SSIM on 8-bit RGB and the encoding and decoding times, as CompressAI's
``compressai.utils.bench`` does. :func:`evaluate_checkpoints` does the same for learned-codec
checkpoints (one RD point per checkpoint, real coding as CompressAI's ``eval_model``, plus the
likelihood estimate of the rate), grouping the points into one curve per architecture and
configuration. Results follow CompressAI's results schema (``name``, ``description``,
``results``) plus ``meta`` and ``per_image``, so curves from either tool mix;
:func:`write_results` saves one.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from gabic.codecs import get_codec, pixels_only
from gabic.errors import CodecError
from gabic.metrics import ms_ssim_db

__all__ = ["curve_label", "evaluate_checkpoints", "evaluate_codec", "find_checkpoints", "measure_image", "write_results"]

logger = logging.getLogger(__name__)

#: The ``meta["dataset"]`` of an evaluation over the embedded sample photographs.
SAMPLES_DATASET = "gabic samples"

_RESULT_KEYS = ("bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb", "encoding_time", "decoding_time")
_PER_IMAGE_KEYS = ("bpp", "psnr-rgb", "ms-ssim-rgb")


# -- one (image, quality) job, run in a worker process or in this one ----------------------------


@lru_cache(maxsize=4)
def _load_pixels(path: str) -> Image.Image:
    """The image at ``path`` as metadata-free RGB pixels; cached because the jobs of one image
    are submitted one after the other."""
    from gabic.images import load_image

    return pixels_only(load_image(path)[0])


def _init_worker() -> None:
    """Worker process set-up: one torch thread (MS-SSIM), as PyTorch's DataLoader workers do,
    so that N workers use N cores and a forked child never re-enters the parent's OpenMP pool."""
    import torch

    torch.set_num_threads(1)


def _run_job(codec_name: str, path: str, quality: int) -> dict[str, float]:
    """Encode and decode one image at one quality; return its bpp, PSNR, MS-SSIM and times."""
    from gabic.metrics import bpp_from_bytes, ms_ssim, psnr

    codec = get_codec(codec_name)
    image = _load_pixels(path)
    t0 = time.perf_counter()
    data = codec.encode(image, quality)
    t1 = time.perf_counter()
    rec = codec.decode(data)
    t2 = time.perf_counter()
    if rec.size != image.size:
        raise CodecError(
            f"codec {codec_name!r}: decoded {Path(path).name} as {rec.size[0]}x{rec.size[1]}, expected {image.size[0]}x{image.size[1]}"
        )
    w, h = image.size
    try:
        msssim = ms_ssim(image, rec)
    except ValueError:  # under 161 px a side: MS-SSIM is undefined
        msssim = math.nan
    return {
        "bpp": bpp_from_bytes(len(data), h, w),
        "psnr-rgb": psnr(image, rec),
        "ms-ssim-rgb": msssim,
        "encoding_time": t1 - t0,
        "decoding_time": t2 - t1,
    }


def _mp_context():
    """``fork`` where the platform offers it (workers start in milliseconds instead of
    re-importing torch), otherwise the platform's default (``spawn`` on macOS and Windows)."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


# -- the sweep ------------------------------------------------------------------------------


def _check_qualities(codec, qualities) -> list[int]:
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


def _mean_over_images(rows: list[dict[str, float]]) -> dict[str, float]:
    """One RD point: the mean of each measure over the images (as CompressAI's bench and
    eval_model average them), plus ``ms-ssim-db-rgb`` from the mean MS-SSIM."""
    mean = {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}
    msssim = mean["ms-ssim-rgb"]  # NaN where an image is under 161 px a side (left out of the results)
    mean["ms-ssim-db-rgb"] = math.nan if math.isnan(msssim) else ms_ssim_db(msssim)
    return mean


def evaluate_codec(
    name: str,
    dataset: str | os.PathLike | None = None,
    qualities: list[int] | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Rate-distortion sweep of a classical codec over a folder of images.

    For every quality and every image: encode, decode, then bpp (``bytes * 8 / pixels``),
    PSNR and MS-SSIM on the 8-bit RGB images, encoding and decoding wall times; then the mean
    over images per quality, as CompressAI's bench computes them. ``ms-ssim-db-rgb`` is
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
        "ms-ssim-db-rgb", "encoding_time", "decoding_time"}, "meta": {"dataset", "num_images",
        "quality", "codec", "source", "versions"}, "per_image": {file name: {"bpp",
        "psnr-rgb", "ms-ssim-rgb"}}}``, one entry per quality in every list, all sorted together
        by mean bpp (``meta["quality"][i]`` is the setting of point ``i``; the per-image lists
        follow the same order).

    Raises, before any coding starts:
        CodecError: unknown or unavailable codec, a quality outside the codec's range, no or
            repeated qualities.
        DataError: a missing folder, or one without images.
        ImageError: an unreadable image (naming the file): every image is read once first, so
            a bad file stops the sweep instead of being skipped silently.
        ValueError: ``workers`` below 1.
    """
    from gabic import __version__
    from gabic.data import list_images, samples
    from gabic.images import load_image

    codec = get_codec(name)
    codec.require()
    qs = _check_qualities(codec, qualities)
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")

    if dataset is None:
        paths, dataset_name = samples(), SAMPLES_DATASET
    else:
        paths, dataset_name = list_images(dataset), str(dataset)
    names = [p.name for p in paths]
    for path in paths:  # fail on a bad image before any work; the pixels are re-read by the jobs
        _, notes = load_image(path)
        if notes:
            logger.warning("%s: %s", path, "; ".join(notes))

    jobs = [(i, j) for i in range(len(paths)) for j in range(len(qs))]  # image-major: the cache hits
    values: dict[tuple[int, int], dict[str, float]] = {}
    workers = min(workers, len(jobs))
    logger.info("%s: %d images x %d qualities on %d worker(s)", codec.name, len(paths), len(qs), workers)
    try:
        if workers == 1:
            for i, j in tqdm(jobs, desc=codec.name, unit="job", disable=not progress):
                values[i, j] = _run_job(codec.name, str(paths[i]), qs[j])
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(), initializer=_init_worker) as pool:
                futures: dict[Future, tuple[int, int]] = {
                    pool.submit(_run_job, codec.name, str(paths[i]), qs[j]): (i, j) for i, j in jobs
                }
                try:
                    with tqdm(total=len(jobs), desc=codec.name, unit="job", disable=not progress) as bar:
                        for future in as_completed(futures):
                            values[futures[future]] = future.result()
                            bar.update(1)
                except BaseException:  # a failed job or Ctrl-C: drop the queued jobs, do not wait for them
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        _load_pixels.cache_clear()

    undefined = sorted({names[i] for (i, _), v in values.items() if math.isnan(v["ms-ssim-rgb"])})
    if undefined:
        logger.warning(
            "MS-SSIM is undefined for %d image(s) under 161 px a side (%s): left out of the results",
            len(undefined),
            ", ".join(undefined),
        )

    # mean over images per quality, then sort the points by bpp, all lists together
    points = []
    for j, q in enumerate(qs):
        mean = _mean_over_images([values[i, j] for i in range(len(paths))])
        points.append((mean["bpp"], j, q, mean))
    points.sort(key=lambda p: (p[0], p[1]))
    order = [j for _, j, _, _ in points]

    versions = codec.versions()
    versions["pytorch-msssim"] = metadata.version("pytorch-msssim")
    versions["numpy"] = np.__version__
    results = {k: [p[3][k] for p in points] for k in _RESULT_KEYS}
    meta = {
        "kind": "measured",
        "dataset": dataset_name,
        "num_images": len(paths),
        "quality": [p[2] for p in points],
        "codec": codec.name,
        "source": f"measured with gabic {__version__}",
        "versions": versions,
    }
    if undefined:  # the schema holds finite numbers only: leave the undefined metric out, and say so
        del results["ms-ssim-rgb"], results["ms-ssim-db-rgb"]
        meta["omitted"] = f"MS-SSIM: undefined for images under 161 px a side ({', '.join(undefined)})"
    per_image = {names[i]: {k: [_finite_or_none(values[i, j][k]) for j in order] for k in _PER_IMAGE_KEYS} for i in range(len(paths))}
    return {"name": codec.name, "description": codec.label, "results": results, "meta": meta, "per_image": per_image}


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def write_results(result: dict, path: str | os.PathLike) -> Path:
    """Validate a results dict and write it as JSON to ``path`` atomically (:func:`gabic.results.save`)."""
    from gabic.results import save

    return save(result, path)


# -- learned codecs: checkpoints ------------------------------------------------------------

#: Checkpoint file endings looked for in a folder given to :func:`evaluate_checkpoints`.
CHECKPOINT_SUFFIXES = (".pth.tar", ".pth", ".pt", ".ckpt")

#: Display names of the architectures (curve labels).
ARCHITECTURE_LABELS = {"gabic": "GABIC", "wacnn": "WACNN", "stf": "STF"}

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


def find_checkpoints(paths: str | os.PathLike | list[str | os.PathLike]) -> list[Path]:
    """Checkpoint files from files and folders: a folder stands for its files ending in one
    of :data:`CHECKPOINT_SUFFIXES` (not recursive, sorted by name); files are kept in order.

    Raises:
        CheckpointError: a path that does not exist, or a folder without checkpoints.
    """
    from gabic.errors import CheckpointError

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


def curve_label(config: dict[str, Any]) -> str:
    """The label of the RD curve of a model configuration: the architecture's name, followed
    by the hyper-parameters that differ from the paper's (its class defaults), e.g. ``"GABIC"``
    or ``"GABIC (N=64, M=96, num_slices=8, knn=6)"``. The attention backend is left out (it
    does not change the numbers beyond float rounding)."""
    import inspect

    from gabic.bitstream import NOT_HASHED
    from gabic.models import MODELS

    name = config.get("model", "?")
    label = ARCHITECTURE_LABELS.get(name, name)
    cls = MODELS.get(name)
    if cls is None:
        return label
    defaults = {
        k: p.default for k, p in inspect.signature(cls.__init__).parameters.items() if p.default is not inspect.Parameter.empty
    }
    changed = [
        f"{k}={v}"
        for k, v in config.items()
        if k != "model" and k not in NOT_HASHED and (k not in defaults or _plain_value(defaults[k]) != _plain_value(v))
    ]
    return f"{label} ({', '.join(changed)})" if changed else label


def _plain_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_image(model, image: Image.Image) -> dict[str, float]:
    """Code one RGB image with a learned codec for real and measure it.

    The image is zero-padded to a multiple of 64 (centred), compressed into a .gabic file
    (:func:`gabic.bitstream.encode_image`), decoded back and cropped; the forward pass on the
    same padded tensor gives the likelihood estimate of the rate.

    Returns:
        ``bpp`` (bits of the y and z strings per pixel of the original image, CompressAI's
        definition), ``bpp-file`` (the whole .gabic file, header included),
        ``bpp-likelihoods`` (``-sum(log2 p) / pixels`` of the forward pass), ``y_bytes``,
        ``z_bytes``, ``psnr-rgb`` and ``ms-ssim-rgb`` of the 8-bit decoded image (MS-SSIM NaN
        under 161 px a side), ``encoding_time`` and ``decoding_time`` in seconds (CUDA
        synchronised).
    """
    import torch

    from gabic.bitstream import decode_image, encode_image, unpack
    from gabic.images import image_to_tensor, pad
    from gabic.metrics import bpp_from_bytes, bpp_from_likelihoods, ms_ssim, psnr

    device = next(model.parameters()).device
    w, h = image.size
    _sync(device)
    t0 = time.perf_counter()
    data = encode_image(model, image)
    _sync(device)
    t1 = time.perf_counter()
    decoded = decode_image(model, data)
    _sync(device)
    t2 = time.perf_counter()
    stream = unpack(data)
    y_bytes = sum(len(s) for s in stream.strings[0])
    z_bytes = sum(len(s) for s in stream.strings[1])
    with torch.no_grad():
        xp, _ = pad(image_to_tensor(image).to(device))
        estimate = bpp_from_likelihoods(model(xp)["likelihoods"], h * w)
    try:
        msssim = ms_ssim(image, decoded)
    except ValueError:  # under 161 px a side
        msssim = math.nan
    return {
        "bpp": bpp_from_bytes(stream.payload_bytes, h, w),
        "bpp-likelihoods": estimate,
        "bpp-file": bpp_from_bytes(len(data), h, w),
        "y_bytes": y_bytes,
        "z_bytes": z_bytes,
        "psnr-rgb": psnr(image, decoded),
        "ms-ssim-rgb": msssim,
        "encoding_time": t1 - t0,
        "decoding_time": t2 - t1,
    }


def evaluate_checkpoints(
    checkpoints: str | os.PathLike | list[str | os.PathLike],
    dataset: str | os.PathLike | None = None,
    device: str = "auto",
    progress: bool = True,
    **overrides: Any,
) -> list[dict]:
    """Rate-distortion points of learned-codec checkpoints over a folder of images.

    Every image is coded for real (:func:`measure_image`) with every checkpoint; each
    checkpoint gives one RD point, the mean over the images. The points are grouped into
    curves by architecture and configuration (hyper-parameters; the lambda and the weights
    may differ): checkpoints of different architectures or configurations never share a curve.

    Args:
        checkpoints: checkpoint files (released GABIC / WACNN / STF ``.pth.tar`` or gabic's
            own) and folders of them (see :func:`find_checkpoints`).
        dataset: folder of images (see :func:`gabic.data.list_images`); default None: the
            embedded sample photographs.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        progress: one tqdm bar over all (checkpoint, image) pairs.
        **overrides: passed to :func:`gabic.checkpoints.load_checkpoint` for every
            checkpoint (e.g. ``backend="pyg"``, ``knn=6``).

    Returns:
        One results dict per curve, in the order their first checkpoint was given:
        ``{"name", "description", "results": {"bpp", "bpp-likelihoods", "psnr-rgb",
        "ms-ssim-rgb", "ms-ssim-db-rgb", "encoding_time", "decoding_time"}, "meta":
        {"kind": "measured", "dataset", "num_images", "model", "config", "lambda",
        "checkpoint", "device", "source", "versions"}, "per_image": {file name: {measure:
        [one value per point]}}}``, points sorted by bpp with every list (``meta["lambda"]``
        and ``meta["checkpoint"]`` too) in the same order. ``lambda`` is the one stored in
        the checkpoint (gabic's training writes it), None where the file does not say.

    Raises, before any coding starts where they can:
        CheckpointError: a missing, unreadable or foreign checkpoint (naming the file).
        DataError: a missing folder, or one without images.
        ImageError: an unreadable image.
    """
    import torch

    from gabic import __version__
    from gabic.bitstream import config_hash
    from gabic.checkpoints import detect_config, model_from_checkpoint, read_checkpoint
    from gabic.data import list_images, samples
    from gabic.device import resolve_device
    from gabic.errors import CheckpointError
    from gabic.images import load_image
    from gabic.models import build_model

    files = find_checkpoints(checkpoints)
    dev = resolve_device(device)
    if dataset is None:
        paths, dataset_name = samples(), SAMPLES_DATASET
    else:
        paths, dataset_name = list_images(dataset), str(dataset)
    images = []
    for path in paths:
        img, notes = load_image(path)
        if notes:
            logger.warning("%s: %s", path, "; ".join(notes))
        images.append(pixels_only(img))
    names = [p.name for p in paths]
    checked: set[str] = set()
    for file in files:  # a damaged or foreign checkpoint or a bad override stops here, before any coding
        ckpt = read_checkpoint(file)  # read again below, one at a time
        config = ckpt["config"] if isinstance(ckpt.get("config"), dict) else detect_config(ckpt["state_dict"])
        del ckpt
        if config is None:
            raise CheckpointError(f"{file}: not a GABIC, WACNN or STF checkpoint")
        config = {**config, **overrides}
        if repr(config) not in checked:
            try:
                build_model(config)
            except (ValueError, TypeError) as err:
                raise CheckpointError(f"{file}: {err}") from None
            checked.add(repr(config))

    curves: dict[bytes, dict[str, Any]] = {}
    with tqdm(total=len(files) * len(images), desc="evaluate", unit="image", disable=not progress) as bar:
        for file in files:
            ckpt = read_checkpoint(file)
            model = model_from_checkpoint(ckpt, file, dev, **overrides)
            lmbda = next((ckpt[k] for k in ("lmbda", "lambda", "lmbda_value") if isinstance(ckpt.get(k), int | float)), None)
            del ckpt
            bar.set_postfix_str(file.name)
            rows = []
            for image in images:
                rows.append(measure_image(model, image))
                bar.update(1)
            config = model.config
            curve = curves.setdefault(config_hash(config), {"config": config, "points": []})
            curve["points"].append({"mean": _mean_over_images(rows), "rows": rows, "lambda": lmbda, "checkpoint": str(file)})
            logger.info(
                "%s: %.4f bpp, %.2f dB", file.name, curve["points"][-1]["mean"]["bpp"], curve["points"][-1]["mean"]["psnr-rgb"]
            )
            del model
            if dev.type == "cuda":
                torch.cuda.empty_cache()

    versions = {"gabic": __version__, "torch": torch.__version__, "compressai": metadata.version("compressai")}
    threads = torch.get_num_threads()
    machine = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu, {threads} thread{'s' if threads > 1 else ''}"
    return [_checkpoint_curve(c, names, dataset_name, machine, versions) for c in curves.values()]


def _checkpoint_curve(curve: dict[str, Any], names: list[str], dataset: str, machine: str, versions: dict) -> dict:
    """One results dict from the points of one configuration."""
    from gabic import __version__

    points = sorted(curve["points"], key=lambda p: p["mean"]["bpp"])
    config = {k: v for k, v in curve["config"].items() if k != "backend"}
    label = curve_label(config)
    results = {k: [p["mean"][k] for p in points] for k in _CHECKPOINT_KEYS}
    undefined = sorted({names[i] for p in points for i, row in enumerate(p["rows"]) if math.isnan(row["ms-ssim-rgb"])})
    meta = {
        "kind": "measured",
        "dataset": dataset,
        "num_images": len(names),
        "model": config["model"],
        "config": config,
        "lambda": [p["lambda"] for p in points],
        "checkpoint": [p["checkpoint"] for p in points],
        "device": machine,
        "source": f"measured with gabic {__version__}: real coding, bpp of the y and z strings",
        "versions": versions,
    }
    if undefined:
        del results["ms-ssim-rgb"], results["ms-ssim-db-rgb"]
        meta["omitted"] = f"MS-SSIM: undefined for images under 161 px a side ({', '.join(undefined)})"
    per_image = {
        name: {k: [_finite_or_none(p["rows"][i][k]) for p in points] for k in _CHECKPOINT_PER_IMAGE} for i, name in enumerate(names)
    }
    n = len(points)
    description = f"{label} on {dataset}: {n} checkpoint{'s' if n > 1 else ''}, real coding ({machine})"
    return {"name": label, "description": description, "results": results, "meta": meta, "per_image": per_image}
