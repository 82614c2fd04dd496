"""The codecs, registered by name: ``"gabic"``, ``"wacnn"``, ``"stf"``."""

from __future__ import annotations

from typing import Any

from gabic.models.base import LearnedCodec
from gabic.models.channel_context import ChannelContextCodec
from gabic.models.gabic import GABIC
from gabic.models.stf import STF
from gabic.models.wacnn import WACNN

__all__ = ["GABIC", "MODELS", "STF", "WACNN", "ChannelContextCodec", "LearnedCodec", "build_model", "config_identity", "model_class"]

#: Registry: architecture name -> class.
MODELS: dict[str, type[ChannelContextCodec]] = {"gabic": GABIC, "wacnn": WACNN, "stf": STF}


def model_class(config: dict[str, Any]) -> type[ChannelContextCodec]:
    """The class of a configuration ``{"model": name, ...}``; ValueError for an unknown name."""
    name = config.get("model")
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {sorted(MODELS)}")
    return MODELS[name]


def build_model(config: dict[str, Any]) -> ChannelContextCodec:
    """Build a model from a config such as ``model.config``: ``{"model": name, **hyper-parameters}``.

    The model's layers check the values (ValueError naming the argument); an argument the
    architecture does not have is a ValueError too.
    """
    cls = model_class(config)
    kwargs = {k: v for k, v in config.items() if k != "model"}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"bad hyper-parameters for {cls.name}: {err}") from None


def config_identity(config: dict[str, Any]) -> bytes:
    """The 8-byte identity of a configuration of any registered architecture
    (:meth:`LearnedCodec.identity_of`): equal identities decode each other's streams."""
    return model_class(config).identity_of(config)
