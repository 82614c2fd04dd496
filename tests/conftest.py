"""Shared fixtures: small seeded models that run fast on a CPU, sample photos."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest
import torch

from gabic import GABIC, STF, WACNN
from gabic.checkpoints import save_checkpoint
from gabic.data import samples
from gabic.models import Cheng2020Anchor, Mbt2018Mean

DATA = Path(__file__).parent / "data"

#: Small sizes: every code path of the paper-size models, a fraction of the cost.
SMALL = {
    "gabic": lambda: GABIC(N=32, M=40, num_slices=4),
    "wacnn": lambda: WACNN(N=32, M=40, num_slices=4),
    "stf": lambda: STF(embed_dim=12, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4), num_slices=4),
    "mbt2018-mean": lambda: Mbt2018Mean(N=32, M=48),
    "cheng2020-anchor": lambda: Cheng2020Anchor(N=32),
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


def sample_capture(crop: int | tuple[int, int], index: int = 0, name: str = "gabic"):
    """The attention capture (:func:`gabic.viz.capture`) of the small model ``name`` on the centre
    ``crop`` of sample photo ``index`` (a side or ``(height, width)``)."""
    from gabic import viz
    from gabic.images import as_rgb, center_crop

    return viz.capture(small_model(name), center_crop(as_rgb(samples()[index]), crop))


def synthetic_block(
    kind: str, window_size: int, weights: torch.Tensor | None = None, idx: torch.Tensor | None = None, shift: int = 0, resolution=None
):
    """A :class:`gabic.viz.BlockCapture` built by hand with only what the geometry and the measures
    read: one ``resolution`` map (default one window) of 2 zero channels at 1/4, padded to the
    window side, ``weights`` (default none: ``torch.zeros(0)``, one head) and ``idx`` (default None)."""
    from gabic import viz

    weights = torch.zeros(0) if weights is None else weights
    H, W = resolution or (window_size, window_size)
    Hp, Wp = -(-H // window_size) * window_size, -(-W // window_size) * window_size
    x = torch.zeros(1, 2, H, W)
    return viz.BlockCapture(
        name="synthetic",
        kind=kind,
        scale=4,
        resolution=(H, W),
        padded_size=(Hp, Wp),
        window_size=window_size,
        knn=None if idx is None else idx.shape[-1],
        heads=weights.shape[1] if weights.dim() == 4 else 1,
        input=x,
        output=x,
        idx=idx,
        weights=weights,
        edge_bias=None,
        shift=shift,
        image_size=(4 * H, 4 * W),
    )


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


# -- a local HTTP server of files (the released checkpoints' tests) -----------------------------------
class _FileHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (path -> bytes) with byte ranges; a path in ``server.cut`` is cut
    off after half its bytes once; every request is recorded in ``server.requests``."""

    def do_GET(self):  # noqa: N802 - http.server's name
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        data = server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if self.path in server.cut:
            server.cut.discard(self.path)
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _FileServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that hangs up: not an error here
        pass


@pytest.fixture
def server():
    """A local HTTP server of ``server.files`` (path -> bytes) at ``server.base`` (see :class:`_FileHandler`),
    standing in for the released checkpoints' hosts: the tests need no network."""
    srv = _FileServer(("127.0.0.1", 0), _FileHandler)
    srv.files, srv.cut, srv.requests = {}, set(), []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.base = f"http://127.0.0.1:{srv.server_port}"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def use_catalogue(tmp_path, monkeypatch):
    """``use_catalogue(data)``: write the catalogue ``data`` to a file and point ``GABIC_CATALOGUE``
    (:data:`gabic.released.CATALOGUE_ENV`) at it for the test, as a user's own catalogue; returns the file."""
    from gabic import released

    def use(data: dict) -> Path:
        catalogue = tmp_path / "catalogue.json"
        catalogue.write_text(json.dumps(data))
        monkeypatch.setenv(released.CATALOGUE_ENV, str(catalogue))
        return catalogue

    return use
