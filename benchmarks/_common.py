"""Helpers shared by the benchmark scripts: the machine's name, JSON lines, device sync."""

from __future__ import annotations

import json
import platform

import torch


def machine(device: torch.device) -> str:
    """The GPU's name, or the CPU and its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def emit(record: dict) -> None:
    """Print one JSON line."""
    print(json.dumps(record), flush=True)


def sync(device: torch.device) -> None:
    """Wait for the GPU (timings must not stop the clock early)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
