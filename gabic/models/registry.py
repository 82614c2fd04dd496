"""The registry of architectures: :data:`MODELS` and the :func:`register` decorator every
architecture's module uses (the bottom of :mod:`gabic.models`, so that model modules import it
without importing the package)."""

from __future__ import annotations

from typing import TypeVar

from gabic.models.base import LearnedCodec

__all__ = ["MODELS", "register"]

#: Registry: architecture name -> class (built-in ones first, then entry points, in load order).
MODELS: dict[str, type[LearnedCodec]] = {}

C = TypeVar("C", bound=type[LearnedCodec])


def register(cls: C) -> C:
    """Class decorator: add a :class:`LearnedCodec` subclass to :data:`MODELS` under its ``name``.

    Raises TypeError for a class that is not a LearnedCodec, ValueError for a missing name or one
    another class holds."""
    if not (isinstance(cls, type) and issubclass(cls, LearnedCodec)):
        raise TypeError(f"register: {cls!r} is not a gabic.models.LearnedCodec subclass")
    if not cls.name:
        raise ValueError(f"register: {cls.__qualname__} sets no name")
    holder = MODELS.get(cls.name)
    if holder is not None and holder is not cls:
        raise ValueError(f"register: the name {cls.name!r} is taken by {holder.__module__}.{holder.__qualname__}")
    MODELS[cls.name] = cls
    return cls
