"""CompressAI's zoo models as gabic architectures (gabic.models.zoo): files as the zoo saves them,
measured exactly as CompressAI codes them, trained, and through the command line; the registry's
entry points; options refused or applied where they fit."""

from __future__ import annotations

import json
import logging
from importlib import metadata

import pytest
import torch
from compressai.models import Cheng2020Anchor as CompressAICheng
from compressai.models import MeanScaleHyperprior
from PIL import Image

import gabic.models as models
from gabic.checkpoints import load_checkpoint, save_checkpoint
from gabic.data import samples
from gabic.errors import CheckpointError
from gabic.evaluate import evaluate_checkpoints
from gabic.images import as_rgb, center_crop, crop, image_to_tensor, pad, tensor_to_image
from gabic.measurement import measure
from gabic.metrics import psnr
from gabic.models import MODELS, Cheng2020Anchor, LearnedCodec, Mbt2018Mean, Option, register
from gabic.train import fit
from tests.conftest import run_cli, small_model

#: The zoo's own classes, by gabic's name: the reference implementation of each.
COMPRESSAI = {"mbt2018-mean": MeanScaleHyperprior, "cheng2020-anchor": CompressAICheng}
ZOO = sorted(COMPRESSAI)


def _zoo_file(tmp_path, name: str, legacy: bool = False):
    """A seeded small zoo model saved as ``compressai.zoo`` saves its weights: a bare state dict, in a
    file named like the zoo's (``<name>-<quality>-<sha256 prefix>.pth.tar``); with ``legacy`` the keys
    as older zoo files have them (the entropy bottleneck's ``_matrices.0``, ``downsample``)."""
    model = small_model(name)
    sd = model.state_dict()
    if legacy:
        sd = {
            k.replace(".skip.", ".downsample.").replace("entropy_bottleneck._matrix", "entropy_bottleneck._matrices."): v
            for k, v in sd.items()
        }
    path = tmp_path / f"{name}-1-0123abcd.pth.tar"
    torch.save(sd, path)
    return path, model


@pytest.fixture(scope="module")
def photo():
    return center_crop(as_rgb(samples()[0]), (96, 136))


@pytest.mark.parametrize("name", ZOO)
def test_a_zoo_file_is_recognised_with_its_sizes(tmp_path, name):
    path, model = _zoo_file(tmp_path, name, legacy=True)
    loaded = load_checkpoint(path, device="cpu")
    assert type(loaded) is MODELS[name] and loaded.config == model.config
    expected = {"mbt2018-mean": {"N": 32, "M": 48}, "cheng2020-anchor": {"N": 32}}[name]
    assert loaded.config == {"model": name, **expected}
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True))


def test_a_tensor_of_another_shape_is_named(tmp_path):
    sd = small_model("mbt2018-mean").state_dict()
    sd["h_s.0.weight"] = torch.zeros(3, 3, 5, 5)
    torch.save(sd, tmp_path / "edited.pth.tar")
    with pytest.raises(
        CheckpointError,
        match=r"edited.pth.tar: does not fit a mbt2018-mean model with N=32, M=48: 1 tensor of another shape "
        r"\(first: h_s.0.weight \(3, 3, 5, 5\), the model's \(32, 48, 5, 5\)\)",
    ):
        load_checkpoint(tmp_path / "edited.pth.tar", device="cpu")


@pytest.mark.parametrize("name", ZOO)
def test_measure_gives_exactly_compressai_own_coding(tmp_path, name, photo):
    """bpp and PSNR of gabic's measurement equal those of CompressAI's compress/decompress on the
    same zero-padded image, with CompressAI's own class loading the same file."""
    path, _ = _zoo_file(tmp_path, name)
    m = measure(load_checkpoint(path, device="cpu"), photo)

    reference = COMPRESSAI[name].from_state_dict(torch.load(path, weights_only=True)).eval()
    reference.update(force=True)
    x = image_to_tensor(photo)
    xp, unpad = pad(x)
    with torch.no_grad():
        out = reference.compress(xp)
        x_hat = reference.decompress(out["strings"], out["shape"])["x_hat"].clamp(0, 1)
    payload = sum(len(s) for group in out["strings"] for s in group)
    h, w = x.shape[-2:]
    assert m.payload_bytes == payload
    assert m.bpp == payload * 8 / (h * w)
    assert m.psnr_rgb == psnr(photo, tensor_to_image(crop(x_hat, unpad)))
    assert m.decoded.tobytes() == tensor_to_image(crop(x_hat, unpad)).tobytes()


