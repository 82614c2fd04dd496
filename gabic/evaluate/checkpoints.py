"""RD curves of learned-codec checkpoints over a set of images: one point per checkpoint, one curve
per architecture and configuration."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from gabic._version import __version__
from gabic.checkpoints import build_checked, checkpoint_config, checkpoint_lambda, find_checkpoints, load_weights, read_checkpoint
from gabic.device import resolve_device
from gabic.errors import CheckpointError
from gabic.evaluate.results import CHECKPOINT_KEYS, CHECKPOINT_PER_IMAGE, Point, curve, mean_over_images
from gabic.image_sets import Images, read_images
from gabic.measurement import Measurement, measure
from gabic.models import MODELS, LearnedCodec, model_class
from gabic.names import display_name

__all__ = ["curve_label", "evaluate_checkpoints"]

logger = logging.getLogger(__name__)


def curve_label(config: dict[str, Any]) -> str:
    """The label of the RD curve of a model configuration: the architecture's name, followed
    by the hyper-parameters that differ from the paper's (:meth:`~gabic.models.LearnedCodec.paper_config`),
    e.g. ``"GABIC"`` or ``"GABIC (N=64, M=96, num_slices=8, knn=6)"``. Entries outside the
    configuration's identity (the attention backend) are left out."""
    name = config.get("model", "?")
    cls = MODELS.get(name)
    if cls is None:
        return display_name(name)
    label = cls.display_label()
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
    model: LearnedCodec


def _plan(files: list[Path], options: dict[str, Any], trust: bool) -> list[_Checkpoint]:
    """Read every checkpoint (mapped from its file, not loaded), resolve its configuration with
    the options its architecture takes on a loaded checkpoint, and build one model per
    configuration: a damaged or foreign checkpoint or a bad value stops the evaluation here,
    before any coding. An option no checkpoint's architecture takes is refused; one that only
    some take is applied to those and the others are logged (:func:`_report_unapplied`)."""
    models: dict[str, LearnedCodec] = {}
    plan = []
    unapplied: dict[str, list[tuple[Path, str]]] = {}
    for path in files:
        ckpt = read_checkpoint(path, mmap=True, trust=trust)
        cls = model_class(checkpoint_config(ckpt, path))
        takes = cls.options(inference=True)
        for key in options:
            if key not in takes:
                unapplied.setdefault(key, []).append((path, cls.name))
        config = checkpoint_config(ckpt, path, **{k: v for k, v in options.items() if k in takes})
        key = repr(sorted(config.items()))  # the backend too: a model computes with one
        if key not in models:
            models[key] = build_checked(config, path)
        plan.append(_Checkpoint(path, ckpt, models[key]))
    _report_unapplied(unapplied, options, len(files))
    return plan


def _report_unapplied(unapplied: dict[str, list[tuple[Path, str]]], options: dict[str, Any], total: int) -> None:
    """Refuse an option that fits none of the ``total`` checkpoints (CheckpointError naming it and
    their architectures); log a warning naming the checkpoints an option was not applied to."""
    for key, where in unapplied.items():
        names = sorted({name for _, name in where})
        if len(where) == total:
            raise CheckpointError(
                f"{key}: not an option of the {', '.join(names)} model{'s' if len(names) > 1 else ''} on a loaded checkpoint; "
                f"none of the {total} checkpoint{'s' if total > 1 else ''} given takes it"
            )
        files = ", ".join(p.name for p, _ in where)
        logger.warning(
            "%s=%r applied where it fits; not to %s (%s: not an option of the model)", key, options[key], files, ", ".join(names)
        )


def _machine(device: torch.device) -> str:
    threads = torch.get_num_threads()
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {threads} thread{'s' if threads > 1 else ''}"


def evaluate_checkpoints(
    checkpoints: str | os.PathLike | list[str | os.PathLike],
    dataset: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    device: str = "auto",
    progress: bool = True,
    trust: bool = False,
    on_measure: Callable[[Path, int, Measurement, LearnedCodec], None] | None = None,
    **options: Any,
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
        on_measure: called after each image is measured, with the checkpoint's path, the image's
            index in the image set, the :class:`~gabic.measurement.Measurement` (the decoded image,
            the file) and the model (holding that checkpoint's weights until the call returns):
            what a caller needs of the coded images, without coding them again.
        **options: inference options for the checkpoints whose architecture takes them, as for
            :func:`gabic.checkpoints.load_checkpoint` (e.g. ``backend="pyg"``, ``knn=6``,
            ``knn_rule="self-excluded"`` for GABIC). In a set of checkpoints of several
            architectures an option is applied where it fits and the others are logged; one
            that fits none of them is refused.

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
    plan = _plan(files, options, trust)
    curves: dict[bytes, list[Point]] = {}
    configs: dict[bytes, dict[str, Any]] = {}
    with tqdm(total=len(plan) * len(images.names), desc="evaluate", unit="image", disable=not progress) as bar:
        for item in plan:
            bar.set_postfix_str(item.path.name)
            model = load_weights(item.model, item.ckpt, item.path, dev)
            rows = []
            for i, img in enumerate(images.pixels):
                m = measure(model, img)
                if on_measure is not None:
                    on_measure(item.path, i, m, model)
                rows.append(m.record())
                bar.update(1)
            point = Point(
                rows, mean_over_images(rows, CHECKPOINT_KEYS), {"lambda": checkpoint_lambda(item.ckpt), "checkpoint": str(item.path)}
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
    return [_checkpointcurve(points, configs[key], images, _machine(dev), versions) for key, points in curves.items()]


def _checkpointcurve(points: list[Point], config: dict[str, Any], images: Images, machine: str, versions: dict) -> dict:
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
    results, meta, per_image = curve(points, images, CHECKPOINT_KEYS, CHECKPOINT_PER_IMAGE, meta)
    n = len(points)
    description = f"{label} on {images.dataset}: {n} checkpoint{'s' if n > 1 else ''}, real coding ({machine})"
    return {"name": label, "description": description, "results": results, "meta": meta, "per_image": per_image}
