"""Loading and saving checkpoints.

Two kinds are read:

- **released checkpoints** of the published code (``q1-model.pth.tar`` ...): a dict with
  ``state_dict`` (keys possibly prefixed ``module.``, entropy-bottleneck parameters under
  the legacy names ``_matrixK/_biasK/_factorK``). The architecture and the sizes are read
  off the keys; what keys cannot reveal (GABIC's k, heads, dissimilarity) takes the
  released defaults and can be overridden.
- **gabic checkpoints**: ``{"state_dict", "config", ...}`` as written by
  :func:`save_checkpoint`, where ``config`` names the architecture and its hyper-parameters.
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gabic.device import resolve_device
from gabic.errors import CheckpointError, first_line
from gabic.files import atomic_open
from gabic.models import MODELS, LearnedCodec, build_model, model_class, recognise

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "SAFE_GLOBALS",
    "checkpoints_by_architecture",
    "find_checkpoints",
    "build_checked",
    "checkpoint_config",
    "checkpoint_lambda",
    "current_key",
    "detect_config",
    "load_checkpoint",
    "load_weights",
    "read_checkpoint",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

#: Checkpoint file endings looked for in a folder (:func:`find_checkpoints`).
CHECKPOINT_SUFFIXES = (".pth.tar", ".pth", ".pt", ".ckpt")


def _safe_globals() -> list[Any]:
    """What checkpoints of GABIC, STF, WACNN and CompressAI hold besides tensors, dicts, lists and
    numbers (their training scripts save epochs, losses, optimiser and scheduler states, and at
    times the argparse namespace of the run, with paths and numpy numbers in it): classes whose
    unpickling builds data and calls nothing else."""
    numpy_dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    multiarray = np.core.multiarray
    paths = [pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath]
    return [argparse.Namespace, *paths, multiarray.scalar, multiarray._reconstruct, np.ndarray, np.dtype, *numpy_dtypes]


#: The globals a checkpoint may name without being trusted (see :func:`_safe_globals`).
SAFE_GLOBALS: list[Any] = _safe_globals()


def read_checkpoint(path: str | os.PathLike, mmap: bool = False, trust: bool = False) -> dict[str, Any]:
    """Read a checkpoint file into a dict with at least ``state_dict`` (tensors on the CPU).

    A checkpoint is data: it is unpickled with PyTorch's ``weights_only`` loader, which builds
    tensors, containers, numbers and strings and the classes of :data:`SAFE_GLOBALS` (argparse
    namespaces, paths, numpy numbers and arrays), and calls nothing else. A file that names any
    other global (a function or class whose unpickling could run code) is refused, naming the
    file and the globals, unless ``trust`` is True: then it is unpickled in full, which runs
    whatever the file says. Only trust files whose source you trust.

    ``module.`` prefixes are stripped. With ``mmap`` the tensors of a ``torch.save`` archive
    stay in the file, mapped into memory, until they are used (several checkpoints can be held
    at the cost of one); older pickle files are read whole either way. Raises
    :class:`~gabic.errors.CheckpointError` naming the file when it is missing, truncated,
    corrupted, not data (and not trusted) or holds no state_dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file" if not path.exists() else f"{path}: not a file")
    archive = _check_zip(path)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and archive)
    except pickle.UnpicklingError as err:
        unsafe = _unsafe_globals(path, archive, err)
        if not unsafe:
            raise CheckpointError(f"{path}: cannot read the checkpoint ({_first_line(err)}); is it truncated or corrupted?") from None
        if not trust:
            raise CheckpointError(
                f"{path}: holds Python objects that are not data ({', '.join(unsafe)}); unpickling it could run code. "
                "If you trust where it comes from, load it with trust=True (--trust-checkpoint)"
            ) from None
        log.warning("%s: unpickling it in full, as asked (it names %s)", path, ", ".join(unsafe))
        obj = _load_full(path)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({_first_line(err)}); is it truncated or corrupted?") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        ckpt = dict(obj)
    elif isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values()):
        ckpt = {"state_dict": obj}
    else:
        raise CheckpointError(f"{path}: no state_dict found (expected a dict with a 'state_dict' entry or a dict of tensors)")
    ckpt["state_dict"] = {re.sub(r"^module\.", "", k): v for k, v in ckpt["state_dict"].items()}
    for key, value in ckpt["state_dict"].items():
        if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{path}: corrupted checkpoint ({key} holds NaN or infinite values)")
    return ckpt


