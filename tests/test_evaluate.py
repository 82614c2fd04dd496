"""Evaluating checkpoints: numbers equal CompressAI's own eval_model on the same models,
curves grouped by architecture and configuration, bad input refused before any work."""

from __future__ import annotations

import json
import math

import pytest
import torch
from compressai.ops import compute_padding
from compressai.utils.eval_model.__main__ import inference
from PIL import Image

from gabic import GABIC
from gabic.checkpoints import save_checkpoint
from gabic.errors import CheckpointError, DataError
from gabic.evaluate import curve_label, evaluate_checkpoints, find_checkpoints
from gabic.images import image_to_tensor, load_image
from gabic.measurement import measure
from gabic.results import validate
from tests.conftest import run_cli, small_model


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, sample_paths):
    """Two crops: 192x176 (MS-SSIM defined, padded to 192x192) and 200x168."""
    folder = tmp_path_factory.mktemp("images")
    for path, box in zip(sample_paths[:2], [(0, 0, 192, 176), (40, 30, 240, 198)], strict=True):
        load_image(path)[0].crop(box).save(folder / f"{path.stem}.png")
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two GABICs (one lambda each), one WACNN (no lambda), one GABIC with another k."""
    folder = tmp_path_factory.mktemp("ckpts")
    save_checkpoint(small_model("gabic", seed=0), folder / "gabic_a.pth.tar", lmbda=0.0130)
    save_checkpoint(small_model("gabic", seed=1), folder / "gabic_b.pth.tar", lmbda=0.0067)
    save_checkpoint(small_model("wacnn", seed=0), folder / "wacnn.pth.tar")
    torch.manual_seed(2)
    other = GABIC(N=32, M=40, num_slices=4, knn=4)
    other.update(force=True)
    save_checkpoint(other.eval(), folder / "gabic_k4.pth.tar", lmbda=0.0250)
    return folder


@pytest.fixture(scope="module")
def curves(checkpoints, dataset):
    return evaluate_checkpoints(checkpoints, dataset=dataset, device="cpu", progress=False)


def test_per_image_numbers_equal_compressai_eval_model(dataset):
    """bpp, PSNR and MS-SSIM of each image equal those of CompressAI's eval_model inference()."""
    model = small_model("gabic")
    for path in sorted(dataset.iterdir()):
        img = Image.open(path).convert("RGB")
        ours = measure(model, img)
        ref = inference(model, image_to_tensor(img)[0])
        assert ours["bpp"] == pytest.approx(ref["bpp"], abs=1e-12)
        assert ours["psnr-rgb"] == pytest.approx(ref["psnr-rgb"], abs=1e-5)
        assert ours["ms-ssim-rgb"] == pytest.approx(ref["ms-ssim-rgb"], abs=1e-5)
        # the likelihood estimate on the same centred zero padding, per original pixel
        x = image_to_tensor(img)
        h, w = x.shape[-2:]
        pad, _ = compute_padding(h, w, min_div=64)
        with torch.no_grad():
            lik = model(torch.nn.functional.pad(x, pad))["likelihoods"]
        bits = sum(-torch.log2(v).sum().item() for v in lik.values())
        assert ours["bpp-likelihoods"] == pytest.approx(bits / (h * w), rel=1e-6)
        # the .gabic file carries a header on top of the strings
        assert ours["bpp"] == pytest.approx((ours["y_bytes"] + ours["z_bytes"]) * 8 / (h * w))
        assert ours["bpp-file"] > ours["bpp"]


def test_curves_grouped_by_architecture_and_config(curves, checkpoints):
    by_name = {c["name"]: c for c in curves}
    assert sorted(by_name) == [
        "GABIC (N=32, M=40, num_slices=4)",
        "GABIC (N=32, M=40, num_slices=4, knn=4)",
        "WACNN (N=32, M=40, num_slices=4)",
    ]
    gabic = by_name["GABIC (N=32, M=40, num_slices=4)"]
    assert sorted(gabic["meta"]["checkpoint"]) == [str(checkpoints / "gabic_a.pth.tar"), str(checkpoints / "gabic_b.pth.tar")]
    assert by_name["WACNN (N=32, M=40, num_slices=4)"]["meta"]["lambda"] == [None]
    for curve in curves:
        validate(curve)
        assert curve["meta"]["kind"] == "measured"
        assert curve["meta"]["model"] == curve["meta"]["config"]["model"]
        bpp = curve["results"]["bpp"]
        assert bpp == sorted(bpp)
        assert {len(v) for v in curve["results"].values()} == {len(bpp)}


