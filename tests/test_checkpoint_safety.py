"""Checkpoints are data: a file whose unpickling would run code is refused unless trusted; what the
released training scripts save (epochs, losses, optimiser and scheduler states, namespaces) loads."""

from __future__ import annotations

import argparse
import os
import pathlib

import numpy as np
import pytest
import torch

from gabic.checkpoints import load_checkpoint, read_checkpoint
from gabic.errors import CheckpointError
from gabic.evaluate import evaluate_checkpoints
from tests.conftest import run_cli, small_model


class _WritesAFile:
    """Unpickling this object calls ``os.system``: it writes the file named in the command."""

    def __init__(self, target: pathlib.Path):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _hostile(tmp_path: pathlib.Path, zip_format: bool = True, harmless_first: bool = True) -> tuple[pathlib.Path, pathlib.Path]:
    """A released-looking checkpoint with a payload; returns (checkpoint, the file the payload would write)."""
    target = tmp_path / "written-by-the-checkpoint"
    payload = {"state_dict": small_model("gabic").state_dict(), "extra": _WritesAFile(target)}
    if harmless_first:
        payload = {"args": argparse.Namespace(lr=1e-4, checkpoint=pathlib.Path("/data/x")), **payload}
    path = tmp_path / f"q1-model{'' if zip_format else '-legacy'}{'' if harmless_first else '-bare'}.pth.tar"
    torch.save(payload, path, _use_new_zipfile_serialization=zip_format)
    return path, target


@pytest.mark.parametrize("zip_format", [True, False])
@pytest.mark.parametrize("harmless_first", [True, False])
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, zip_format, harmless_first):
    path, target = _hostile(tmp_path, zip_format, harmless_first)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, device="cpu")
    message = str(info.value)
    assert message.startswith(str(path)) and "posix.system" in message and "trust=True (--trust-checkpoint)" in message
    assert "corrupted" not in message
    assert not target.exists(), "the payload ran"


def test_a_trusted_checkpoint_is_unpickled_in_full(tmp_path, caplog):
    path, target = _hostile(tmp_path)
    model = load_checkpoint(path, device="cpu", trust=True)
    assert target.exists() and model.name == "gabic"  # the caller asked for it
    assert "in full, as asked" in caplog.text


def test_the_commands_refuse_it_too_and_take_trust_checkpoint(capsys, tmp_path, sample_paths):
    path, target = _hostile(tmp_path)
    out = tmp_path / "x.gabic"
    code, _, err = run_cli(capsys, "compress", sample_paths[0], out, "--checkpoint", path, "--device", "cpu")
    assert code == 1 and "--trust-checkpoint" in err and "Traceback" not in err and not out.exists() and not target.exists()
    code, _, err = run_cli(capsys, "evaluate", path, "--out", tmp_path / "r.json", "--device", "cpu")
    assert code == 1 and "posix.system" in err and not target.exists()
    with pytest.raises(CheckpointError, match="posix.system"):
        evaluate_checkpoints(path, device="cpu", progress=False)
    assert not target.exists()


def test_what_the_original_training_scripts_save_loads_without_trust(tmp_path):
    """GABIC's train.py: epoch, state_dict, best losses, optimiser, aux optimiser, scheduler, counter;
    CompressAI's and STF's examples: epoch, state_dict, loss, optimisers, lr_scheduler; numpy numbers
    and an argparse namespace where a script kept them."""
    model = small_model("gabic")
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    optimizer, aux_optimizer = torch.optim.Adam(main, lr=1e-4), torch.optim.Adam(aux, lr=1e-3)
    x = torch.rand(1, 3, 64, 64)
    out = model.train()(x)
    (out["x_hat"].mean() + sum(v.mean() for v in out["likelihoods"].values())).backward()
    optimizer.step()
    aux_optimizer.step()
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "min", factor=0.3, patience=4)
    scheduler.step(np.float64(1.25))  # a loss computed with numpy
    saved = {
        "epoch": 199,
        "state_dict": model.state_dict(),
        "best_val_loss": np.float64(1.25),
        "best_kodak_loss": torch.tensor(1.3),
        "loss": 1.2,
        "optimizer": optimizer.state_dict(),
        "aux_optimizer": aux_optimizer.state_dict(),
        "lr_scheduler": scheduler.state_dict(),
        "counter": 12345,
        "args": argparse.Namespace(lmbda=0.0067, save_dir=pathlib.Path("runs/q1"), patch_size=(256, 256)),
    }
    path = tmp_path / "last_checkpoint.pth.tar"
    torch.save(saved, path)
    ckpt = read_checkpoint(path)
    assert ckpt["epoch"] == 199 and ckpt["lr_scheduler"]["best"] == 1.25 and ckpt["args"].lmbda == 0.0067
    assert load_checkpoint(path, device="cpu").config["model"] == "gabic"
