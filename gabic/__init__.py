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

#: The sub-packages and modules that ``gabic.<name>`` imports on first use (``import gabic`` stays
#: light): ``gabic.results.load("bpg444")`` and ``gabic.released.evaluate_released(...)`` work after
#: ``import gabic`` alone.
_SUBMODULES = frozenset(
    {"analysis", "bitstream", "codecs", "data", "evaluate", "images", "plots", "released", "results", "train", "viz", "widgets"}
)


def __getattr__(name: str):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"gabic.{name}")
    raise AttributeError(f"module 'gabic' has no attribute {name!r}")


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
