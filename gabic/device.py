"""Device selection: everything runs on a CPU; ``"auto"`` picks CUDA when present."""

from __future__ import annotations

import torch

from gabic.errors import DeviceError

__all__ = ["model_device", "resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` if available else ``cpu``; anything else is checked and returned.

    Raises :class:`~gabic.errors.DeviceError` (a ValueError) for an unknown device or CUDA on a
    machine without it."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DeviceError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} was asked for but CUDA is not available on this machine")
    return dev


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model's parameters are on."""
    return next(model.parameters()).device