def _unsafe_globals(path: Path, archive: bool, err: Exception) -> list[str]:
    """The globals of a refused checkpoint outside :data:`SAFE_GLOBALS` (empty: it was refused for
    another reason, such as a cut-off file)."""
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in SAFE_GLOBALS}
    if archive:
        try:
            return [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(path) if g not in allowed]
        except Exception:  # noqa: BLE001 - a damaged archive: read the names off the error instead
            pass
    return sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(err))) - allowed)


def _check_zip(path: Path) -> bool:
    """Check the CRC of every member of a zip-format checkpoint (torch.load does not); True for
    a zip archive (``torch.save``'s format), False for a plain pickle."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(2)
        if not head:
            raise CheckpointError(f"{path}: cannot read the checkpoint (the file is empty); is it truncated or corrupted?")
        if head == b"PK":  # a zip archive without its central directory: cut short
            raise CheckpointError(f"{path}: cannot read the checkpoint (incomplete zip archive); is it truncated or corrupted?")
        if head[:1] != b"\x80":  # neither torch.save's zip format nor a pickle (protocol 2+)
            raise CheckpointError(
                f"{path}: cannot read the checkpoint: not a PyTorch file (neither a torch.save archive nor a pickle)"
            )
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({err}); is it truncated or corrupted?") from None
    if bad is not None:
        raise CheckpointError(f"{path}: corrupted checkpoint (checksum mismatch in {bad})")
    return True


def _load_full(path: Path) -> Any:
    """Unpickle a trusted checkpoint in full (it may run code: only after the caller said trust)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same to the user
        raise CheckpointError(f"{path}: cannot read the checkpoint ({_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    """The first sentence of an exception's message (torch's run on for paragraphs)."""
    return first_line(err).split(". ")[0].rstrip(".") or type(err).__name__


def detect_config(state_dict: dict[str, torch.Tensor]) -> dict[str, Any] | None:
    """The architecture and the hyper-parameters that the keys and shapes reveal (the first registered
    architecture that recognises them, :func:`gabic.models.recognise`), or None."""
    return recognise(state_dict)


_LEGACY_EB = re.compile(r"(entropy_bottleneck)\._(matrix|bias|factor)(\d+)$")
_LEGACY_NAMES = {"matrix": "matrices", "bias": "biases", "factor": "factors"}


def current_key(key: str) -> str:
    """CompressAI's current name of a legacy entropy-bottleneck key (``_matrix0 -> matrices.0``)."""
    return _LEGACY_EB.sub(lambda m: f"{m.group(1)}.{_LEGACY_NAMES[m.group(2)]}.{m.group(3)}", key)


def _key_report(model: torch.nn.Module, state_dict: dict) -> str:
    """``"N keys missing (first: ...), M unexpected (first: ...)"`` of a state_dict against a model,
    or, where the keys agree, ``"N tensors of another shape (first: key (file) against (model))"``
    (the entropy coder's tables, whose shapes follow ``update()``, left out)."""
    expected = model.state_dict()
    given = {current_key(k): v for k, v in state_dict.items()}
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in state_dict if current_key(k) not in expected]
    parts = []
    if missing:
        parts.append(f"{len(missing)} keys missing (first: {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (first: {unexpected[0]})")
    if not parts:
        tables = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")
        shaped = [k for k, v in expected.items() if torch.is_tensor(given[k]) and given[k].shape != v.shape and not k.endswith(tables)]
        if shaped:
            k = shaped[0]
            plural = "s" if len(shaped) > 1 else ""
            first = f"{k} {tuple(given[k].shape)}, the model's {tuple(expected[k].shape)}"
            parts.append(f"{len(shaped)} tensor{plural} of another shape (first: {first})")
    return ", ".join(parts)


def load_checkpoint(
    path: str | os.PathLike,
    device: str | torch.device = "auto",
    architecture: str | None = None,
    trust: bool = False,
    **options: Any,
) -> LearnedCodec:
    """Load a released, CompressAI zoo or gabic checkpoint into a ready model (CDFs updated, eval mode).

    Args:
        path: the checkpoint file.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``...
        architecture: expect this architecture (a name of :data:`gabic.models.MODELS`); a
            checkpoint of another one is refused naming the first missing and unexpected keys.
        trust: unpickle a file that holds more than data in full (it can run code; see
            :func:`read_checkpoint`). Default False: such a file is refused.
        **options: the architecture's inference options (:meth:`~gabic.models.LearnedCodec.options`
            with ``inference=True``: for GABIC ``knn``, ``backend``, ``knn_rule``); an option the
            architecture does not take on a loaded checkpoint is refused, naming both.

    The entropy models' CDF tables are recomputed on the CPU from the weights
    (``update(force=True)``) before the model moves to ``device``, so that they are the
    same whatever the device.
    """
    dev = resolve_device(device)
    ckpt = read_checkpoint(path, trust=trust)
    model = build_checked(checkpoint_config(ckpt, path, architecture, **options), path)
    return load_weights(model, ckpt, path, dev)


