"""Loading released-style and gabic checkpoints; bad checkpoints get one clear error."""

from __future__ import annotations

import argparse
import re

import pytest
import torch

from gabic.checkpoints import detect_config, load_checkpoint, read_checkpoint, save_checkpoint
from gabic.errors import CheckpointError
from tests.conftest import small_model

X = torch.rand(1, 3, 64, 64)


def _legacy(state_dict: dict) -> dict:
    """The original code's names: ``module.`` prefix and ``_matrixK/_biasK/_factorK``."""
    names = {"matrices": "_matrix", "biases": "_bias", "factors": "_factor"}
    out = {}
    for k, v in state_dict.items():
        k = re.sub(
            r"entropy_bottleneck\.(matrices|biases|factors)\.(\d+)$",
            lambda m: f"entropy_bottleneck.{names[m.group(1)]}{m.group(2)}",
            k,
        )
        out[f"module.{k}"] = v
    return out


@pytest.mark.parametrize("name", ["gabic", "wacnn", "stf"])
def test_legacy_checkpoint_round_trip(tmp_path, name):
    model = small_model(name)
    sd = _legacy(model.state_dict())
    assert any("_matrix0" in k for k in sd)
    path = tmp_path / "q2-model.pth.tar"
    torch.save({"state_dict": sd, "epoch": 199, "loss": 0.5}, path)
    loaded = load_checkpoint(path, device="cpu")
    assert type(loaded) is type(model)
    assert not loaded.training
    assert loaded.config == model.config
    with torch.no_grad():
        torch.testing.assert_close(loaded(X)["x_hat"], model(X)["x_hat"])
    # update() done: it can code at once, and gives the same bits as the original.
    assert loaded.compress(X)["strings"] == model.compress(X)["strings"]


def test_released_checkpoint_with_an_argparse_namespace_loads_as_data(tmp_path, caplog):
    model = small_model("gabic")
    path = tmp_path / "q1-model.pth.tar"
    torch.save({"state_dict": _legacy(model.state_dict()), "args": argparse.Namespace(lmbda=0.0067)}, path)
    loaded = load_checkpoint(path, device="cpu")
    assert "in full" not in caplog.text  # the allow-list, not full unpickling
    assert loaded.config["knn"] == 9 and loaded.config["heads"] == 8


def test_detect_config_reads_sizes_from_keys():
    assert detect_config(small_model("gabic").state_dict()) == {
        "model": "gabic",
        "N": 32,
        "M": 40,
        "num_slices": 4,
        "use_edge_attr": True,
    }
    assert detect_config(small_model("wacnn").state_dict()) == {"model": "wacnn", "N": 32, "M": 40, "num_slices": 4}
    stf = detect_config(small_model("stf").state_dict())
    assert stf == {
        "model": "stf",
        "embed_dim": 12,
        "depths": [1, 1, 2, 1],
        "num_heads": [1, 2, 2, 4],
        "window_size": 4,
        "patch_size": 2,
        "mlp_ratio": 4.0,
        "num_slices": 4,
    }
    assert detect_config({"foo.weight": torch.zeros(1)}) is None


def test_gabic_checkpoint_keeps_config_and_takes_overrides(tmp_path, gabic_ckpt):
    ckpt = read_checkpoint(gabic_ckpt)
    assert ckpt["config"]["model"] == "gabic" and ckpt["lmbda"] == 0.0130
    model = load_checkpoint(gabic_ckpt, device="cpu", knn=6, backend="pyg")
    assert model.config["knn"] == 6 and model.config["backend"] == "pyg"
    assert all(m.knn == 6 and m.backend == "pyg" for m in model.graph_attentions().values())


def test_public_api_names():
    import gabic

    assert gabic.load_checkpoint is load_checkpoint and gabic.save_checkpoint is save_checkpoint


