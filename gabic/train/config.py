"""What a training run is: the published constants, the presets, :class:`TrainConfig` and its checks."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gabic.errors import GabicError
from gabic.models import MODELS, LearnedCodec, build_model, option_owners

__all__ = [
    "PAPER_AUX_LR",
    "PAPER_CLIP",
    "PAPER_LR",
    "PLATEAU_FACTOR",
    "PLATEAU_PATIENCE",
    "PRECISIONS",
    "PRESETS",
    "RESUMABLE",
    "RUN_NAME",
    "TrainConfig",
    "experiment_settings",
    "initial_model",
    "saved_options",
    "resolve_config",
    "resume_config",
]

#: The published schedule: ReduceLROnPlateau factor and patience, Adam learning rates, clipping.
PAPER_LR, PAPER_AUX_LR, PAPER_CLIP = 1e-4, 1e-3, 1.0
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.3, 4

#: What a run name may be: one folder inside the runs folder.
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

#: The settings a resumed run may change: how long it trains, how often it validates, where and how
#: fast it runs, what it logs. Every other setting (but the run's place, ``name`` and ``runs_dir``)
#: defines the experiment and stays what the run recorded (:func:`resume_config`).
RESUMABLE = ("steps", "epochs", "val_interval", "device", "workers", "tensorboard", "channels_last", "compile", "skip_nonfinite")
#: Where a run lives and what it records by itself: neither a setting of the experiment nor one to change.
_PLACE = ("name", "runs_dir", "extra")

#: The fields that runs recorded at the top of their settings before the model's options had
#: their own entry (:func:`saved_options` reads them).
_LEGACY_OPTION_FIELDS = ("N", "M", "num_slices", "knn", "heads", "backend", "knn_rule")

#: Training precisions: fp32, or bf16 autocast on a GPU.
PRECISIONS = ("fp32", "bf16")

#: Named settings. "small-cpu" visibly learns on 2 CPU cores in a few minutes; "paper" is the
#: published recipe (a GPU job) with each architecture's published model (its defaults). A preset's
#: ``options`` apply to the architectures that take them (a reduced GABIC or WACNN; STF keeps its
#: sizes but the slices).
PRESETS: dict[str, dict[str, Any]] = {
    "small-cpu": {
        "model": "gabic",
        "options": {"N": 64, "M": 96, "num_slices": 8},
        "patch_size": 128,
        "batch_size": 4,
        "lr": 5e-4,
        "val_interval": 50,
    },
    "paper": {"model": "gabic", "patch_size": 256, "batch_size": 16, "lr": PAPER_LR},
}


@dataclass
class TrainConfig:
    """Everything a run needs; stored in its checkpoints and in ``config.json``."""

    model: str = "gabic"
    options: dict[str, Any] = field(default_factory=dict)
    lmbda: float = 0.0130
    dataset: str | None = None
    val_dataset: str | None = None
    patch_size: int = 256
    batch_size: int = 16
    steps: int | None = None
    epochs: int | None = None
    lr: float = PAPER_LR
    aux_lr: float = PAPER_AUX_LR
    clip: float | None = PAPER_CLIP
    val_interval: int = 100
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    skip_nonfinite: int = 0
    workers: int = 0
    name: str | None = None
    runs_dir: str = "results/runs"
    tensorboard: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def model_config(self) -> dict[str, Any]:
        """The ``build_model`` config: the architecture and the options given (its defaults for the rest)."""
        return {"model": self.model, **self.options}


def experiment_settings() -> tuple[str, ...]:
    """The fields of :class:`TrainConfig` that define a run's experiment (all but :data:`RESUMABLE`
    and the run's place): model and sizes, lambda, data, crops and batch, optimiser, precision, seed."""
    return tuple(f for f in TrainConfig.__dataclass_fields__ if f not in RESUMABLE + _PLACE)


def saved_options(saved: dict[str, Any]) -> dict[str, Any]:
    """The model options of recorded settings (a ``config.json`` or a checkpoint's ``train_config``):
    their ``options``, or, for runs recorded before options had their own entry, the top-level
    fields the architecture takes."""
    if isinstance(saved.get("options"), dict):
        return dict(saved["options"])
    cls = MODELS.get(saved.get("model", ""))
    takes = cls.options() if cls is not None else {}
    return {k: saved[k] for k in _LEGACY_OPTION_FIELDS if k in takes and saved.get(k) is not None}


