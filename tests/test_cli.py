"""The gabic command as a user runs it: round trip, bad inputs, nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from tests.conftest import run_cli as run


@pytest.fixture
def photo(sample_paths, tmp_path):
    dst = tmp_path / "coffee.png"
    shutil.copy(next(p for p in sample_paths if p.name == "coffee.png"), dst)
    return dst


def test_compress_decompress_round_trip(capsys, tmp_path, photo, gabic_ckpt):
    stream, out = tmp_path / "coffee.gabic", tmp_path / "coffee-dec.png"
    code, text, _ = run(capsys, "compress", photo, stream, "--checkpoint", gabic_ckpt, "--device", "cpu")
    assert code == 0 and "bpp" in text and stream.stat().st_size > 100
    code, text, _ = run(capsys, "decompress", stream, out, "--checkpoint", gabic_ckpt, "--backend", "pyg")
    assert code == 0
    assert Image.open(out).size == Image.open(photo).size
    code, text, _ = run(capsys, "info", stream)
    info = json.loads(text)
    assert info["model"] == "gabic" and info["image_size"] == [600, 400] and info["file_bytes"] == stream.stat().st_size
    assert info["format_version"] == 3 and info["written_on"] == "cpu" and len(info["symbols_crc32"]) == 8


def test_grayscale_input_says_what_changed(capsys, tmp_path, photo, gabic_ckpt, caplog):
    gray = tmp_path / "gray.png"
    Image.open(photo).convert("LA").save(gray)
    code, _, _ = run(capsys, "compress", gray, tmp_path / "g.gabic", "--checkpoint", gabic_ckpt)
    assert code == 0
    assert "gray.png: alpha channel dropped" in caplog.text and "grayscale replicated to RGB" in caplog.text


def test_animated_and_turned_inputs_are_noted(capsys, tmp_path, photo, gabic_ckpt, caplog):
    from tests.test_images import animated_gif, oriented_jpeg

    ck = ["--checkpoint", gabic_ckpt, "--device", "cpu"]
    code, _, err = run(capsys, "compress", animated_gif(tmp_path / "anim.gif"), tmp_path / "a.gabic", *ck)
    assert code == 0, err
    assert "anim.gif: animated GIF: 3 frames, the first is coded" in caplog.text
    caplog.clear()
    code, _, err = run(capsys, "compress", oriented_jpeg(tmp_path / "turned.jpg", 6), tmp_path / "t.gabic", *ck)
    assert code == 0, err
    assert "turned.jpg: EXIF orientation 6 (viewers show it rotated 90 degrees clockwise): coded as stored, not rotated" in caplog.text
    caplog.clear()
    code, _, err = run(capsys, "compress", photo, tmp_path / "p.gabic", *ck)  # a plain PNG: nothing to say
    assert code == 0, err
    assert "frames" not in caplog.text and "EXIF" not in caplog.text and "coffee.png:" not in caplog.text


def test_evaluate_says_what_is_missing(capsys, tmp_path, gabic_ckpt):
    out = tmp_path / "r.json"
    line = _fails(capsys, tmp_path, "evaluate", "--out", out, expect="give checkpoint files or folders, or --released NAME")
    assert line == "gabic: error: give checkpoint files or folders, or --released NAME (e.g. --released gabic)"
    line = _fails(capsys, tmp_path, "evaluate", gabic_ckpt, "--released", "gabic", "--out", out, expect="not both")
    assert line.startswith("gabic: error: give checkpoint files or folders or --released NAME, not both")


def _fails(capsys, tmp_path, *argv, expect: str):
    before = set(os.listdir(tmp_path))
    code, out, err = run(capsys, *argv)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gabic: error: "), err
    assert expect in lines[0], lines[0]
    assert set(os.listdir(tmp_path)) == before  # nothing written, not even a temporary
    return lines[0]


def test_bad_inputs_get_one_clear_line(capsys, tmp_path, photo, gabic_ckpt, wacnn_ckpt):
    ck = ["--checkpoint", gabic_ckpt]
    out = tmp_path / "out.gabic"
    _fails(capsys, tmp_path, "compress", tmp_path / "missing.png", out, *ck, expect="missing.png: no such file")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    _fails(capsys, tmp_path, "compress", text, out, *ck, expect="notes.png: not an image")
    cut = tmp_path / "cut.png"
    cut.write_bytes(photo.read_bytes()[:3000])
    _fails(capsys, tmp_path, "compress", cut, out, *ck, expect="cut.png: cannot decode the image")
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (12, 40)).save(tiny)
    _fails(capsys, tmp_path, "compress", tiny, out, *ck, expect="tiny.png: image is 12x40; the codecs need at least 16")
    bad_ckpt = tmp_path / "bad.pth.tar"
    bad_ckpt.write_bytes(gabic_ckpt.read_bytes()[:5000])
    _fails(capsys, tmp_path, "compress", photo, out, "--checkpoint", bad_ckpt, expect="bad.pth.tar: cannot read the checkpoint")
    _fails(capsys, tmp_path, "compress", photo, out, "--checkpoint", tmp_path / "no.pth.tar", expect="no.pth.tar: no such checkpoint")
    folder = tmp_path / "outdir"
    folder.mkdir()
    _fails(capsys, tmp_path, "compress", photo, folder, *ck, expect="outdir: is a folder")


def test_bad_streams_get_one_clear_line(capsys, tmp_path, photo, gabic_ckpt, wacnn_ckpt):
    stream = tmp_path / "s.gabic"
    assert run(capsys, "compress", photo, stream, "--checkpoint", gabic_ckpt)[0] == 0
    dec = tmp_path / "d.png"
    _fails(
        capsys,
        tmp_path,
        "decompress",
        stream,
        dec,
        "--checkpoint",
        wacnn_ckpt,
        expect="s.gabic: written by a gabic model, cannot decode it with a wacnn model",
    )
    data = stream.read_bytes()
    cut = tmp_path / "cut.gabic"
    cut.write_bytes(data[: len(data) // 2])
    _fails(capsys, tmp_path, "decompress", cut, dec, "--checkpoint", gabic_ckpt, expect="cut.gabic: truncated .gabic file")
    flip = tmp_path / "flip.gabic"
    flip.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    _fails(capsys, tmp_path, "decompress", flip, dec, "--checkpoint", gabic_ckpt, expect="flip.gabic: corrupted .gabic file")
    _fails(capsys, tmp_path, "decompress", photo, dec, "--checkpoint", gabic_ckpt, expect="coffee.png: not a .gabic file")
    _fails(
        capsys,
        tmp_path,
        "decompress",
        stream,
        tmp_path / "d.jpg",
        "--checkpoint",
        gabic_ckpt,
        expect="d.jpg: unsupported output extension",
    )
    _fails(capsys, tmp_path, "info", tmp_path / "none.gabic", expect="none.gabic: no such file")


def test_console_script_exit_status(tmp_path, gabic_ckpt):
    """The installed ``gabic`` entry point, as a new user runs it."""
    exe = shutil.which("gabic") or os.path.join(os.path.dirname(sys.executable), "gabic")
    res = subprocess.run(
        [exe, "compress", str(tmp_path / "none.png"), str(tmp_path / "o.gabic"), "--checkpoint", str(gabic_ckpt)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == f"gabic: error: {tmp_path / 'none.png'}: no such file"
