"""gabic: a research toolkit for GABIC, graph-based attention for learned image compression."""

from __future__ import annotations

import warnings

from gabic._version import __version__

with warnings.catch_warnings():
    # CompressAI 1.2.8 uses torch.jit.script at import time, which torch now flags as deprecated.
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    import compressai  # noqa: F401

from gabic.checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from gabic.measurement import Measurement, measure  # noqa: E402
from gabic.metrics import bd_psnr, bd_rate, ms_ssim, psnr  # noqa: E402
from gabic.models import GABIC, MODELS, STF, WACNN, build_model  # noqa: E402

__all__ = [
    "GABIC",
    "MODELS",
    "Measurement",
    "STF",
    "WACNN",
    "__version__",
    "bd_psnr",
    "bd_rate",
    "build_model",
    "load_checkpoint",
    "measure",
    "ms_ssim",
    "psnr",
    "save_checkpoint",
]
