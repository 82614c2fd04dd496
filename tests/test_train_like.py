"""Another architecture trained the way a run was (gabic.train.like)."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import fields
from pathlib import Path

import pytest
from PIL import Image

from gabic.checkpoints import load_checkpoint
from gabic.errors import GabicError
from gabic.train import TrainConfig, fit, fit_like, run_settings
from gabic.train.like import ARCHITECTURE_FIELDS

#: The training settings a partner run must share (every TrainConfig field but the architecture's and the run's place).
TRAINING_FIELDS = [f.name for f in fields(TrainConfig) if f.name not in (*ARCHITECTURE_FIELDS, "runs_dir")]
#: A tiny GABIC run with settings away from the defaults, so that a setting not carried over shows.
RECIPE = dict(
    model="gabic",
    N=32,
    M=40,
    num_slices=4,
    knn=5,
    heads=4,
    patch_size=64,
    batch_size=2,
    steps=2,
    val_interval=2,
    lmbda=0.0067,
    lr=3e-4,
    aux_lr=2e-3,
    clip=0.5,
    seed=7,
    device="cpu",
    progress=False,
)


@pytest.fixture(scope="module")
def folders(tmp_path_factory, sample_paths) -> dict[str, Path]:
    """Three small training images and one validation image."""
    root = tmp_path_factory.mktemp("data")
    train, val = root / "train", root / "val"
    train.mkdir()
    val.mkdir()
    for i, p in enumerate(sample_paths[:3]):
        Image.open(p).convert("RGB").crop((10 * i, 20, 10 * i + 96, 100)).save(train / f"t{i}.png")
    Image.open(sample_paths[3]).convert("RGB").crop((200, 150, 264, 214)).save(val / "v.png")
    return {"train": train, "val": val}


@pytest.fixture(scope="module")
def original(tmp_path_factory, folders) -> Path:
    """A finished GABIC run, ``<runs>/orig``."""
    runs = tmp_path_factory.mktemp("runs")
    fit(name="orig", runs_dir=runs, dataset=str(folders["train"]), val_dataset=str(folders["val"]), **RECIPE)
    return runs / "orig"


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


def test_fit_like_trains_wacnn_with_every_setting_of_the_run(original, folders):
    history = fit_like(original, model="wacnn", progress=False)
    new = original.parent / "orig-wacnn"
    assert new.is_dir()
    old_cfg, new_cfg = _config(original), _config(new)
    assert old_cfg["model"] == "gabic" and new_cfg["model"] == "wacnn"
    for key in TRAINING_FIELDS:
        assert new_cfg[key] == old_cfg[key], key
    # the recipe as given, not the defaults
    given = {k: v for k, v in RECIPE.items() if k not in ("model", "N", "M", "num_slices", "knn", "heads", "progress")}
    assert {k: new_cfg[k] for k in given} == given
    assert (new_cfg["dataset"], new_cfg["val_dataset"]) == (str(folders["train"]), str(folders["val"]))
    assert new_cfg["extra"]["validation_images"] == old_cfg["extra"]["validation_images"] == [str(folders["val"] / "v.png")]
    assert (new_cfg["name"], new_cfg["runs_dir"]) == ("orig-wacnn", str(original.parent))
    sizes = {k: RECIPE[k] for k in ("N", "M", "num_slices")}
    assert old_cfg["options"] == {**sizes, "knn": RECIPE["knn"], "heads": RECIPE["heads"]}
    assert new_cfg["options"] == sizes  # the sizes WACNN has too; GABIC's graph settings stay behind
    assert len(history["train"]) == 2 and [v["step"] for v in history["val"]] == [2]
    model = load_checkpoint(new / "last.pth.tar", device="cpu")
    assert model.name == "wacnn" and (model.config["N"], model.config["M"], model.config["num_slices"]) == (32, 40, 4)


def test_run_settings_are_the_training_fields(original):
    settings = run_settings(original)
    saved = _config(original)
    assert set(settings) == {*TRAINING_FIELDS, "options"}
    assert settings == {**{k: saved[k] for k in TRAINING_FIELDS}, "options": saved["options"]}
    assert run_settings(original / "config.json") == settings  # the folder or its config.json


def test_an_override_is_applied_and_the_hold_out_is_the_same(tmp_path, folders):
    """A run without a validation folder holds out its last training image; the partner holds out the same."""
    fit(name="held", runs_dir=tmp_path, dataset=str(folders["train"]), **RECIPE)
    history = fit_like(tmp_path / "held", model="wacnn", name="held-short", progress=False, steps=1, lr=None)
    old_cfg, new_cfg = _config(tmp_path / "held"), _config(tmp_path / "held-short")
    assert new_cfg["steps"] == 1 and len(history["train"]) == 1
    assert new_cfg["lr"] == old_cfg["lr"] == 3e-4  # None leaves a setting as it was
    assert new_cfg["val_dataset"] is None
    assert new_cfg["extra"]["validation_images"] == old_cfg["extra"]["validation_images"] == [str(folders["train"] / "t2.png")]
    for key in set(TRAINING_FIELDS) - {"steps"}:
        assert new_cfg[key] == old_cfg[key], key


def test_the_new_run_lands_beside_the_run_wherever_it_was_trained(original, tmp_path):
    """The run was moved after training: its config.json names a runs folder that is not there."""
    moved = tmp_path / "moved" / "orig"
    shutil.copytree(original, moved)
    elsewhere = tmp_path / "nowhere" / "runs"
    cfg = _config(moved)
    cfg["runs_dir"] = str(elsewhere)
    (moved / "config.json").write_text(json.dumps(cfg))
    fit_like(moved / "config.json", model="wacnn", progress=False, steps=1)  # the config.json itself also names the run
    assert (tmp_path / "moved" / "orig-wacnn" / "config.json").is_file()
    assert _config(tmp_path / "moved" / "orig-wacnn")["runs_dir"] == str(tmp_path / "moved")
    assert not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in (tmp_path / "moved").iterdir()) == ["orig", "orig-wacnn"]


def test_runs_dir_can_be_overridden(original, tmp_path):
    fit_like(original, model="wacnn", name="there", runs_dir=str(tmp_path / "other"), progress=False, steps=1)
    assert _config(tmp_path / "other" / "there")["runs_dir"] == str(tmp_path / "other")
    assert not (original.parent / "there").exists()


# --------------------------------------------------------------------------- not a run
def test_a_folder_without_config_json_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GabicError, match=re.escape(str(tmp_path / "empty" / "config.json"))):
        run_settings(tmp_path / "empty")
    with pytest.raises(GabicError, match="not a readable run configuration"):
        fit_like(tmp_path / "empty", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # nothing trained, nothing written
    with pytest.raises(GabicError, match="nothere"):
        run_settings(tmp_path / "nothere")


@pytest.mark.parametrize(
    "text,match",
    [
        (json.dumps({"lmbda": 0.01, "steps": 2}), "no 'model'"),
        (json.dumps([{"model": "gabic"}]), "no 'model'"),
        ("{not json", "not a readable run configuration"),
    ],
)
def test_a_config_json_that_is_not_a_run_is_refused(tmp_path, text, match):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(GabicError, match=match) as err:
        run_settings(tmp_path)
    assert str(tmp_path / "config.json") in str(err.value)


# --------------------------------------------------------------------------- epochs runs, the current folder
def test_a_run_trained_by_epochs_has_a_partner(tmp_path, folders):
    recipe = {k: v for k, v in RECIPE.items() if k != "steps"}
    fit(name="ep", runs_dir=tmp_path, dataset=str(folders["train"]), val_dataset=str(folders["val"]), epochs=1, **recipe)
    saved = _config(tmp_path / "ep")
    assert (saved["epochs"], saved["steps"]) == (1, 2)  # 3 training images, batches of 2
    fit_like(tmp_path / "ep", model="wacnn", progress=False)
    new = _config(tmp_path / "ep-wacnn")
    assert (new["epochs"], new["steps"]) == (1, 2)


def test_the_current_folder_as_the_run(original, tmp_path, monkeypatch):
    run = tmp_path / "runs" / "here"
    shutil.copytree(original, run)
    monkeypatch.chdir(run)
    fit_like(".", model="wacnn", progress=False, steps=1)
    assert (tmp_path / "runs" / "here-wacnn" / "config.json").is_file()
