"""A run stops at its first non-finite loss, gradient or weight, keeps its last good checkpoint and
never writes a bad one; ``skip_nonfinite`` skips such steps instead, counting them."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gabic.checkpoints import read_checkpoint
from gabic.train import fit
from gabic.train import loop as train_loop
from gabic.train.loop import NonFiniteError
from tests.conftest import run_cli
from tests.test_train import TINY, small_validation_set  # noqa: F401 - the quick validation set, as a fixture


def _finite_weights(path) -> bool:
    state = read_checkpoint(path)["state_dict"]
    return all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())


class _NaNGradient(torch.autograd.Function):
    """Identity forward, NaN gradient backward: a finite loss whose gradient is not."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return torch.full_like(grad, math.nan)


def _spoil_at(monkeypatch, step: int, how: str) -> list[int]:
    """Make the loss (``how="loss"``) or its gradient (``"grad"``) non-finite at training step ``step``
    (1-based); returns the list of steps seen."""
    seen: list[int] = []
    real = train_loop.rd_loss

    def rd_loss(out, x, lmbda):
        terms = real(out, x, lmbda)
        if torch.is_grad_enabled():  # a training step, not a validation (no_grad)
            seen.append(len(seen) + 1)
            if seen[-1] == step:
                terms["loss"] = terms["loss"] * math.nan if how == "loss" else _NaNGradient.apply(terms["loss"])
        return terms

    monkeypatch.setattr(train_loop, "rd_loss", rd_loss)
    return seen


@pytest.mark.parametrize("how,value", [("loss", "the loss is nan"), ("grad", "the gradient norm is nan")])
def test_first_non_finite_step_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, how, value):
    _spoil_at(monkeypatch, 3, how)
    with pytest.raises(NonFiniteError) as err:
        fit(steps=6, name="nan", runs_dir=tmp_path, **TINY)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"step 3: {value} (fp32, backend dense); training stopped, ")
    assert f"{tmp_path / 'nan' / 'last.pth.tar'} (step 2) is the last checkpoint" in message
    assert message.endswith("try a lower --lr (now 0.0001)")
    run = tmp_path / "nan"
    assert read_checkpoint(run / "last.pth.tar")["train"]["step"] == 2 and _finite_weights(run / "last.pth.tar")
    assert [r["step"] for r in json.loads((run / "history.json").read_text())["train"]] == [1, 2]
    assert not (run / ".lock").exists()


def test_skip_nonfinite_skips_the_update_and_counts_it(tmp_path, monkeypatch):
    _spoil_at(monkeypatch, 3, "grad")
    history = fit(steps=4, name="skip", runs_dir=tmp_path, skip_nonfinite=1, **TINY)
    assert [r["step"] for r in history["train"]] == [1, 2, 4]
    assert history["skipped"] == [{"step": 3, "value": "grad_norm"}]
    ckpt = read_checkpoint(tmp_path / "skip" / "last.pth.tar")
    assert ckpt["train"]["step"] == 4 and ckpt["train"]["history"]["skipped"] == history["skipped"]
    assert _finite_weights(tmp_path / "skip" / "last.pth.tar")


def test_skipped_step_leaves_the_weights_as_they_were(tmp_path, monkeypatch):
    """A skipped step changes no weight and no optimiser state: the run continues as if that batch
    had never been drawn (the next steps use the next batches)."""
    _spoil_at(monkeypatch, 3, "loss")
    fit(steps=2, name="a", runs_dir=tmp_path, **TINY)
    fit(steps=3, name="a", runs_dir=tmp_path, skip_nonfinite=1, resume=True, **TINY)
    before = read_checkpoint(tmp_path / "a" / "best.pth.tar")  # written at step 2
    after = read_checkpoint(tmp_path / "a" / "last.pth.tar")  # step 3, skipped
    assert after["train"]["step"] == 3
    for key, t in before["state_dict"].items():
        assert torch.equal(t, after["state_dict"][key]), key


def test_too_many_non_finite_steps_stop_the_run(tmp_path, monkeypatch):
    seen = _spoil_at(monkeypatch, 2, "loss")
    spoiled_once = train_loop.rd_loss

    def from_step_two_on(out, x, lmbda):  # steps 2, 3, 4 ... all give NaN
        terms = spoiled_once(out, x, lmbda)
        if torch.is_grad_enabled() and seen[-1] > 2:
            terms["loss"] = terms["loss"] * math.nan
        return terms

    monkeypatch.setattr(train_loop, "rd_loss", from_step_two_on)
    with pytest.raises(NonFiniteError, match=r"^step 4: the loss is nan \(fp32, backend dense, after 2 skipped steps\)"):
        fit(steps=6, name="many", runs_dir=tmp_path, skip_nonfinite=2, **TINY)


def test_non_finite_weights_are_never_saved(tmp_path, monkeypatch):
    real_step = train_loop._Run.train_step

    def spoil_weights(run, batch):
        row = real_step(run, batch)
        if run.step == 2:  # the quantiles' lower ends: used by the auxiliary loss only, not by validation
            with torch.no_grad():
                run.model.entropy_bottleneck.quantiles[0, 0, 0] = math.inf
        return row

    monkeypatch.setattr(train_loop._Run, "train_step", spoil_weights)
    with pytest.raises(NonFiniteError, match=r"^step 2: 1 weight tensors are not finite \(first entropy_bottleneck\.quantiles\)"):
        fit(steps=2, name="w", runs_dir=tmp_path, **{**TINY, "val_interval": 1})
    run = tmp_path / "w"
    assert read_checkpoint(run / "last.pth.tar")["train"]["step"] == 1 and _finite_weights(run / "last.pth.tar")


def test_learning_rate_10_stops_with_one_line_and_no_bad_checkpoint(capsys, tmp_path):
    """The issue's case: the small-cpu preset at --lr 10 goes NaN within a few steps."""
    code, _, err = run_cli(
        capsys,
        "train",
        "--preset",
        "small-cpu",
        "--steps",
        "30",
        "--lr",
        "10",
        "--val-interval",
        "1",
        "--runs-dir",
        tmp_path,
        "--name",
        "lr10",
    )
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("gabic: error:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("gabic: error: step ") and "(fp32, backend dense); training stopped" in lines[0]
    assert lines[0].endswith("try a lower --lr (now 10)")
    run = tmp_path / "lr10"
    for ckpt in run.glob("*.pth.tar"):
        assert _finite_weights(ckpt), ckpt
    assert not (run / ".lock").exists()


def test_skip_nonfinite_is_checked(tmp_path):
    from gabic.errors import GabicError

    with pytest.raises(GabicError, match="skip_nonfinite must be >= 0, got -1"):
        fit(steps=2, name="bad", runs_dir=tmp_path, skip_nonfinite=-1, **TINY)
