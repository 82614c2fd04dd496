"""The codecs, registered by name: ``"gabic"``, ``"wacnn"``, ``"stf"``."""

from __future__ import annotations

from typing import Any

from gabic.models.channel_context import ChannelContextCodec
from gabic.models.gabic import GABIC
from gabic.models.stf import STF
from gabic.models.wacnn import WACNN

__all__ = ["GABIC", "MODELS", "STF", "WACNN", "ChannelContextCodec", "build_model"]

#: Registry: architecture name -> class.
MODELS: dict[str, type[ChannelContextCodec]] = {"gabic": GABIC, "wacnn": WACNN, "stf": STF}


def build_model(config: dict[str, Any]) -> ChannelContextCodec:
    """Build a model from a config such as ``model.config``: ``{"model": name, **hyper-parameters}``."""
    cfg = dict(config)
    name = cfg.pop("model", None)
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {sorted(MODELS)}")
    try:
        return MODELS[name](**cfg)
    except TypeError as err:
        raise ValueError(f"bad hyper-parameters for {name}: {err}") from None