@pytest.mark.parametrize("name", ZOO)
def test_forward_entropy_is_the_forward_pass(name):
    model = small_model(name)
    x = torch.rand(1, 3, 64, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain, more = model(x), model.forward_entropy(x)
    assert torch.equal(plain["x_hat"], more["x_hat"])
    for key in ("y", "z"):
        assert torch.equal(plain["likelihoods"][key], more["likelihoods"][key])
    assert more["y"].shape == more["y_hat"].shape == more["means"].shape == more["scales"].shape
    assert torch.all(more["scales"] >= model.gaussian_conditional.lower_bound_scale.bound)


@pytest.mark.parametrize("name", ZOO)
def test_the_command_line_round_trip(tmp_path, capsys, name, photo):
    path, _ = _zoo_file(tmp_path, name)
    image, coded, decoded = tmp_path / "in.png", tmp_path / "x.gabic", tmp_path / "out.png"
    photo.save(image)
    code, _, err = run_cli(capsys, "compress", image, coded, "--checkpoint", path, "--device", "cpu")
    assert code == 0, err
    code, out, err = run_cli(capsys, "info", coded)
    assert code == 0 and name in out and "none (the model reports no checksum of its symbols)" in out
    code, _, err = run_cli(capsys, "decompress", coded, decoded, "--checkpoint", path, "--device", "cpu")
    assert code == 0, err
    expected = measure(load_checkpoint(path, device="cpu"), photo).decoded
    assert Image.open(decoded).tobytes() == expected.tobytes()
    code, _, err = run_cli(capsys, "compress", image, tmp_path / "y.gabic", "--checkpoint", path, "--knn", "4", "--device", "cpu")
    assert code == 1 and f"knn: not an option of the {name} model" in err and not (tmp_path / "y.gabic").exists()


def test_evaluate_applies_an_option_where_it_fits(tmp_path, photo, caplog):
    """A folder of GABIC and zoo checkpoints with --knn: GABIC's curve at that k, the zoo's as it is, and
    the files it was not applied to named; an option that fits none of them is refused."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    zoo, _ = _zoo_file(folder, "mbt2018-mean")
    save_checkpoint(small_model("gabic"), folder / "gabic.pth.tar")
    photo.save(tmp_path / "p.png")
    with caplog.at_level(logging.WARNING, logger="gabic"):
        curves = evaluate_checkpoints(folder, dataset=[tmp_path / "p.png"], device="cpu", progress=False, knn=5)
    by_model = {c["meta"]["model"]: c for c in curves}
    assert by_model["gabic"]["meta"]["config"]["knn"] == 5 and "knn" not in by_model["mbt2018-mean"]["meta"]["config"]
    assert f"not to {zoo.name} (mbt2018-mean: not an option of the model)" in caplog.text
    with pytest.raises(CheckpointError, match="knn: not an option of the mbt2018-mean model on a loaded checkpoint; none of the 1"):
        evaluate_checkpoints(zoo, dataset=[tmp_path / "p.png"], device="cpu", progress=False, knn=5)
    single = evaluate_checkpoints(zoo, dataset=[tmp_path / "p.png"], device="cpu", progress=False)[0]
    assert single["name"] == "mbt2018-mean (N=32, M=48)"
    assert single["results"]["bpp"] == [measure(load_checkpoint(zoo, device="cpu"), photo).bpp]


@pytest.mark.parametrize("name", ZOO)
def test_a_short_training_run(tmp_path, name, sample_paths):
    sizes = {"mbt2018-mean": {"N": 16, "M": 24}, "cheng2020-anchor": {"N": 16}}[name]
    val = tmp_path / "val"
    val.mkdir()
    Image.open(sample_paths[3]).convert("RGB").crop((200, 150, 328, 246)).save(val / "v.png")
    history = fit(
        model=name, **sizes, patch_size=64, batch_size=2, steps=3, val_interval=3, lr=1e-3,
        val_dataset=str(val), runs_dir=tmp_path, name="z", progress=False, device="cpu",
    )  # fmt: skip
    losses = [row["loss"] for row in history["train"]]
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    config = json.loads((tmp_path / "z" / "config.json").read_text())
    assert config["model"] == name and config["options"] == sizes
    model = load_checkpoint(tmp_path / "z" / "last.pth.tar", device="cpu")
    assert model.config == {"model": name, **sizes}


def test_train_command_takes_the_zoo_sizes_and_refuses_others(tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "train", "--model", "cheng2020-anchor", "--M", "64", "--steps", "1", "--runs-dir", tmp_path, "--name", "c"
    )
    assert code == 1 and "M: not an option of the cheng2020-anchor model (its options: N)" in err
    assert not (tmp_path / "c").exists()


def test_paper_preset_gives_each_architecture_its_published_model():
    from gabic.train import resolve_config

    assert resolve_config("paper", model="stf").model_config() == {"model": "stf"}
    small = resolve_config("small-cpu", model="stf")
    assert small.options == {"num_slices": 8}  # the sizes STF does not have are the preset's, not the user's: left out
    assert resolve_config("small-cpu", model="mbt2018-mean").options == {"N": 64, "M": 96}


# -- the registry --------------------------------------------------------------------------------------


class _Plugin(Mbt2018Mean):
    """A researcher's architecture: a registered subclass with an option of its own."""

    name = "plugin-codec"
    OPTIONS = (*Mbt2018Mean.OPTIONS, Option("depth", int, "extra depth", inference=True))

    def __init__(self, N: int = 16, M: int = 24, depth: int = 1):
        super().__init__(N=N, M=M)
        self.depth = depth

    @property
    def config(self):
        return {**super().config, "model": self.name, "depth": self.depth}

    @classmethod
    def recognise(cls, state_dict):
        return None


class _EntryPoint:
    def __init__(self, name, value, obj):
        self.name, self.value, self._obj = name, value, obj

    def load(self):
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


@pytest.fixture
def registry_restored():
    """The registry as it was after the test (what a test registers is removed)."""
    before = dict(MODELS)
    yield
    MODELS.clear()
    MODELS.update(before)


def test_entry_points_register_architectures_and_a_broken_one_is_named(monkeypatch, caplog, registry_restored):
    eps = [_EntryPoint("mine", "tests.test_zoo:_Plugin", _Plugin), _EntryPoint("broken", "nowhere:Codec", ImportError("no module"))]
    monkeypatch.setattr(metadata, "entry_points", lambda group: eps if group == models.ENTRY_POINT_GROUP else [])
    with caplog.at_level(logging.WARNING, logger="gabic.models"):
        models._load_entry_points()
    assert models.MODELS["plugin-codec"] is _Plugin
    assert "entry point broken = nowhere:Codec (group gabic.models) not loaded: ImportError: no module" in caplog.text
    model = models.build_model({"model": "plugin-codec", "depth": 2})
    assert isinstance(model, LearnedCodec) and model.config["depth"] == 2
    assert "depth" in models.option_owners(inference=True)


def test_register_refuses_what_is_not_a_codec_or_a_taken_name(registry_restored):
    with pytest.raises(TypeError, match="not a gabic.models.LearnedCodec subclass"):
        register(dict)

    class Clash(Mbt2018Mean):
        name = "gabic"

    with pytest.raises(ValueError, match="the name 'gabic' is taken by gabic.models.gabic.GABIC"):
        register(Clash)
    assert register(Mbt2018Mean) is Mbt2018Mean and register(Cheng2020Anchor) is Cheng2020Anchor  # again: no-op
    assert "plugin-codec" not in MODELS  # the other test's registration was undone
