"""The argument checks the library repeats, each with its one-line error.

Integers are :class:`numbers.Integral` values (``int``, NumPy integers) but never ``bool``
(``True`` is an ``int`` to Python, never a count or a size here); numbers are
:class:`numbers.Real` values but never ``bool``. A failed check raises ValueError whose message
names the argument, says what was expected and shows what was given, e.g.
``size must be a positive integer (pixels), got 0``.

This module imports only the standard library: any module of gabic may import it.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

__all__ = ["check_choice", "check_int", "is_int", "is_number"]


def is_int(value: Any) -> bool:
    """True for an integer (``int`` or a NumPy integer), False for ``bool`` and anything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """True for a real number (``int``, ``float``, NumPy scalars), False for ``bool`` and anything else.

    Infinities and NaN are numbers: callers that need a finite one test :func:`math.isfinite`.
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _expected(minimum: int | None, maximum: int | None) -> str:
    """``"a positive integer"``, ``"an integer >= 16"``, ``"an integer in 0..7"``... for the message."""
    if minimum is not None and maximum is not None:
        return f"an integer in {minimum}..{maximum}"
    if minimum == 1:
        return "a positive integer"
    if minimum is not None:
        return f"an integer >= {minimum}"
    if maximum is not None:
        return f"an integer <= {maximum}"
    return "an integer"


def check_int(
    value: Any,
    name: str,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    also: Iterable[Any] = (),
    detail: str = "",
) -> Any:
    """``value`` as an ``int`` if it is an integer in ``minimum..maximum``, else ValueError.

    Args:
        value: what the caller was given.
        name: the argument's name, as the message says it.
        minimum, maximum: the smallest and largest values allowed, both included (default None:
            no bound).
        also: other values accepted as they are and named first in the message, e.g. ``(None,)``
            or ``("mean",)`` (default: none).
        detail: text put between the expected range and ``", got ..."`` in the message, e.g.
            ``" (windows of 16 nodes)"`` or ``" for block g_a.4"`` (default: none).

    Returns:
        ``int(value)``, or ``value`` itself when it is one of ``also``.

    Raises:
        ValueError: ``"{name} must be [None or ]{a positive integer | an integer in lo..hi |
        an integer >= lo}{detail}, got {value!r}"`` for a ``bool``, a non-integer or a value out of
        range.
    """
    also = tuple(also)
    if any(value is a or (type(value) is type(a) and value == a) for a in also):
        return value
    if is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return int(value)
    alternatives = "".join(f"{a!r} or " for a in also)
    raise ValueError(f"{name} must be {alternatives}{_expected(minimum, maximum)}{detail}, got {value!r}")


def check_choice(value: Any, choices: tuple[str, ...], what: str) -> str:
    """``value`` if it is one of ``choices``, else a ValueError naming ``what`` and the choices:
    ``"{what} must be one of 'a', 'b', got {value!r}"``."""
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
