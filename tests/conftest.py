"""Shared fixtures: small seeded models that run fast on a CPU, sample photos."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gabic import GABIC, STF, WACNN
from gabic.checkpoints import save_checkpoint
from gabic.data import samples

DATA = Path(__file__).parent / "data"

#: Small sizes: every code path of the paper-size models, a fraction of the cost.
SMALL = {
    "gabic": lambda: GABIC(N=32, M=40, num_slices=4),
    "wacnn": lambda: WACNN(N=32, M=40, num_slices=4),
    "stf": lambda: STF(embed_dim=12, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4), num_slices=4),
}


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run the ``gabic`` command in-process; return (exit status, stdout, stderr)."""
    import logging

    from gabic.cli import main

    try:
        code = main([str(a) for a in argv])
    finally:  # the handler the command put on the root logger writes to this test's captured stderr: not beyond it
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "gabic_cli", False)]:
            root.removeHandler(handler)
    out = capsys.readouterr()
    return code, out.out, out.err


def small_model(name: str, seed: int = 0):
    """A small model of architecture ``name``, seeded, CDFs updated, eval mode."""
    torch.manual_seed(seed)
    model = SMALL[name]()
    model.update(force=True)
    return model.eval()


@pytest.fixture(scope="session")
def sample_paths() -> list[Path]:
    return samples()


@pytest.fixture(scope="session")
def gabic_ckpt(tmp_path_factory) -> Path:
    """A gabic checkpoint of a small GABIC."""
    path = tmp_path_factory.mktemp("ckpt") / "small-gabic.pth.tar"
    save_checkpoint(small_model("gabic"), path, lmbda=0.0130)
    return path


@pytest.fixture(scope="session")
def wacnn_ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "small-wacnn.pth.tar"
    save_checkpoint(small_model("wacnn"), path)
    return path


@pytest.fixture(scope="session")
def smooth_image() -> torch.Tensor:
    """A smooth random 128x128 image ``(1, 3, H, W)`` in [0, 1] (16x16 noise, bilinearly enlarged)."""
    import torch.nn.functional as F

    noise = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return F.interpolate(noise, size=(128, 128), mode="bilinear", align_corners=False)


@pytest.fixture(scope="session")
def small_captures(smooth_image):
    """The attention captures (:func:`gabic.viz.capture`) of the small GABIC and WACNN on :func:`smooth_image`."""
    from gabic import viz

    return {name: viz.capture(small_model(name), smooth_image) for name in ("gabic", "wacnn")}


@pytest.fixture
def gabic_cap(small_captures):
    """The small GABIC's capture of :func:`smooth_image`."""
    return small_captures["gabic"]


@pytest.fixture
def wacnn_cap(small_captures):
    """The small WACNN's capture of :func:`smooth_image`."""
    return small_captures["wacnn"]
