"""Training: ``fit()``, the ``gabic train`` command and ``torchrun -m gabic.train``.

- :mod:`gabic.train.config`: the published constants, the presets and :class:`TrainConfig`;
- :mod:`gabic.train.loop`: :func:`fit` (the loop as a few named steps; :class:`NonFiniteError`
  when a step is not finite), :func:`rd_loss`, :func:`validate`, :func:`run_distributed` (a
  ``torchrun`` process) and :func:`cuda_training_settings`;
- :mod:`gabic.train.figures`: :func:`training_figure` (loss, bpp and PSNR against the step);
- :mod:`gabic.train.like`: :func:`fit_like`, another architecture trained the way a run was;
- ``python -m gabic.train ...`` (``gabic/train/__main__.py``) is ``gabic train ...``.
"""

from __future__ import annotations

from gabic.train.config import (
    PAPER_AUX_LR,
    PAPER_CLIP,
    PAPER_LR,
    PLATEAU_FACTOR,
    PLATEAU_PATIENCE,
    PRECISIONS,
    PRESETS,
    TrainConfig,
    initial_model,
    resolve_config,
)
from gabic.train.figures import draw_training, training_figure
from gabic.train.like import fit_like, held_out_images, run_settings
from gabic.train.loop import NonFiniteError, cuda_training_settings, fit, rd_loss, run_distributed, validate

__all__ = [
    "NonFiniteError",
    "PAPER_AUX_LR",
    "PAPER_CLIP",
    "PAPER_LR",
    "PLATEAU_FACTOR",
    "PLATEAU_PATIENCE",
    "PRECISIONS",
    "PRESETS",
    "TrainConfig",
    "cuda_training_settings",
    "draw_training",
    "fit",
    "fit_like",
    "held_out_images",
    "initial_model",
    "rd_loss",
    "resolve_config",
    "run_distributed",
    "run_settings",
    "training_figure",
    "validate",
]