def test_points_keep_their_checkpoint_and_lambda(curves, checkpoints, dataset):
    """Every point of a grouped curve is the point of its own checkpoint evaluated alone."""
    lambdas = {"gabic_a.pth.tar": 0.0130, "gabic_b.pth.tar": 0.0067, "gabic_k4.pth.tar": 0.0250, "wacnn.pth.tar": None}
    for curve in curves:
        for i, ckpt in enumerate(curve["meta"]["checkpoint"]):
            (alone,) = evaluate_checkpoints(ckpt, dataset=dataset, device="cpu", progress=False)
            assert curve["meta"]["lambda"][i] == lambdas[ckpt.rsplit("/", 1)[-1]]
            for key in ("bpp", "bpp-likelihoods", "psnr-rgb", "ms-ssim-rgb"):
                assert curve["results"][key][i] == pytest.approx(alone["results"][key][0], abs=1e-9), key
            for name, values in curve["per_image"].items():
                assert values["bpp"][i] == alone["per_image"][name]["bpp"][0]


def test_point_is_the_mean_over_images(curves):
    for curve in curves:
        for key in ("bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time"):
            for i, value in enumerate(curve["results"][key]):
                assert value == pytest.approx(sum(v[key][i] for v in curve["per_image"].values()) / 2)
        for i, v in enumerate(curve["results"]["ms-ssim-rgb"]):
            assert curve["results"]["ms-ssim-db-rgb"][i] == pytest.approx(-10 * math.log10(1 - v))


def test_curve_label():
    paper = {
        "model": "gabic",
        "N": 192,
        "M": 320,
        "num_slices": 10,
        "knn": 9,
        "heads": 8,
        "use_edge_attr": True,
        "dissimilarity": False,
    }
    assert curve_label(paper | {"backend": "pyg"}) == "GABIC"
    assert curve_label(paper | {"knn": 6}) == "GABIC (knn=6)"
    assert curve_label({"model": "wacnn", "N": 128, "M": 320, "num_slices": 10}) == "WACNN (N=128)"


def test_find_checkpoints(checkpoints, tmp_path):
    files = find_checkpoints([checkpoints])
    assert [f.name for f in files] == ["gabic_a.pth.tar", "gabic_b.pth.tar", "gabic_k4.pth.tar", "wacnn.pth.tar"]
    with pytest.raises(CheckpointError, match="no checkpoints in this folder"):
        find_checkpoints(tmp_path)
    with pytest.raises(CheckpointError, match="missing.pth: no such checkpoint"):
        find_checkpoints(tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="given twice"):
        find_checkpoints([files[0], files[0]])


def test_cli_writes_one_file_per_curve(capsys, checkpoints, dataset, tmp_path):
    out = tmp_path / "rd.json"
    code, stdout, _ = run_cli(
        capsys,
        "evaluate",
        checkpoints / "gabic_a.pth.tar",
        checkpoints / "wacnn.pth.tar",
        "--dataset",
        dataset,
        "--out",
        out,
        "--device",
        "cpu",
    )
    assert code == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["rd_gabic-n32-m40-num-slices4.json", "rd_wacnn-n32-m40-num-slices4.json"]
    assert json.loads((tmp_path / written[1]).read_text())["name"] == "WACNN (N=32, M=40, num_slices=4)"
    assert "gabic_a.pth.tar" in stdout and "wrote" in stdout


def test_cli_bad_input(capsys, checkpoints, dataset, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    junk = tmp_path / "junk.pth.tar"
    junk.write_text("not a checkpoint")
    out = tmp_path / "out.json"
    ckpt = checkpoints / "gabic_a.pth.tar"
    cases = [
        ((ckpt, "--dataset", empty), "empty: no images"),
        ((junk, "--dataset", dataset), "junk.pth.tar: cannot read the checkpoint: not a PyTorch file"),
        ((tmp_path / "nope.pth.tar",), "nope.pth.tar: no such checkpoint file"),
        ((empty,), "empty: no checkpoints in this folder"),
        ((ckpt, "--dataset", dataset, "--knn", "16"), "knn must be an integer in 1..15"),
    ]
    for args, message in cases:
        code, _, err = run_cli(capsys, "evaluate", *args, "--out", out, "--device", "cpu")
        assert code == 1 and message in err and err.count("\n") == 1, err
    code, _, err = run_cli(capsys, "evaluate", ckpt, "--out", tmp_path / "out.txt")
    assert code == 1 and "must end in .json" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "junk.pth.tar"], "nothing written"


def test_evaluate_api_bad_dataset(checkpoints, tmp_path):
    with pytest.raises(DataError, match="no images"):
        evaluate_checkpoints(checkpoints, dataset=tmp_path, progress=False)
