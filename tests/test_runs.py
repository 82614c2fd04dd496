"""Runs are never lost or misrecorded: a run is not replaced, a resume keeps the experiment's settings
and records itself, SIGTERM saves like Ctrl-C, options a model does not take are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from gabic.checkpoints import read_checkpoint
from gabic.errors import GabicError
from gabic.train import fit
from tests.conftest import run_cli
from tests.test_train import TINY, TINY_ARGS, small_validation_set  # noqa: F401 - the quick validation set, as a fixture


def _losses(history) -> list[float]:
    return [row["loss"] for row in history["train"]]


def test_a_run_is_never_replaced_without_overwrite(tmp_path, capsys):
    fit(steps=2, name="x", runs_dir=tmp_path, **TINY)
    run = tmp_path / "x"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(GabicError, match=r"x: holds a run \(trained to step 2\); continue it with --resume, or start again under"):
        fit(steps=1, name="x", runs_dir=tmp_path, **TINY)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # untouched, no lock left
    code, _, err = run_cli(capsys, "train", *TINY_ARGS, "--batch-size", "2", "--runs-dir", tmp_path, "--name", "x")
    assert code == 1 and err.count("\n") == 1 and "--overwrite (which deletes it)" in err, err
    history = fit(steps=1, name="x", runs_dir=tmp_path, overwrite=True, **TINY)
    assert [r["step"] for r in history["train"]] == [1]
    assert read_checkpoint(run / "last.pth.tar")["train"]["step"] == 1 and "resumes" not in history
    code, _, err = run_cli(capsys, "train", *TINY_ARGS, "--runs-dir", tmp_path, "--name", "x", "--resume", "--overwrite")
    assert code == 1 and "give one of them" in err


def test_resume_refuses_a_changed_setting_and_names_it(tmp_path, capsys):
    fit(steps=2, name="r", runs_dir=tmp_path, lmbda=0.013, **TINY)
    before = (tmp_path / "r" / "last.pth.tar").read_bytes()
    for option, value, recorded in (("lmbda", 0.05, 0.013), ("patch_size", 128, 64), ("seed", 3, 0), ("backend", "pyg", "dense")):
        with pytest.raises(GabicError, match=rf"the run was trained with {option}={recorded!r}, not {value!r}; a resumed run keeps"):
            fit(steps=4, name="r", runs_dir=tmp_path, resume=True, **{**TINY, option: value})
    code, _, err = run_cli(capsys, "train", *TINY_ARGS, "--runs-dir", tmp_path, "--name", "r", "--resume", "--lambda", "0.05")
    assert code == 1 and "trained with lmbda=0.013, not 0.05" in err and "only steps, epochs, val_interval, device" in err
    assert (tmp_path / "r" / "last.pth.tar").read_bytes() == before


def test_resume_takes_the_recorded_settings_and_records_itself(tmp_path, capsys):
    """`gabic train --name X --resume` alone continues the run as it was set up (its lambda, sizes,
    steps); what may change (steps, validation interval) is recorded in the history."""
    fit(steps=3, name="r", runs_dir=tmp_path, lmbda=0.0067, **TINY)
    code, _, err = run_cli(capsys, "train", "--runs-dir", tmp_path, "--name", "r", "--resume", "--device", "cpu")
    assert code == 0 and "already at step 3 of the 3" in err  # the recorded steps: nothing to do
    code, out, _ = run_cli(capsys, "train", "--runs-dir", tmp_path, "--name", "r", "--resume", "--steps", "4", "--val-interval", "4")
    assert code == 0 and "step 4: validation" in out
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["lmbda"] == 0.0067 and config["options"]["N"] == 32 and config["patch_size"] == 64 and config["steps"] == 4
    ckpt = read_checkpoint(tmp_path / "r" / "last.pth.tar")
    assert ckpt["lmbda"] == 0.0067 and ckpt["train"]["step"] == 4
    (resume,) = ckpt["train"]["history"]["resumes"]
    assert resume["step"] == 3 and resume["changed"]["steps"] == [3, 4] and resume["changed"]["val_interval"] == [2, 4]
    assert "device" not in resume["changed"]


def test_options_a_model_does_not_take_are_refused(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--model", "wacnn", "--knn", "64", "--steps", "1", "--runs-dir", tmp_path, "--name", "w")
    assert code == 1 and "gabic: error: knn: not an option of the wacnn model (its options: N, M, num_slices)" in err
    assert not (tmp_path / "w").exists()
    with pytest.raises(GabicError, match=r"N: not an option of the stf model \(its options: embed_dim, num_slices\)"):
        fit(steps=1, name="s", runs_dir=tmp_path, model="stf", N=32, M=40)
    with pytest.raises(GabicError, match="unknown training options: neighbours"):
        fit(steps=1, name="s", runs_dir=tmp_path, neighbours=3)


def _train_cli(tmp_path, name: str, steps: int, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "gabic.train", *TINY_ARGS[:-4], "--steps", str(steps), "--val-interval", "2", "--batch-size", "2"]
    argv += ["--val-dataset", TINY["val_dataset"], "--device", "cpu", "--runs-dir", str(tmp_path), "--name", name, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)


@pytest.mark.slow
def test_sigterm_saves_and_the_run_resumes_exactly(tmp_path):
    """A scheduler's SIGTERM mid-run: the run saves last.pth.tar, removes its lock, exits 143; resumed,
    its losses equal those of an uninterrupted run at every step."""
    full = _train_cli(tmp_path, "full", 12)
    assert full.wait(timeout=600) == 0, full.stderr.read()[-2000:]
    cut = _train_cli(tmp_path, "cut", 12)
    history = tmp_path / "cut" / "history.json"
    deadline = time.time() + 600
    while time.time() < deadline and cut.poll() is None:  # wait for the second validation (step 4) at least
        if history.exists() and json.loads(history.read_text() or "{}").get("val", [{}])[-1].get("step", 0) >= 4:
            break
        time.sleep(0.2)
    assert cut.poll() is None, "the run ended before it could be terminated"
    cut.send_signal(signal.SIGTERM)
    assert cut.wait(timeout=120) == 128 + signal.SIGTERM
    err = cut.stderr.read()
    assert "terminated by SIGTERM (the last checkpoint is saved; continue with --resume)" in err
    step = read_checkpoint(tmp_path / "cut" / "last.pth.tar")["train"]["step"]
    assert 4 <= step < 12 and not (tmp_path / "cut" / ".lock").exists()
    resumed = _train_cli(tmp_path, "cut", 12, "--resume")
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()[-2000:]
    done = {name: json.loads((tmp_path / name / "history.json").read_text()) for name in ("full", "cut")}
    assert _losses(done["cut"]) == _losses(done["full"])  # bit for bit, every step
    assert [v["loss"] for v in done["cut"]["val"]] == [v["loss"] for v in done["full"]["val"]]
    assert done["cut"]["resumes"][0]["step"] == step


def test_on_the_sample_photos_the_test_photo_plays_no_part(tmp_path, monkeypatch):
    """Training on three sample photos, validation on central crops of those three; the fourth, the test
    photo the notebooks and the demo measure on, is never read by the run."""
    from pathlib import Path

    import gabic.data
    from gabic.data import sample_split
    from gabic.train import held_out_images

    read = []
    real = gabic.data.load_image

    def recording(path):
        read.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(gabic.data, "load_image", recording)
    history = fit(steps=2, name="s", runs_dir=tmp_path, **{**TINY, "val_dataset": None})
    assert history["val"] and "rocket.jpg" not in read and {"astronaut.png", "chelsea.png", "coffee.png"} <= set(read)
    extra = json.loads((tmp_path / "s" / "config.json").read_text())["extra"]
    assert [Path(p).name for p in extra["test_images"]] == ["rocket.jpg"] and extra["validation_crop"] == 256
    assert [Path(p).name for p in extra["validation_images"]] == ["astronaut.png", "chelsea.png", "coffee.png"]
    assert held_out_images(tmp_path / "s") == sample_split()["test"]
    with pytest.raises(GabicError, match="the run records no test images"):
        held_out_images(tmp_path / "nothing")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_a_checkpoint_is_written_waits_for_the_file(tmp_path, monkeypatch, signum):
    """SIGTERM or Ctrl-C arriving inside ``torch.save`` (here: the first checkpoint, best.pth.tar at the first
    validation) is held until the file is whole; then the run stops as for any interrupt: last.pth.tar
    saved, the signal's exception raised (not torch's half-written-zip RuntimeError)."""
    from gabic.train.loop import Terminated

    real_save, sent = torch.save, []

    def save_with_a_signal(obj, f, *args, **kwargs):
        if not sent:
            sent.append(signum)
            os.kill(os.getpid(), signum)  # handled at the next bytecode: inside torch.save's own Python code
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_with_a_signal)
    expected = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    with pytest.raises(expected) as raised:
        fit(steps=4, name="s", runs_dir=tmp_path, **TINY)
    assert (signum == signal.SIGTERM) == isinstance(raised.value, Terminated)
    assert sent == [signum]
    for name in ("best.pth.tar", "last.pth.tar"):
        assert read_checkpoint(tmp_path / "s" / name)["train"]["step"] == 2, name
    assert json.loads((tmp_path / "s" / "history.json").read_text())["val"][-1]["step"] == 2
    assert not (tmp_path / "s" / ".lock").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.getsignal(signal.SIGINT) is signal.default_int_handler