def test_save_is_atomic_and_leaves_no_temporary(tmp_path):
    path = save_checkpoint(small_model("wacnn"), tmp_path / "runs" / "a.pth.tar")
    assert [p.name for p in path.parent.iterdir()] == ["a.pth.tar"]


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.pth\.tar: no such checkpoint file"):
        load_checkpoint(tmp_path / "nope.pth.tar")


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.5, 0.999])
def test_truncated_checkpoint(tmp_path, gabic_ckpt, keep):
    data = gabic_ckpt.read_bytes()
    bad = tmp_path / "cut.pth.tar"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match=r"cut\.pth\.tar: cannot read the checkpoint .*truncated or corrupted"):
        load_checkpoint(bad)


@pytest.mark.parametrize("where", [0.2, 0.5, 0.8])
def test_corrupted_checkpoint(tmp_path, gabic_ckpt, where):
    data = bytearray(gabic_ckpt.read_bytes())
    data[int(len(data) * where)] ^= 0x5A
    bad = tmp_path / "flip.pth.tar"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"flip\.pth\.tar: (corrupted checkpoint|cannot read)"):
        load_checkpoint(bad)


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "photo.pth.tar"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    with pytest.raises(CheckpointError, match="photo.pth.tar: cannot read the checkpoint"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}}, other)
    known = r"\(wacnn, gabic, stf, mbt2018-mean, cheng2020-anchor\)"
    with pytest.raises(CheckpointError, match=rf"other.pt: not a checkpoint of a known architecture {known}"):
        load_checkpoint(other)
    lst = tmp_path / "list.pt"
    torch.save([1, 2, 3], lst)
    with pytest.raises(CheckpointError, match="list.pt: no state_dict found"):
        load_checkpoint(lst)


def test_checkpoint_of_another_architecture(wacnn_ckpt):
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(wacnn_ckpt, architecture="gabic")
    msg = str(err.value)
    assert "small-wacnn.pth.tar: a wacnn checkpoint, not gabic" in msg
    assert "keys missing (first: g_a.4.conv_b.0.conv.qkv.weight)" in msg
    assert "unexpected (first: g_a.4.conv_b.0.attn.relative_position_bias_table)" in msg


def test_state_dict_that_does_not_fit(tmp_path):
    sd = small_model("gabic").state_dict()
    del sd["g_s.5.conv_b.0.conv.lin_edge.weight"]
    sd["g_s.5.extra.weight"] = torch.zeros(3)
    path = tmp_path / "edited.pth.tar"
    torch.save({"state_dict": sd}, path)
    with pytest.raises(
        CheckpointError,
        match=r"edited.pth.tar: does not fit a gabic model .*1 keys missing "
        r"\(first: g_s.5.conv_b.0.conv.lin_edge.weight\), 1 unexpected \(first: g_s.5.extra.weight\)",
    ):
        load_checkpoint(path)


def test_bad_override_is_named(gabic_ckpt):
    with pytest.raises(CheckpointError, match=r"gabic.pth.tar: kn: not an option of the gabic model \(its options: knn, backend"):
        load_checkpoint(gabic_ckpt, kn=3)
    with pytest.raises(CheckpointError, match=r"N: not an option of the gabic model on a loaded checkpoint"):
        load_checkpoint(gabic_ckpt, N=3)
    with pytest.raises(CheckpointError, match=r"knn: the gabic model expects int, got '3'"):
        load_checkpoint(gabic_ckpt, knn="3")
    with pytest.raises(CheckpointError, match="small-gabic.pth.tar: knn must be an integer in 1..15"):
        load_checkpoint(gabic_ckpt, knn=40)


def test_nan_weights_are_refused(tmp_path):
    sd = small_model("wacnn").state_dict()
    sd["g_a.0.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.pth.tar"
    torch.save({"state_dict": sd}, path)
    with pytest.raises(CheckpointError, match=r"nan.pth.tar: corrupted checkpoint \(g_a.0.weight holds NaN"):
        load_checkpoint(path)
