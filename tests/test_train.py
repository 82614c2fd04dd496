"""Training: exact resume, checkpoints and history, bad options refused up front, torchrun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from PIL import Image

from gabic.checkpoints import load_checkpoint, read_checkpoint
from gabic.data import ImageFolder
from gabic.errors import CheckpointError, DataError, GabicError
from gabic.images import image_to_tensor, tensor_to_image
from gabic.metrics import bpp_from_likelihoods, psnr
from gabic.train import fit, rd_loss, validate
from tests.conftest import run_cli, small_model

#: The same tiny model on the command line.
TINY_ARGS = ["--N", "32", "--M", "40", "--num-slices", "4", "--patch-size", "64", "--steps", "2", "--val-interval", "2"]
TINY = dict(model="gabic", N=32, M=40, num_slices=4, patch_size=64, batch_size=2, val_interval=2, progress=False)


@pytest.fixture(scope="module", autouse=True)
def small_validation_set(tmp_path_factory, sample_paths):
    """One 128x96 crop of a sample photo as the validation set, so validations are quick."""
    folder = tmp_path_factory.mktemp("val")
    Image.open(sample_paths[3]).convert("RGB").crop((200, 150, 328, 246)).save(folder / "val.png")
    TINY["val_dataset"] = str(folder)
    yield folder
    del TINY["val_dataset"]


def _losses(history):
    return [row["loss"] for row in history["train"]]


def test_rd_loss_is_the_published_formula():
    x = torch.full((1, 3, 4, 4), 0.5)
    out = {"x_hat": x + 0.1, "likelihoods": {"y": torch.full((1, 2, 2, 2), 0.5), "z": torch.full((1, 1, 1, 1), 0.25)}}
    terms = rd_loss(out, x, lmbda=0.01)
    # bits: 8 y elements x 1 bit + 1 z element x 2 bits = 10 bits over 16 pixels
    assert terms["bpp"].item() == pytest.approx(10 / 16)
    assert terms["mse"].item() == pytest.approx(0.01)
    assert terms["loss"].item() == pytest.approx(0.01 * 255**2 * 0.01 + 10 / 16)
    assert terms["psnr"].item() == pytest.approx(20.0)


def test_validation_measures_over_the_image_own_pixels(tmp_path, sample_paths):
    """A 200x168 image (padded to 256x192): bpp is the likelihoods' bits over its own 200x168
    pixels, PSNR is on the 8-bit rounded reconstruction, the loss uses the float one."""
    photo = Image.open(sample_paths[0]).convert("RGB").crop((40, 30, 240, 198))
    photo.save(tmp_path / "v.png")
    model = small_model("gabic")
    v = validate(model, ImageFolder(tmp_path, split="test"), 0.01, torch.device("cpu"))
    x = image_to_tensor(photo)
    top, left = (192 - 168) // 2, (256 - 200) // 2  # CompressAI's centred padding, by hand
    xp = torch.nn.functional.pad(x, (left, 256 - 200 - left, top, 192 - 168 - top))
    with torch.no_grad():
        out = model(xp)
    x_hat = out["x_hat"][..., top : top + 168, left : left + 200].clamp(0, 1)
    bits = sum(-torch.log2(lik.double()).sum().item() for lik in out["likelihoods"].values())
    assert v["bpp"] == pytest.approx(bits / (200 * 168), rel=1e-6)
    assert v["bpp"] == pytest.approx(bpp_from_likelihoods(out["likelihoods"], 200 * 168), rel=1e-6)
    assert v["psnr"] == pytest.approx(psnr(photo, tensor_to_image(x_hat)), abs=1e-9)
    mse = torch.mean((x_hat - x) ** 2).item()
    assert v["mse"] == pytest.approx(mse, rel=1e-5) and v["loss"] == pytest.approx(0.01 * 255**2 * mse + v["bpp"], rel=1e-5)
    assert model.training is False  # validate restores the mode it found


def test_interrupted_and_resumed_run_reproduces_the_losses(tmp_path):
    full = fit(steps=5, name="full", runs_dir=tmp_path, **TINY)

    def interrupt(row):
        if row["step"] == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(steps=5, name="cut", runs_dir=tmp_path, callback=interrupt, **TINY)
    assert read_checkpoint(tmp_path / "cut" / "last.pth.tar")["train"]["step"] == 3
    resumed = fit(steps=5, name="cut", runs_dir=tmp_path, resume=True, **TINY)
    assert _losses(resumed) == _losses(full)  # bit for bit on the CPU
    assert [v["loss"] for v in resumed["val"]] == [v["loss"] for v in full["val"]]


def test_run_folder_history_and_best_checkpoint(tmp_path):
    history = fit(steps=4, name="r", runs_dir=tmp_path, lmbda=0.0067, **TINY)
    run = tmp_path / "r"
    assert {p.name for p in run.iterdir()} >= {"last.pth.tar", "best.pth.tar", "history.json", "config.json"}
    saved = json.loads((run / "history.json").read_text())
    assert saved == json.loads(json.dumps(history))
    assert [v["step"] for v in history["val"]] == [2, 4]
    best = read_checkpoint(run / "best.pth.tar")
    assert best["train"]["best"] == min(v["loss"] for v in history["val"])
    assert best["lmbda"] == 0.0067 and best["config"]["model"] == "gabic"
    model = load_checkpoint(run / "best.pth.tar", device="cpu")  # ready for coding
    assert model.config["N"] == 32 and not model.training
    assert json.loads((run / "config.json").read_text())["lmbda"] == 0.0067


@pytest.mark.parametrize(
    "options,error,match",
    [
        ({"lmbda": 0}, GabicError, "lambda must be a positive number"),
        ({"lmbda": -1.0}, GabicError, "lambda must be a positive number"),
        ({"patch_size": 100}, GabicError, "multiple of 64"),
        ({"precision": "bf16", "device": "cpu"}, GabicError, "bf16 is autocast on a GPU"),
        ({"model": "vit"}, GabicError, "--model must be one of"),
        ({"batch_size": 0}, GabicError, "batch_size must be at least 1"),
    ],
)
def test_bad_options_are_refused_before_work(tmp_path, options, error, match):
    with pytest.raises(error, match=match):
        fit(steps=2, name="bad", runs_dir=tmp_path, **{**TINY, **options})
    assert not (tmp_path / "bad").exists()


def test_bad_datasets(tmp_path):
    with pytest.raises(DataError, match="nowhere: no such folder"):
        fit(steps=2, runs_dir=tmp_path, dataset=str(tmp_path / "nowhere"), **TINY)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="empty: no images"):
        fit(steps=2, runs_dir=tmp_path, dataset=str(empty), **TINY)
    assert not (tmp_path / "gabic-lmbda0.013").exists()


def test_small_images_are_padded_with_a_note(tmp_path, sample_paths, caplog):
    folder = tmp_path / "small"
    folder.mkdir()
    for i, p in enumerate(sample_paths[:3]):
        Image.open(p).convert("RGB").crop((0, 0, 50 + 10 * i, 40)).save(folder / f"s{i}.png")
    caplog.set_level("INFO")
    history = fit(steps=2, name="small", runs_dir=tmp_path, dataset=str(folder), **TINY)
    assert len(history["train"]) == 2
    assert "smaller than the 64x64 patch; zero-padded" in caplog.text


def test_resume_from_another_architecture_is_refused(tmp_path):
    fit(steps=2, name="arch", runs_dir=tmp_path, **TINY)
    with pytest.raises(GabicError, match="the run was trained with model='gabic', not 'wacnn'; a resumed run keeps"):
        fit(steps=4, name="arch", runs_dir=tmp_path, resume=True, **{**TINY, "model": "wacnn"})
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        fit(steps=4, name="never", runs_dir=tmp_path, resume=True, **TINY)


def test_resume_keeps_the_saved_graph_rule(tmp_path):
    fit(steps=2, name="rule", runs_dir=tmp_path, knn_rule="self-excluded", **TINY)
    history = fit(steps=4, name="rule", runs_dir=tmp_path, resume=True, **TINY)  # the rule is not given again
    assert len(history["train"]) == 4
    assert read_checkpoint(tmp_path / "rule" / "last.pth.tar")["config"]["knn_rule"] == "self-excluded"
    with pytest.raises(GabicError, match="the run was trained with knn_rule='self-excluded', not 'published'"):
        fit(steps=6, name="rule", runs_dir=tmp_path, resume=True, knn_rule="published", **TINY)


def test_train_command(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "train", *TINY_ARGS, "--batch-size", "2", "--runs-dir", tmp_path, "--name", "cli")
    assert code == 0 and "step 2: validation" in out
    code, _, err = run_cli(capsys, "train", "--lambda", "0", "--steps", "1", "--runs-dir", tmp_path)
    assert code == 1 and "gabic: error: lambda must be a positive number" in err


@pytest.mark.slow
def test_small_preset_learns(tmp_path):
    """A shorter version of the 5-minute small-cpu run: RD loss down, held-out PSNR up."""
    history = fit(preset="small-cpu", steps=60, val_interval=30, patch_size=64, name="learn", runs_dir=tmp_path, progress=False)
    first, last = history["val"][0], history["val"][-1]
    start = sum(r["loss"] for r in history["train"][:5]) / 5
    end = sum(r["loss"] for r in history["train"][-5:]) / 5
    assert end < 0.5 * start
    assert last["psnr"] > first["psnr"] and last["loss"] < first["loss"]


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path):
    """DistributedDataParallel with gloo on 2 CPU processes; only rank 0 writes."""
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = [torchrun, "--standalone", "--nproc_per_node=2", "-m", "gabic.train", *TINY_ARGS, "--batch-size", "1"]
    cmd += ["--device", "cpu", "--runs-dir", str(tmp_path), "--name", "ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "ddp"
    assert sorted(p.name for p in run.iterdir()) == ["best.pth.tar", "config.json", "history.json", "last.pth.tar"]
    ckpt = read_checkpoint(run / "last.pth.tar")
    assert ckpt["train"]["step"] == 2 and len(ckpt["train"]["rng"]) == 2  # both ranks' random states
    assert res.stdout.count("step 2: validation") == 1  # rank 0 alone reports


@pytest.mark.parametrize("option", ["channels_last", pytest.param("compile", marks=pytest.mark.slow)])
def test_speed_options_change_no_number_beyond_rounding(tmp_path, option):
    """--channels-last and --compile: the same losses within float rounding, checkpoints of the same
    keys and shapes that load as before (the options are recorded in config.json)."""
    plain = fit(steps=2, name="plain", runs_dir=tmp_path, **TINY)
    fast = fit(steps=2, name="fast", runs_dir=tmp_path, **{option: True}, **TINY)
    assert _losses(fast) == pytest.approx(_losses(plain), rel=1e-4)
    assert [v["loss"] for v in fast["val"]] == pytest.approx([v["loss"] for v in plain["val"]], rel=1e-4)
    a = read_checkpoint(tmp_path / "plain" / "last.pth.tar")["state_dict"]
    b = read_checkpoint(tmp_path / "fast" / "last.pth.tar")["state_dict"]
    assert {k: tuple(t.shape) for k, t in a.items()} == {k: tuple(t.shape) for k, t in b.items()}
    assert json.loads((tmp_path / "fast" / "config.json").read_text())[option] is True
    load_checkpoint(tmp_path / "fast" / "last.pth.tar", device="cpu")
