"""The learned codecs, registered by name.

Built in: ``"gabic"``, ``"wacnn"``, ``"stf"`` (:mod:`gabic.models.gabic`, :mod:`~gabic.models.wacnn`,
:mod:`~gabic.models.stf`) and CompressAI's ``"mbt2018-mean"`` and ``"cheng2020-anchor"``
(:mod:`gabic.models.zoo`). Each is one module whose class is decorated with :func:`register`; the
contract they all keep is :class:`~gabic.models.base.LearnedCodec`.

A package of one's own adds an architecture through the entry-point group ``gabic.models``: each
entry names a module (imported, so that its ``@register`` runs) or a :class:`LearnedCodec` class
(registered). They are loaded when :mod:`gabic.models` is first imported; one that fails to load
is logged and left out.
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any

from gabic.models.base import LearnedCodec, Option
from gabic.models.channel_context import ChannelContextCodec
from gabic.models.gabic import GABIC  # the architectures' modules register them on import
from gabic.models.registry import MODELS, register
from gabic.models.stf import STF
from gabic.models.wacnn import WACNN
from gabic.models.zoo import Cheng2020Anchor, Mbt2018Mean

__all__ = [
    "ENTRY_POINT_GROUP",
    "GABIC",
    "MODELS",
    "STF",
    "WACNN",
    "ChannelContextCodec",
    "Cheng2020Anchor",
    "LearnedCodec",
    "Mbt2018Mean",
    "Option",
    "build_model",
    "config_identity",
    "model_class",
    "option_owners",
    "recognise",
    "register",
]

log = logging.getLogger(__name__)

#: The entry-point group through which other packages register architectures.
ENTRY_POINT_GROUP = "gabic.models"


def _load_entry_points() -> None:
    """Register the architectures of the ``gabic.models`` entry points (see the module docstring)."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if isinstance(obj, type):
                register(obj)
        except Exception as err:  # noqa: BLE001 - a broken plug-in must not stop gabic: say which and why
            log.warning(
                "entry point %s = %s (group %s) not loaded: %s: %s", ep.name, ep.value, ENTRY_POINT_GROUP, type(err).__name__, err
            )


_load_entry_points()


def model_class(config: dict[str, Any] | str) -> type[LearnedCodec]:
    """The class of a configuration ``{"model": name, ...}`` (or of a name); ValueError for an unknown name."""
    name = config if isinstance(config, str) else config.get("model")
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: expected one of {', '.join(MODELS)}")
    return MODELS[name]


def build_model(config: dict[str, Any]) -> LearnedCodec:
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


def recognise(state_dict: dict[str, Any]) -> dict[str, Any] | None:
    """The configuration of the first registered architecture that recognises ``state_dict``
    (:meth:`LearnedCodec.recognise`), None when none does."""
    for cls in MODELS.values():
        config = cls.recognise(state_dict)
        if config is not None:
            return config
    return None


def option_owners(inference: bool = False) -> dict[str, list[type[LearnedCodec]]]:
    """Every option name any registered architecture declares, with the architectures that take it
    (with ``inference``: those that take it on a loaded checkpoint), in registry order."""
    owners: dict[str, list[type[LearnedCodec]]] = {}
    for cls in MODELS.values():
        for name in cls.options(inference):
            owners.setdefault(name, []).append(cls)
    return owners
