"""Datasets (ImageFolder) and the Kodak downloader, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import logging
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from gabic.data import (
    KODAK_NAMES,
    ImageFolder,
    _padding,
    download_kodak,
    kodak_hashes,
    pixel_sha256,
    samples,
    verify_kodak,
)
from gabic.errors import DataError, ImageError
from gabic.images import image_to_tensor, load_image
from tests.conftest import run_cli

# --------------------------------------------------------------------------------------------
# ImageFolder
# --------------------------------------------------------------------------------------------


def _coordinate_image(path: Path, width: int, height: int) -> Path:
    """An RGB image whose red channel is x + 1, green y + 1 and blue 7 (never zero), saved as PNG."""
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([x + 1, y + 1, np.full_like(x, 7)], axis=-1).astype(np.uint8)
    Image.fromarray(arr, mode="RGB").save(path)
    return path


def test_train_patches_shape_range_and_real_pixels(tmp_path):
    _coordinate_image(tmp_path / "grid.png", 200, 150)
    ds = ImageFolder(tmp_path, patch_size=(40, 64), seed=0)
    assert len(ds) == 1
    for epoch in range(5):
        ds.set_epoch(epoch)
        x = ds[0]
        assert x.shape == (3, 40, 64) and x.dtype == torch.float32
        pix = (x * 255).round().long()
        # A contiguous window of the image: x and y step by one pixel, no padding needed here.
        x0, y0 = int(pix[0, 0, 0]) - 1, int(pix[1, 0, 0]) - 1
        assert 0 <= x0 <= 200 - 64 and 0 <= y0 <= 150 - 40
        assert torch.equal(pix[0], torch.arange(x0 + 1, x0 + 65).expand(40, 64))
        assert torch.equal(pix[1], torch.arange(y0 + 1, y0 + 41)[:, None].expand(40, 64))
        assert torch.all(pix[2] == 7)


def test_train_on_samples_and_dataloader_batches():
    ds = ImageFolder(patch_size=64, seed=1)  # default: the embedded samples
    assert ds.paths == samples() and len(ds) == 4
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch.shape == (4, 3, 64, 64)
    assert 0.0 <= batch.min() and batch.max() <= 1.0 and batch.std() > 0.05


def test_test_split_gives_whole_images():
    ds = ImageFolder(split="test")
    sizes = [tuple(ds[i].shape) for i in range(len(ds))]
    assert sizes == [(3, 512, 512), (3, 300, 451), (3, 400, 600), (3, 427, 640)]
    assert torch.equal(ds[1], image_to_tensor(load_image(samples()[1])[0])[0])


def test_small_image_zero_padded_and_noted_once(tmp_path, caplog):
    path = _coordinate_image(tmp_path / "small.png", 40, 30)
    ds = ImageFolder(tmp_path, patch_size=64, seed=0)
    with caplog.at_level(logging.INFO, logger="gabic.data"):
        a, b = ds[0], ds[0]
    assert a.shape == (3, 64, 64) and torch.equal(a, b)
    # Centred: 12 columns of zeros left, 12 right; 17 rows above, 17 below.
    real = image_to_tensor(load_image(path)[0])[0]
    assert torch.equal(a[:, 17:47, 12:52], real)
    mask = torch.ones(64, 64, dtype=torch.bool)
    mask[17:47, 12:52] = False
    assert torch.all(a[:, mask] == 0)
    notes = [r for r in caplog.records if "small.png" in r.getMessage()]
    assert len(notes) == 1 and "40x30" in notes[0].getMessage() and "zero-padded" in notes[0].getMessage()


def test_padding_one_side_only(tmp_path):
    _coordinate_image(tmp_path / "wide.png", 120, 30)
    ds = ImageFolder(tmp_path, patch_size=(48, 64), seed=3)
    for epoch in range(4):
        ds.set_epoch(epoch)
        x = (ds[0] * 255).round().long()
        assert torch.all(x[:, :9] == 0) and torch.all(x[:, 39:] == 0)  # 18 rows added: 9 above, 9 below
        assert torch.all(x[2, 9:39] == 7)  # the width needs no padding: every column is real


def test_square_pad_follows_the_published_training():
    # SquarePad of the original code: side = max(w, h, max(patch)); (side - w) // 2 + 1 on left and right...
    assert _padding(100, 60, (64, 64), "square") == (1, 21, 1, 21)
    assert _padding(40, 30, (64, 48), "square") == (13, 18, 13, 18)
    assert _padding(768, 512, (256, 256), "square") == (1, 129, 1, 129)
    assert _padding(768, 512, (256, 256), "patch") == (0, 0, 0, 0)
    assert _padding(41, 30, (64, 64), "patch") == (11, 17, 12, 17)


def test_square_pad_crops(tmp_path):
    _coordinate_image(tmp_path / "a.png", 100, 60)
    ds = ImageFolder(tmp_path, patch_size=64, seed=0, pad="square")
    zeros = []
    for epoch in range(8):
        ds.set_epoch(epoch)
        x = ds[0]
        assert x.shape == (3, 64, 64)
        zeros.append(bool((x[2] == 0).any()))
    assert any(zeros)  # the 102x102 canvas has zero bands the crops can reach


def test_seeded_crops_reproducible():
    def crops(seed, epoch=0, workers=0):
        ds = ImageFolder(patch_size=32, seed=seed)
        ds.set_epoch(epoch)
        return torch.cat(list(DataLoader(ds, batch_size=2, num_workers=workers)))

    a = crops(7)
    assert torch.equal(a, crops(7))
    assert torch.equal(a, crops(7, workers=2))  # the same in worker processes
    assert not torch.equal(a, crops(8))
    assert not torch.equal(a, crops(7, epoch=1))


def test_unseeded_crops_follow_torch_rng():
    ds = ImageFolder(patch_size=32)
    torch.manual_seed(0)
    a = ds[0]
    torch.manual_seed(0)
    assert torch.equal(a, ds[0])


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        ImageFolder(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="no images"):
        ImageFolder(tmp_path)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    ds = ImageFolder(tmp_path)
    with pytest.raises(ImageError, match="bad.png"):
        ds[0]
    with pytest.raises(IndexError):
        ds[1]


@pytest.mark.parametrize(
    "kwargs",
    [{"split": "val"}, {"patch_size": 0}, {"patch_size": (64,)}, {"patch_size": 64.0}, {"seed": -1}, {"pad": "reflect"}],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        ImageFolder(**kwargs)


# --------------------------------------------------------------------------------------------
# Kodak hashes
# --------------------------------------------------------------------------------------------


def test_shipped_kodak_hashes():
    table = kodak_hashes()
    assert sorted(table) == list(KODAK_NAMES) and len(table) == 24
    sizes = {size for _, size in table.values()}
    assert sizes == {(768, 512), (512, 768)}
    assert all(len(digest) == 64 and int(digest, 16) >= 0 for digest, _ in table.values())
    assert len({digest for digest, _ in table.values()}) == 24


def test_pixel_sha256_is_of_the_decoded_rgb_bytes(tmp_path):
    img = Image.open(samples()[2]).convert("RGB")
    expected = hashlib.sha256(np.asarray(img).tobytes()).hexdigest()
    assert pixel_sha256(img) == expected
    # The same pixels encoded differently hash the same.
    img.save(tmp_path / "fast.png", compress_level=1)
    img.save(tmp_path / "small.png", compress_level=9, optimize=True)
    assert (tmp_path / "fast.png").read_bytes() != (tmp_path / "small.png").read_bytes()
    assert pixel_sha256(Image.open(tmp_path / "fast.png")) == pixel_sha256(Image.open(tmp_path / "small.png")) == expected


# --------------------------------------------------------------------------------------------
# Downloader, against a local server
# --------------------------------------------------------------------------------------------


class _Server:
    """http.server on 127.0.0.1 (ephemeral port) in a thread, serving ``root``; counts GET requests."""

    def __init__(self, root: Path):
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def served(tmp_path):
    """Four PNG crops of the sample photos served over HTTP, with their hash table; c.png and d.png
    are corrupted on the server (one changed pixel; truncated)."""
    root = tmp_path / "server"
    root.mkdir()
    photo = Image.open(samples()[0]).convert("RGB")
    good: dict[str, bytes] = {}
    hashes = {}
    for i, name in enumerate(["a.png", "b.png", "c.png", "d.png"]):
        crop = photo.crop((40 * i, 30 * i, 40 * i + 96, 30 * i + 64))
        crop.save(root / name)
        good[name] = (root / name).read_bytes()
        hashes[name] = (pixel_sha256(crop), (96, 64))
    changed = np.asarray(Image.open(root / "c.png")).copy()
    changed[10, 20, 1] ^= 1
    Image.fromarray(changed).save(root / "c.png")
    (root / "d.png").write_bytes(good["d.png"][: len(good["d.png"]) // 2])
    server = _Server(root)
    yield server, root, hashes, good
    server.close()


def test_download_verifies_and_rejects_corrupted(served, tmp_path, caplog):
    server, root, hashes, good = served
    dest = tmp_path / "kodak"
    with pytest.raises(DataError) as info, caplog.at_level(logging.DEBUG, logger="gabic.data"):
        download_kodak(dest, base_url=server.url, hashes=hashes, timeout=5, progress=False)
    msg = str(info.value)
    assert msg == (
        "2 of 4 images failed: c.png does not match the expected pixels (sha256 of the decoded pixels); "
        f"d.png is not a readable image; the 2 that verified are in {dest}"
    )
    assert "c.png: pixels do not match" in caplog.text and "d.png: cannot decode" in caplog.text  # the details, for -v
    assert sorted(p.name for p in dest.iterdir()) == ["a.png", "b.png"]  # nothing else, no temporary files
    assert (dest / "a.png").read_bytes() == good["a.png"]
    assert len(server.requests) == 4
    assert verify_kodak(dest, hashes) == [f"{dest / 'c.png'}: missing", f"{dest / 'd.png'}: missing"]

    # The server is repaired: a second run fetches only the two missing files.
    (root / "c.png").write_bytes(good["c.png"])
    (root / "d.png").write_bytes(good["d.png"])
    server.requests.clear()
    paths = download_kodak(dest, base_url=server.url, hashes=hashes, timeout=5, progress=False)
    assert paths == [dest / n for n in ["a.png", "b.png", "c.png", "d.png"]]
    assert sorted(server.requests) == ["/c.png", "/d.png"]
    assert verify_kodak(dest, hashes) == []

    # All present and verified: no request at all.
    server.requests.clear()
    assert download_kodak(dest, base_url=server.url.rstrip("/"), hashes=hashes, progress=False) == paths
    assert server.requests == []


def test_download_replaces_a_local_file_that_does_not_verify(served, tmp_path):
    server, root, hashes, good = served
    hashes = {k: hashes[k] for k in ("a.png", "b.png")}
    dest = tmp_path / "kodak"
    dest.mkdir()
    (dest / "a.png").write_bytes(good["b.png"])  # wrong picture under the right name
    (dest / "b.png").write_bytes(good["b.png"])
    paths = download_kodak(dest, base_url=server.url, hashes=hashes, timeout=5, progress=False)
    assert server.requests == ["/a.png"]
    assert [p.read_bytes() for p in paths] == [good["a.png"], good["b.png"]]


def test_download_names_a_missing_file(served, tmp_path):
    server, root, hashes, good = served
    hashes = {"a.png": hashes["a.png"], "kodim99.png": hashes["b.png"]}
    with pytest.raises(DataError, match=r"kodim99.png: HTTP 404") as info:
        download_kodak(tmp_path / "k", base_url=server.url, hashes=hashes, timeout=5, progress=False)
    assert str(info.value) == f"1 of 2 images failed: kodim99.png: HTTP 404 File not found; the 1 that verified is in {tmp_path / 'k'}"
    assert [p.name for p in (tmp_path / "k").iterdir()] == ["a.png"]


@pytest.fixture
def wrong_kodak(tmp_path):
    """A server with kodim01.png .. kodim24.png of the right sizes but other pixels (flat grey)."""
    root = tmp_path / "wrong-server"
    root.mkdir()
    for name, (_, size) in kodak_hashes().items():
        Image.new("RGB", size, (128, 128, 128)).save(root / name)
    server = _Server(root)
    yield server
    server.close()


def _error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if "error:" in line]  # progress bars aside
    assert len(lines) == 1, err
    return lines[0]


def test_wrong_images_give_one_short_line(capsys, caplog, tmp_path, wrong_kodak):
    dest = tmp_path / "kodak5"
    code, _, err = run_cli(capsys, "data", "kodak", "--dest", dest, "--url", wrong_kodak.url)
    line = _error_line(err)
    assert code == 1 and len(line) < 200, line
    assert line == (
        "gabic: error: 24 of 24 images failed: kodim01.png, kodim02.png and 22 more do not match the published pixels "
        "(sha256 of the decoded pixels); nothing was kept"
    )
    assert not dest.exists() and "kodak5" not in line  # no folder that does not exist
    assert "kodim01.png: pixels do not match" not in caplog.text  # the details only with -v
    code, _, err = run_cli(capsys, "-v", "data", "kodak", "--dest", dest, "--url", wrong_kodak.url)
    assert code == 1 and len(_error_line(err)) < 200
    for name in KODAK_NAMES:
        assert f"{name}: pixels do not match (sha256" in caplog.text, name


def test_wrong_images_some_kept(served, tmp_path):
    """Some kept: the message says where they are (the folder exists)."""
    server, root, hashes, good = served
    hashes = {"a.png": hashes["a.png"], **{f"x{i}.png": hashes["b.png"] for i in range(5)}}
    for i in range(5):
        (root / f"x{i}.png").write_bytes(good["c.png"])
    dest = tmp_path / "k"
    with pytest.raises(DataError) as info:
        download_kodak(dest, base_url=server.url, hashes=hashes, timeout=5, progress=False)
    msg = str(info.value)
    assert msg == (
        "5 of 6 images failed: x0.png, x1.png and 3 more do not match the expected pixels (sha256 of the decoded pixels); "
        f"the 1 that verified is in {dest}"
    )
    assert [p.name for p in dest.iterdir()] == ["a.png"]


def test_dest_that_is_a_file_is_refused_before_any_request(capsys, served, tmp_path):
    server, root, hashes, good = served
    afile = tmp_path / "kodak.txt"
    afile.write_text("not a folder")
    with pytest.raises(DataError, match=r"kodak.txt: exists and is not a folder"):
        download_kodak(afile, base_url=server.url, hashes=hashes, timeout=5, progress=False)
    with pytest.raises(DataError, match=r"kodak.txt is a file, not a folder"):
        download_kodak(afile / "kodak", base_url=server.url, hashes=hashes, timeout=5, progress=False)
    code, _, err = run_cli(capsys, "data", "kodak", "--dest", afile, "--url", server.url)
    assert code == 1 and err.strip() == f"gabic: error: {afile}: exists and is not a folder; give a folder for the images"
    assert server.requests == []  # refused before any network access
    assert afile.read_text() == "not a folder"


def test_verify_kodak_reports_problems(served, tmp_path):
    server, root, hashes, good = served
    dest = tmp_path / "k"
    dest.mkdir()
    (dest / "a.png").write_bytes(good["a.png"])
    (dest / "b.png").write_bytes(good["c.png"])  # right size, other pixels
    (dest / "c.png").write_bytes(b"garbage")
    Image.open(root / "a.png").crop((0, 0, 50, 50)).save(dest / "d.png")
    Image.open(root / "a.png").save(dest / "extra.png")
    problems = verify_kodak(dest, hashes)
    assert len(problems) == 4
    assert "b.png: pixels do not match" in problems[0]
    assert "c.png: not an image" in problems[1]
    assert "d.png: image is 50x50, expected 96x64" in problems[2]
    assert "extra.png: unexpected image" in problems[3]
    assert verify_kodak(tmp_path / "nowhere", hashes) == [f"{tmp_path / 'nowhere'}: no such folder"]


def test_offline_closed_port_fails_fast(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "kodak"
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        download_kodak(dest, base_url=f"http://127.0.0.1:{port}/", timeout=2, progress=False)
    assert time.monotonic() - start < 5
    msg = str(info.value)
    assert "could not reach the server" in msg and "offline" in msg
    assert "kodim01.png .. kodim24.png by hand" in msg and str(dest.resolve()) in msg
    assert not dest.exists() or list(dest.iterdir()) == []


def test_offline_silent_server_times_out(tmp_path):
    with socket.socket() as s:  # accepts connections (kernel backlog) but never answers
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        start = time.monotonic()
        with pytest.raises(DataError, match=r"could not reach the server .*no answer in 0.5 s"):
            download_kodak(tmp_path / "k", base_url=f"http://127.0.0.1:{s.getsockname()[1]}/", timeout=0.5, progress=False)
        assert time.monotonic() - start < 5
