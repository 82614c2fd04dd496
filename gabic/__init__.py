"""gabic: a research toolkit for GABIC, graph-based attention for learned image compression."""

from __future__ import annotations

__version__ = "0.1.0"

from gabic.models import GABIC, MODELS, STF, WACNN, build_model

__all__ = ["GABIC", "MODELS", "STF", "WACNN", "__version__", "build_model"]