def checkpoint_config(
    ckpt: dict[str, Any], path: str | os.PathLike, architecture: str | None = None, **options: Any
) -> dict[str, Any]:
    """The configuration a checkpoint read with :func:`read_checkpoint` is loaded with.

    gabic's checkpoints carry it (:meth:`~gabic.models.LearnedCodec.upgrade_config` fills in what
    older ones leave out); for released and zoo ones it is read off the keys (:func:`detect_config`),
    the rest taking the paper's defaults. ``options`` (inference options of the architecture) are
    applied last. ``path`` names the file in errors: :class:`~gabic.errors.CheckpointError` for a
    foreign checkpoint, one of another ``architecture`` than expected or an option it does not take.
    """
    sd = ckpt["state_dict"]
    saved = ckpt.get("config")
    if isinstance(saved, dict):
        try:
            config = model_class(saved).upgrade_config(saved)
        except ValueError as err:
            raise CheckpointError(f"{path}: its config names an {err}") from None
    else:
        config = detect_config(sd)
        if config is None:
            raise CheckpointError(
                f"{path}: not a checkpoint of a known architecture ({', '.join(MODELS)}): none recognises its "
                f"{len(sd)} keys (first key: {next(iter(sd), 'none')})"
            )
    if architecture is not None:
        if architecture not in MODELS:
            raise ValueError(f"architecture must be one of {', '.join(MODELS)}, got {architecture!r}")
        if config["model"] != architecture:
            raise CheckpointError(
                f"{path}: a {config['model']} checkpoint, not {architecture}: {_architecture_report(architecture, config, sd)}"
            )
    try:
        options = model_class(config).check_options(options, inference=True)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    return {**config, **options}


def _architecture_report(architecture: str, config: dict[str, Any], state_dict: dict) -> str:
    """The keys a checkpoint misses and has too many for ``architecture`` (built at the sizes the
    two architectures share, its defaults otherwise)."""
    cls = MODELS[architecture]
    shared = {k: config[k] for k in cls.options() if k in config}
    try:
        model = build_model({"model": architecture, **shared})
    except ValueError:
        model = build_model({"model": architecture})
    return _key_report(model, state_dict)


def build_checked(config: dict[str, Any], path: str | os.PathLike) -> LearnedCodec:
    """:func:`gabic.models.build_model`, a bad value reported as a :class:`~gabic.errors.CheckpointError` naming ``path``."""
    try:
        return build_model(config)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None


def load_weights(model: LearnedCodec, ckpt: dict[str, Any], path: str | os.PathLike, device: torch.device) -> LearnedCodec:
    """Put a checkpoint's weights into ``model`` (built for its configuration), recompute the
    entropy coder's tables on the CPU and move the model to ``device``, in eval mode.

    ``model`` may have held another checkpoint of the same configuration before: evaluation
    reuses one model per configuration. ``path`` names the file in errors.
    """
    sd = ckpt["state_dict"]
    model = model.cpu()
    try:
        model.load_state_dict(sd)
    except RuntimeError as err:
        report = _key_report(model, sd)
        detail = report or _first_line(err).replace("Error(s) in loading state_dict for", "in")
        raise CheckpointError(f"{path}: does not fit a {model.name} model with {_describe(model.config)}: {detail}") from None
    model.update(force=True)
    return model.to(device).eval()


def checkpoint_lambda(ckpt: dict[str, Any]) -> float | None:
    """The rate-distortion lambda a checkpoint records (gabic's ``lmbda``; ``lambda`` or
    ``lmbda_value`` in others), None where it says nothing: never guessed from the file name."""
    return next((ckpt[k] for k in ("lmbda", "lambda", "lmbda_value") if isinstance(ckpt.get(k), int | float)), None)


def _describe(config: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items() if k != "model")


def save_checkpoint(model: LearnedCodec, path: str | os.PathLike, **extra: Any) -> Path:
    """Write ``{"state_dict", "config", **extra}`` atomically (a temporary file, then rename).

    ``extra`` can hold the lambda, optimiser state, step... anything ``torch.save`` takes.
    """
    path = Path(path)
    payload = {"state_dict": model.state_dict(), "config": model.config, **extra}
    with atomic_open(path) as f:
        torch.save(payload, f)
    return path


# -- finding checkpoints ------------------------------------------------------------------------------


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
