"""Every subcommand against hostile input: exit status 1 (2 for usage), one line naming the file
or argument, no traceback, nothing left behind, no hang (each case has a time guard)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from PIL import Image

from gabic.checkpoints import save_checkpoint
from tests.conftest import run_cli, small_model

#: A guard against hangs, not a speed test: a case that runs this long has hung.
HANG_GUARD_S = 300


@contextmanager
def _guard(seconds: int):
    def hung(signum, frame):
        raise TimeoutError(f"the command ran for {seconds} s: it hangs")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, sample_paths):
    """Hostile and unusual inputs, made once."""
    d = tmp_path_factory.mktemp("hostile")
    photo = Image.open(sample_paths[0]).convert("RGB")
    f = {}
    f["photo"] = d / "photo.png"
    photo.crop((0, 0, 96, 80)).save(f["photo"])
    f["zero"] = d / "zero.png"
    f["zero"].write_bytes(b"")
    f["text"] = d / "text.png"
    f["text"].write_text("this is not a picture\n")
    f["truncated"] = d / "truncated.png"
    full = d / "full.png"
    photo.save(full)
    f["truncated"].write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    for name, size in (("1x1", (1, 1)), ("15x300", (15, 300)), ("300x15", (300, 15))):
        f[name] = d / f"{name}.png"
        Image.new("RGB", size, (90, 120, 150)).save(f[name])
    f["sixteen"] = d / "sixteen.png"
    sixteen = Image.fromarray(np.asarray(photo.convert("L").crop((0, 0, 96, 80)), dtype=np.uint16) * 257)
    assert sixteen.mode == "I;16"
    sixteen.save(f["sixteen"])
    f["rgba"] = d / "rgba.png"
    photo.crop((0, 0, 96, 80)).convert("RGBA").save(f["rgba"])
    f["cmyk"] = d / "cmyk.jpg"
    photo.crop((0, 0, 96, 80)).convert("CMYK").save(f["cmyk"])
    f["folder"] = d / "a-folder"
    f["folder"].mkdir()
    f["ckpt"] = d / "gabic.pth.tar"
    save_checkpoint(small_model("gabic"), f["ckpt"], lmbda=0.013)
    f["wacnn"] = d / "wacnn.pth.tar"
    save_checkpoint(small_model("wacnn"), f["wacnn"])
    f["hostile_ckpt"] = d / "q1-model.pth.tar"
    torch.save({"state_dict": small_model("gabic").state_dict(), "x": _Payload(d / "pwned")}, f["hostile_ckpt"])
    assert run_cli_plain("compress", f["photo"], d / "good.gabic", "--checkpoint", f["ckpt"], "--device", "cpu") == 0
    good = (d / "good.gabic").read_bytes()
    f["stream"] = d / "good.gabic"
    f["cut"] = d / "cut.gabic"
    f["cut"].write_bytes(good[: len(good) // 2])
    f["random"] = d / "random.gabic"
    f["random"].write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    f["flipped"] = d / "flipped.gabic"
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10
    f["flipped"].write_bytes(bytes(flipped))
    f["other_schema"] = d / "other.json"
    f["other_schema"].write_text('{"rows": [[0.1, 30.0]], "codec": "jpeg"}\n')
    f["out"] = d / "out"
    f["out"].mkdir()
    return f


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def run_cli_plain(*argv) -> int:
    from gabic.cli import main

    return main([str(a) for a in argv])


#: (command line with {placeholders}, exit status, text the one error line holds)
CASES = [
    # images
    ("compress {zero} {out}/a.gabic --checkpoint {ckpt}", 1, "zero.png: not an image"),
    ("compress {text} {out}/a.gabic --checkpoint {ckpt}", 1, "text.png: not an image"),
    ("compress {truncated} {out}/a.gabic --checkpoint {ckpt}", 1, "truncated.png: cannot decode the image"),
    ("compress {1x1} {out}/a.gabic --checkpoint {ckpt}", 1, "1x1.png: image is 1x1"),
    ("compress {15x300} {out}/a.gabic --checkpoint {ckpt}", 1, "15x300.png: image is 15x300"),
    ("compress {300x15} {out}/a.gabic --checkpoint {ckpt}", 1, "300x15.png: image is 300x15"),
    ("compress {folder} {out}/a.gabic --checkpoint {ckpt}", 1, "a-folder: not a file"),
    ("compress {photo} {photo} --checkpoint {ckpt}", 1, "photo.png: is also an input"),
    ("compress {photo} {ckpt} --checkpoint {ckpt}", 1, "gabic.pth.tar: is also an input"),
    ("compress {photo} {folder} --checkpoint {ckpt}", 1, "a-folder: is a folder"),
    ("compress {photo} {out}/a.gabic --checkpoint {hostile_ckpt}", 1, "q1-model.pth.tar: holds Python objects that are not data"),
    ("compress {photo} {out}/a.gabic --checkpoint {out}/none.pth.tar", 1, "none.pth.tar: no such checkpoint file"),
    ("compress {photo} {out}/a.gabic --checkpoint {photo}", 1, "photo.png: cannot read the checkpoint"),
    ("compress {photo} {out}/a.gabic --checkpoint {ckpt} --device nonsense", 1, "device must be"),
    # streams
    ("decompress {cut} {out}/a.png --checkpoint {ckpt}", 1, "cut.gabic: truncated .gabic file"),
    ("decompress {random} {out}/a.png --checkpoint {ckpt}", 1, "random.gabic: not a .gabic file"),
    ("decompress {flipped} {out}/a.png --checkpoint {ckpt}", 1, "flipped.gabic: corrupted .gabic file"),
    ("decompress {stream} {out}/a.png --checkpoint {wacnn}", 1, "good.gabic: written by a gabic model, cannot decode it with a wacnn"),
    ("decompress {stream} {stream} --checkpoint {ckpt}", 1, "unsupported output extension"),
    ("decompress {stream} {out}/a.jpg --checkpoint {ckpt}", 1, "a.jpg: unsupported output extension"),
    ("decompress {folder} {out}/a.png --checkpoint {ckpt}", 1, "a-folder: not a file"),
    ("info {random}", 1, "random.gabic: not a .gabic file"),
    ("info {zero}", 1, "zero.png: not a .gabic file"),
    # evaluation
    ("evaluate {hostile_ckpt} --out {out}/r.json --device cpu", 1, "holds Python objects that are not data"),
    ("evaluate {ckpt} --out {out}/r.json --device nonsense", 1, "device must be"),
    ("evaluate {ckpt} --out {out}/r.json --knn 99", 1, "knn must be an integer in 1..15"),
    ("evaluate {folder} --out {out}/r.json", 1, "a-folder: no checkpoints in this folder"),
    ("evaluate {ckpt} --dataset {folder} --out {out}/r.json", 1, "a-folder: no images"),
    ("evaluate-codec jpg --out {out}/r.json", 1, "'jpg'"),
    ("evaluate-codec jpeg --qualities 0 --out {out}/r.json", 1, "quality 0 is outside its range 1..95"),
    ("evaluate-codec jpeg --qualities 101 --out {out}/r.json", 1, "quality 101 is outside its range"),
    ("evaluate-codec jpeg --workers 0 --out {out}/r.json", 1, "--workers must be at least 1"),
    ("rd {other_schema} --out {out}/figures", 1, "other.json: not in the results schema"),
    ("rd jpeg --out {out}/figures --formats xyz", 2, "invalid choice: 'xyz'"),
    ("rd nosuchcurve --out {out}/figures", 1, "'nosuchcurve': no such results file or published curve"),
    # training
    ("train --steps 0 --runs-dir {out}/runs", 1, "steps must be at least 1, got 0"),
    ("train --steps -3 --runs-dir {out}/runs", 1, "steps must be at least 1, got -3"),
    ("train --epochs 0 --runs-dir {out}/runs", 1, "epochs must be at least 1, got 0"),
    ("train --steps 2 --batch-size 0 --runs-dir {out}/runs", 1, "batch_size must be at least 1, got 0"),
    ("train --steps 2 --lambda 0 --runs-dir {out}/runs", 1, "lambda must be a positive number"),
    ("train --steps 2 --lambda -1 --runs-dir {out}/runs", 1, "lambda must be a positive number"),
    ("train --steps 2 --knn 99 --runs-dir {out}/runs", 1, "knn must be an integer in 1..15"),
    ("train --steps 2 --device nonsense --runs-dir {out}/runs", 1, "device must be"),
    ("train --steps 2 --name ../../escape --runs-dir {out}/runs", 1, "run name '../../escape'"),
    ("train --steps 2 --name never --resume --runs-dir {out}/runs", 1, "never/last.pth.tar: no such checkpoint file"),
    # the demo
    ("demo --out {out}/demo --notebooks {folder}", 1, "a-folder: no numbered notebooks"),
    ("demo --out {out}/demo --threads 0", 1, "--threads must be at least 1"),
]
if not torch.cuda.is_available():
    CASES += [
        ("compress {photo} {out}/a.gabic --checkpoint {ckpt} --device cuda", 1, "CUDA is not available"),
        ("evaluate {ckpt} --out {out}/r.json --device cuda", 1, "CUDA is not available"),
        ("train --steps 2 --device cuda --runs-dir {out}/runs", 1, "CUDA is not available"),
    ]


@pytest.mark.parametrize("line,status,expected", CASES, ids=[c[0].split(" {")[0] + ":" + c[2][:40] for c in CASES])
def test_hostile_input_gets_one_line(capsys, inputs, line, status, expected):
    out = inputs["out"]
    before = set(out.rglob("*"))
    argv = [part.format(**{k: str(v) for k, v in inputs.items()}) for part in line.split()]
    with _guard(HANG_GUARD_S):
        code, _, err = run_cli(capsys, *argv)
    assert code == status, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], err
    assert set(out.rglob("*")) == before, "something was written"
    assert not (inputs["out"].parent / "pwned").exists()


@pytest.mark.parametrize("name", ["sixteen", "rgba", "cmyk"])
def test_unusual_images_are_coded_with_a_note(capsys, inputs, tmp_path, name):
    code, text, err = run_cli(
        capsys, "compress", inputs[name], tmp_path / "x.gabic", "--checkpoint", inputs["ckpt"], "--device", "cpu"
    )
    assert code == 0 and "Traceback" not in err and (tmp_path / "x.gabic").stat().st_size > 0
    note = {"sixteen": "16-bit samples reduced to 8 bits", "rgba": "alpha channel dropped", "cmyk": "converted from CMYK to RGB"}[name]
    assert note in err
    code, _, err = run_cli(
        capsys, "decompress", tmp_path / "x.gabic", tmp_path / "x.png", "--checkpoint", inputs["ckpt"], "--device", "cpu"
    )
    assert code == 0 and Image.open(tmp_path / "x.png").size == Image.open(inputs[name]).size


def test_an_output_in_a_missing_folder_is_made(capsys, inputs, tmp_path):
    target = tmp_path / "new" / "deeper" / "x.gabic"
    code, _, err = run_cli(capsys, "compress", inputs["photo"], target, "--checkpoint", inputs["ckpt"], "--device", "cpu")
    assert code == 0 and target.is_file(), err


@pytest.mark.slow
def test_a_large_image_works(capsys, tmp_path):
    """4000x3000: the small model codes it (the paper's model needs several GB on a CPU)."""
    big = tmp_path / "big.png"
    rng = np.random.default_rng(1)
    Image.fromarray(np.repeat(np.repeat(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), 10, 0), 10, 1)).save(big)
    ckpt = tmp_path / "c.pth.tar"
    save_checkpoint(small_model("gabic"), ckpt)
    with _guard(HANG_GUARD_S):
        code, text, err = run_cli(capsys, "compress", big, tmp_path / "big.gabic", "--checkpoint", ckpt, "--device", "cpu")
    assert code == 0 and "4000x3000" in text, err


@pytest.mark.slow
def test_two_trainings_of_one_run_name(tmp_path):
    """The second is refused, naming the first, which finishes unharmed."""
    tiny = ["--N", "32", "--M", "40", "--num-slices", "4", "--patch-size", "64", "--batch-size", "1", "--val-interval", "100"]
    base = [sys.executable, "-m", "gabic.train", *tiny, "--runs-dir", str(tmp_path), "--name", "same"]
    first = subprocess.Popen([*base, "--steps", "300"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "same" / ".lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and lock.read_text()) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    assert lock.exists(), first.communicate()[1]
    second = subprocess.run([*base, "--steps", "2"], capture_output=True, text=True)
    assert second.returncode == 1 and "Traceback" not in second.stderr
    assert f"pid {first.pid}" in second.stderr and "another training is writing this run" in second.stderr
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    history = (tmp_path / "same" / "history.json").read_text()
    assert '"step": 300' in history  # the first run's, all of it
    assert '"steps": 300' in (tmp_path / "same" / "config.json").read_text()