def _check(cfg: TrainConfig) -> None:
    """The run's own settings; the model's are checked by the model (:func:`initial_model`)."""
    if cfg.model not in MODELS:
        raise GabicError(f"--model must be one of {', '.join(sorted(MODELS))}, got {cfg.model!r}")
    if not (cfg.lmbda > 0 and math.isfinite(cfg.lmbda)):
        raise GabicError(f"lambda must be a positive number, got {cfg.lmbda}")
    for key in ("patch_size", "batch_size", "val_interval"):
        if getattr(cfg, key) < 1:
            raise GabicError(f"{key} must be at least 1, got {getattr(cfg, key)}")
    if cfg.patch_size % 64:
        raise GabicError(f"patch_size must be a multiple of 64 (the codecs downsample by 64), got {cfg.patch_size}")
    if (cfg.steps is None) == (cfg.epochs is None):
        raise GabicError("give either steps or epochs")
    for key in ("steps", "epochs"):
        if getattr(cfg, key) is not None and getattr(cfg, key) < 1:
            raise GabicError(f"{key} must be at least 1, got {getattr(cfg, key)}")
    if cfg.name is not None and not RUN_NAME.fullmatch(cfg.name):
        raise GabicError(
            f"run name {cfg.name!r}: use letters, digits, '.', '_' and '-' (not starting with '.'); a run stays inside its runs folder"
        )
    if cfg.precision not in PRECISIONS:
        raise GabicError(f"precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if cfg.workers < 0:
        raise GabicError(f"workers must be >= 0, got {cfg.workers}")
    if cfg.skip_nonfinite < 0:
        raise GabicError(f"skip_nonfinite must be >= 0, got {cfg.skip_nonfinite}")


def resolve_config(preset: str | None = None, **options: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a run: the preset's settings, then ``options`` (None ignored).

    ``options`` are fields of :class:`TrainConfig` and the model's options (``knn=6``, ``N=64``;
    or all of them as ``options={...}``), which the architecture checks: one it does not take is
    refused naming both. Checks every value (see :func:`gabic.train.fit`); 1000 steps when neither
    steps nor epochs is given.
    """
    if preset and preset not in PRESETS:
        raise GabicError(f"unknown preset {preset!r}: {', '.join(PRESETS)}")
    base = dict(PRESETS[preset]) if preset else {}
    preset_options = base.pop("options", {})
    given = {k: v for k, v in options.items() if v is not None}
    fields = set(TrainConfig.__dataclass_fields__) - {"options"}
    model_options = {**given.pop("options", {}), **{k: given.pop(k) for k in list(given) if k not in fields}}
    unknown = set(model_options) - set(option_owners())
    if unknown:
        raise GabicError(f"unknown training options: {', '.join(sorted(unknown))}")
    base.update(given)
    cfg = TrainConfig(**base)
    for key in ("dataset", "val_dataset", "runs_dir"):  # folders as text: recorded in checkpoints and config.json
        if getattr(cfg, key) is not None:
            setattr(cfg, key, str(getattr(cfg, key)))
    if cfg.steps is None and cfg.epochs is None:
        cfg.steps = 1000
    _check(cfg)
    cls = MODELS[cfg.model]
    try:
        model_options = cls.check_options(model_options)
    except ValueError as err:
        raise GabicError(str(err)) from None
    cfg.options = {**{k: v for k, v in preset_options.items() if k in cls.options()}, **model_options}
    return cfg


def resume_config(cfg: TrainConfig, saved: dict[str, Any], given: set[str], source: str) -> TrainConfig:
    """``cfg`` for resuming the run that recorded the settings ``saved`` (a checkpoint's ``train_config``).

    Every setting of :func:`experiment_settings` that was not ``given`` (as an option or by the
    preset) takes the recorded value; one given with another value is refused, naming it, both
    values and what may change (:data:`RESUMABLE`). ``steps``/``epochs`` are the recorded ones unless
    either is given, so that resuming a pre-empted run needs nothing but its name. ``source`` names
    the checkpoint in errors.
    """
    saved = {**saved, "options": saved_options(saved)}
    for key, value in cfg.options.items():
        if key in given and saved["options"].get(key, value) != value:
            raise GabicError(
                f"{source}: the run was trained with {key}={saved['options'].get(key)!r}, not {value!r}; a resumed run keeps the "
                f"settings of its experiment (only {', '.join(RESUMABLE)} may change): leave the option out, or train another --name"
            )
    for key in experiment_settings():
        if key not in saved:  # recorded before the setting existed: nothing to compare
            continue
        if key != "options" and key in given and getattr(cfg, key) != saved[key]:
            raise GabicError(
                f"{source}: the run was trained with {key}={saved[key]!r}, not {getattr(cfg, key)!r}; a resumed run keeps the "
                f"settings of its experiment (only {', '.join(RESUMABLE)} may change): leave the option out, or train another --name"
            )
        setattr(cfg, key, saved[key])
    if not {"steps", "epochs"} & given:
        cfg.epochs = saved.get("epochs")
        cfg.steps = None if cfg.epochs is not None else saved.get("steps", cfg.steps)
    _check(cfg)
    return cfg


def initial_model(cfg: TrainConfig) -> LearnedCodec:
    """The model a run starts from (seeded with ``cfg.seed``, then built), on the CPU, train mode.

    A bad hyper-parameter (``knn`` outside its window, ...) is a :class:`~gabic.errors.GabicError`
    with the model's own message."""
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    try:
        return build_model(cfg.model_config())
    except ValueError as err:
        raise GabicError(str(err)) from None
