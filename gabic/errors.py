"""Errors that gabic reports to the user as one clear line (the CLI exits with status 1)."""

from __future__ import annotations

__all__ = [
    "first_line",
    "BitstreamError",
    "CheckpointError",
    "CodecError",
    "DataError",
    "DeviceError",
    "GabicError",
    "ImageError",
    "ResultsError",
]


class GabicError(Exception):
    """Base class: a problem with the user's input, described in one line."""


class CheckpointError(GabicError):
    """A checkpoint that is missing, unreadable or of an unexpected architecture."""


class ImageError(GabicError):
    """An image that is missing, unreadable or too small."""


class BitstreamError(GabicError):
    """A .gabic file that is truncated, corrupted or written by another model."""


class DataError(GabicError):
    """A dataset folder that is missing or empty, or a download that failed its check."""


class CodecError(GabicError):
    """An unknown or unavailable classical codec, or a quality outside its range."""


class ResultsError(GabicError):
    """A results file that is missing or not in the results schema."""


class DeviceError(GabicError, ValueError):
    """An unknown device, or a GPU asked for on a machine without one (also a ValueError, as before)."""


def first_line(message: object) -> str:
    """The first non-blank line of a message (an exception's or any text), stripped; "" if none."""
    return next((line.strip() for line in str(message).splitlines() if line.strip()), "")
