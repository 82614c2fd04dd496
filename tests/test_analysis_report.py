"""The GABIC-WACNN report: its numbers agree with the one measurement path, its BD-rate with
gabic.metrics on the same curves, its pairs are the nearest in rate, and its files round-trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from gabic.analysis.report import REPORT_KIND, compare_report, load_report, save_report
from gabic.checkpoints import load_checkpoint, save_checkpoint
from gabic.errors import CheckpointError, GabicError
from gabic.metrics import bd_psnr, bd_rate
from tests.conftest import small_model


def _checkpoint(tmp_path, name: str, seed: int, gain: float, lmbda: float):
    """A small model whose analysis output is scaled by ``gain`` (so its latent costs bits and the
    rate differs between checkpoints), saved as a gabic checkpoint."""
    model = small_model(name, seed)
    with torch.no_grad():
        last = model.g_a[7]  # the last convolution of the analysis transform
        last.weight.mul_(gain)
        last.bias.mul_(gain)
    model.update(force=True)
    return save_checkpoint(model, tmp_path / f"{name}-{seed}.pth.tar", lmbda=lmbda)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pair")
    gabic = [_checkpoint(tmp, "gabic", s, g, lm) for s, g, lm in ((0, 20.0, 0.01), (1, 60.0, 0.05))]
    wacnn = [_checkpoint(tmp, "wacnn", s, g, lm) for s, g, lm in ((2, 25.0, 0.01), (3, 70.0, 0.05))]
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 96)[None, :, None] * np.ones((80, 1, 3))
    pixels = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
    images = tmp / "images"
    images.mkdir()
    Image.fromarray(pixels).save(images / "noise.png")
    return gabic, wacnn, images


#: The models' methods that code an image or run it through the network, counted by :func:`counted`.
COUNTED = ("compress", "decompress", "forward", "forward_entropy", "entropy_parameters")


@pytest.fixture(scope="module")
def counted(pair):
    """The report of the pair, with every ``compress`` (encode), ``decompress`` (decode), forward pass
    and ``load_checkpoint`` made while it was computed counted: ``(report, {(model name, method): n})``."""
    import gabic.analysis.report as report_module
    from gabic.models import ChannelContextCodec

    gabic, wacnn, images = pair
    counts: dict[tuple[str, str], int] = {}

    def counting(method: str, original):
        def call(self, *args, **kwargs):
            counts[self.name, method] = counts.get((self.name, method), 0) + 1
            return original(self, *args, **kwargs)

        return call

    def loading(path, *args, **kwargs):
        counts[str(path), "load"] = counts.get((str(path), "load"), 0) + 1
        return load_checkpoint(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        for method in COUNTED:
            if hasattr(ChannelContextCodec, method):
                mp.setattr(ChannelContextCodec, method, counting(method, getattr(ChannelContextCodec, method)))
        mp.setattr(report_module, "load_checkpoint", loading)
        report = compare_report(gabic, wacnn, images, device="cpu", progress=False)
    return report, counts


@pytest.fixture(scope="module")
def report(counted):
    return counted[0]


def test_each_image_is_coded_once_per_checkpoint(counted, pair):
    """The curves code every image once with every checkpoint; the analyses reuse those codings and
    add one forward pass per model of a pair and image (before: two encodes, two decodes and four
    forward passes per model and image)."""
    report, counts = counted
    gabic, wacnn, _ = pair
    images = 1
    for name, checkpoints in (("gabic", gabic), ("wacnn", wacnn)):
        assert counts[name, "compress"] == counts[name, "decompress"] == len(checkpoints) * images, name
        assert counts.get((name, "forward"), 0) == len(checkpoints) * images, "the likelihood rate of each measurement"
    side = {"gabic": "first", "wacnn": "second"}
    for name in ("gabic", "wacnn"):
        passes = counts.get((name, "forward_entropy"), 0) + counts.get((name, "entropy_parameters"), 0)
        assert passes == len(report["pairs"]) * images, f"{name}: one pass per pair and image ({side[name]})"
    loads = {path: n for (path, what), n in counts.items() if what == "load"}
    paired = {p[role] for p in report["pairs"] for role in ("first", "second")}
    assert set(loads) == paired and set(loads.values()) == {1}, "each paired checkpoint loaded once for the analyses"


def test_report_numbers_are_those_of_analyse_image(report, pair):
    """The report's analyses, made from the curves' codings and one pass per model, are the numbers of
    :func:`analyse_image`, which codes the image again and runs its own passes (the way it was done)."""
    from gabic.analysis.report import _jsonable, analyse_image
    from gabic.evaluate import read_images

    _, _, images = pair
    pixels = read_images(images, load=True).pixels[0]
    for p in report["pairs"]:
        models = (load_checkpoint(p["first"], device="cpu"), load_checkpoint(p["second"], device="cpu"))
        names = (report["names"]["first"], report["names"]["second"])
        expected = analyse_image(models, pixels, names, tile=report["meta"]["tile"], max_offset=report["meta"]["max_offset"])
        assert json.dumps(_jsonable(p["images"]["noise.png"])) == json.dumps(_jsonable(expected.summary()))


def test_the_analysis_package_does_not_orchestrate():
    """gabic.analysis is library: it neither trains models nor knows the notebooks' or the released
    checkpoints' places (:func:`gabic.notebooks.default_pair` does, for notebook 05)."""
    import subprocess
    import sys

    orchestration = ("gabic.train", "gabic.notebooks", "gabic.released")
    code = f"import sys, gabic.analysis; print([m for m in {orchestration!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_report_holds_both_curves_measured_once_and_agreeing_with_the_tiles(report):
    assert report["kind"] == REPORT_KIND and report["names"] == {"first": "GABIC", "second": "WACNN"}
    first, second = report["curves"]
    assert first["meta"]["model"] == "gabic" and second["meta"]["model"] == "wacnn"
    assert len(first["results"]["bpp"]) == len(second["results"]["bpp"]) == 2
    for pair in report["pairs"]:
        i = first["meta"]["checkpoint"].index(pair["first"])
        j = second["meta"]["checkpoint"].index(pair["second"])
        (analysis,) = pair["images"].values()
        summary = analysis["summary"]
        # the tile analysis takes the curve's own measurements: the same numbers
        assert summary["a"]["bpp"] == first["per_image"]["noise.png"]["bpp"][i]
        assert summary["b"]["bpp"] == second["per_image"]["noise.png"]["bpp"][j]
        assert summary["a"]["psnr_rgb"] == first["per_image"]["noise.png"]["psnr-rgb"][i]
        assert summary["a"]["bpp_likelihoods"] == pytest.approx(first["per_image"]["noise.png"]["bpp-likelihoods"][i], rel=1e-9)
        tiles = analysis["tiles"]
        pixels = sum(t["pixels"] for t in tiles)
        assert pixels == 80 * 96
        assert sum(t["bits_a"] for t in tiles) / pixels == pytest.approx(summary["a"]["bpp_likelihoods"], rel=1e-9)
        assert (
            set(analysis["redundancy"])
            == set(analysis["attention"])
            == {"g_a.4.conv_b.0", "g_a.8.conv_b.0", "g_s.0.conv_b.0", "g_s.5.conv_b.0"}
        )
        for block in analysis["attention"].values():
            assert set(block) == {"k", "first", "second"}
            assert block["first"]["knn_share"] == pytest.approx(1.0, abs=1e-9)  # GABIC's own graph
            assert 0.0 <= block["second"]["knn_share"] <= 1.0
        assert all(set(per_model) == {"first", "second"} for per_model in analysis["redundancy"].values())
        assert set(analysis["residual_correlation"]) == {"first", "second"}
        assert "name" not in summary["a"] and "name" not in summary["b"], "the labels are kept once, under names"
        corr = np.array(analysis["residual_correlation"]["first"])
        assert corr.shape == (5, 5) and corr[2, 2] == pytest.approx(1.0)


def test_pairs_are_nearest_in_rate(report):
    first, second = report["curves"]
    b = np.log(second["results"]["bpp"])
    for pair in report["pairs"]:
        i = first["meta"]["checkpoint"].index(pair["first"])
        j = second["meta"]["checkpoint"].index(pair["second"])
        assert j == int(np.argmin(np.abs(b - math.log(first["results"]["bpp"][i]))))
    assert [p["first"] for p in report["pairs"]] == first["meta"]["checkpoint"]


def test_bd_rate_is_gabic_metrics_on_the_two_curves(report):
    first, second = report["curves"]
    a, t = second["results"], first["results"]
    try:
        expected = bd_rate(a["bpp"], a["psnr-rgb"], t["bpp"], t["psnr-rgb"], method="pchip")
        expected_psnr = bd_psnr(a["bpp"], a["psnr-rgb"], t["bpp"], t["psnr-rgb"], method="pchip")
    except ValueError as err:
        assert report["bd"]["bd_rate"] is None and report["bd"]["note"] == str(err)
    else:
        assert report["bd"] == {"bd_rate": expected, "bd_psnr": expected_psnr, "method": "pchip", "note": None}


def test_one_point_each_gives_no_bd_rate_and_says_why_and_names_change_no_key(pair, report):
    from gabic.analysis.report import _jsonable

    gabic, wacnn, images = pair
    one = compare_report(gabic[0], wacnn[0], images, names=("ours", "theirs"), device="cpu", progress=False)
    assert one["bd"]["bd_rate"] is None
    assert "2 or more rate points per model; the curves have 1 and 1" in one["bd"]["note"]
    # the labels are stored once: the same pair under other names gives the same keys and numbers
    assert one["names"] == {"first": "ours", "second": "theirs"}
    (same,) = [p for p in report["pairs"] if p["first"] == str(gabic[0])]
    assert same["second"] == str(wacnn[0]), "the fixture's pairs: gabic[0] is nearest to wacnn[0]"
    assert json.dumps(_jsonable(one["pairs"][0])) == json.dumps(_jsonable(same))


def test_two_architectures_on_one_side_are_refused(pair):
    gabic, wacnn, images = pair
    with pytest.raises(GabicError, match="first: the checkpoints must be one architecture"):
        compare_report([gabic[0], wacnn[0]], wacnn[1:], images, device="cpu", progress=False)


def test_save_and_load_report(report, tmp_path):
    written = save_report(report, tmp_path / "r" / "report.json", tmp_path / "fig" / "sheet", formats=("png",))
    names = sorted(p.name for p in written)
    assert "report.json" in names and "sheet.png" in names
    assert {"sheet.rd.csv", "sheet.tiles.csv", "sheet.attention.csv"} <= set(names)
    text = (tmp_path / "r" / "report.json").read_text()
    assert "NaN" not in text  # NaN (MS-SSIM of small tiles) written as null
    loaded = load_report(tmp_path / "r" / "report.json")
    assert loaded["curves"][0]["results"]["bpp"] == report["curves"][0]["results"]["bpp"]
    tile = loaded["pairs"][0]["images"]["noise.png"]["tiles"][0]
    assert tile["ms_ssim_a"] is None and tile["bits_a"] == report["pairs"][0]["images"]["noise.png"]["tiles"][0]["bits_a"]
    rd = (tmp_path / "fig" / "sheet.rd.csv").read_text().splitlines()
    assert rd[0] == "model,bpp,psnr_db" and len(rd) == 1 + 4


def _old_layout(report: dict) -> dict:
    """``report`` as gabic wrote it before the per-model entries were keyed by role: ``names`` a list
    of the labels, ``residual_correlation``, ``redundancy`` and ``attention`` keyed by label, each
    summary's ``a`` and ``b`` with their name."""
    old = json.loads(json.dumps(report))
    names = [old["names"]["first"], old["names"]["second"]]
    label = dict(zip(("first", "second"), names, strict=True))
    for pair in old["pairs"]:
        for analysis in pair["images"].values():
            for key, name in zip("ab", names, strict=True):
                analysis["summary"][key] = {"name": name} | analysis["summary"][key]
            analysis["residual_correlation"] = {label[r]: v for r, v in analysis["residual_correlation"].items()}
            analysis["redundancy"] = {b: {label[r]: v for r, v in pm.items()} for b, pm in analysis["redundancy"].items()}
            analysis["attention"] = {
                b: {"k": pm["k"]} | {label[r]: pm[r] for r in ("first", "second")} for b, pm in analysis["attention"].items()
            }
    old["names"] = names
    return old


def test_load_report_reads_the_old_layout_keyed_by_label(report, tmp_path):
    """A report file of an older gabic (per-model entries keyed by the labels) is read in the new layout."""
    from gabic.analysis.report import _jsonable

    old = _old_layout(report)
    analysis = old["pairs"][0]["images"]["noise.png"]
    assert set(analysis["residual_correlation"]) == {"GABIC", "WACNN"} and analysis["summary"]["a"]["name"] == "GABIC"
    (tmp_path / "old.json").write_text(json.dumps(_jsonable(old), indent=1))
    loaded = load_report(tmp_path / "old.json")
    assert loaded["names"] == {"first": "GABIC", "second": "WACNN"}
    assert json.dumps(loaded, sort_keys=True) == json.dumps(_jsonable(report), sort_keys=True)
    # and the figure sheet draws it
    written = save_report(loaded, tmp_path / "again.json", tmp_path / "sheet", formats=("png",))
    assert (tmp_path / "sheet.png") in written
    (tmp_path / "bad.json").write_text(json.dumps(old | {"names": ["same", "same"]}))
    with pytest.raises(GabicError, match="bad.json: a report whose names are neither"):
        load_report(tmp_path / "bad.json")


def test_load_report_refuses_other_files(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"name": "jpeg", "results": {}}))
    with pytest.raises(GabicError, match="not a gabic comparison report"):
        load_report(tmp_path / "x.json")
    with pytest.raises(GabicError, match="not a readable report"):
        load_report(tmp_path / "missing.json")


def test_default_pair_prefers_given_then_released_then_notebook01(pair, tmp_path):
    from gabic.notebooks import default_pair  # the orchestration: the notebooks', not the library's

    gabic, wacnn, _ = pair
    assert default_pair(gabic[0], wacnn, released_dir=None) == ([gabic[0]], wacnn, None)
    released = tmp_path / "checkpoints"
    released.mkdir()
    for p in (*gabic, *wacnn):
        (released / p.name).write_bytes(p.read_bytes())
    first, second, images = default_pair(released_dir=released)
    assert [p.name for p in first] == sorted(p.name for p in gabic) and [p.name for p in second] == sorted(p.name for p in wacnn)
    assert images is None
    # only GABIC there and no run beside notebook 01's checkpoint: say what to give
    only = tmp_path / "only"
    only.mkdir()
    (only / gabic[0].name).write_bytes(gabic[0].read_bytes())
    with pytest.raises(GabicError, match="no config.json of its run beside it"):
        default_pair(only / gabic[0].name, released_dir=only)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        default_pair(tmp_path / "nothing.pth.tar", released_dir=None)


def test_gabic_compare_writes_the_report_and_prints_the_pair(pair, tmp_path, capsys):
    from tests.conftest import run_cli

    gabic, wacnn, images = pair
    out = tmp_path / "cmp"
    code, stdout, err = run_cli(capsys, "compare", *gabic, "--against", *wacnn, "--dataset", images, "--out", out, "--device", "cpu")
    assert code == 0, err
    report = load_report(out / "report.json")
    for name, curve in zip(("GABIC", "WACNN"), report["curves"], strict=True):
        r = curve["results"]
        assert f"{name}: " + ", ".join(f"{b:.4f} bpp {p:.2f} dB" for b, p in zip(r["bpp"], r["psnr-rgb"], strict=True)) in stdout
    assert "BD-rate" in stdout and "of the 64-pixel tiles" in stdout
    assert {"report.json", "report.pdf", "report.png", "report.rd.csv", "report.tiles.csv"} <= {p.name for p in out.iterdir()}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tile", "100"], "tile must be a multiple of 64 pixels"),
        (["--tile", "0"], "tile must be a multiple of 64 pixels"),
        (["--device", "tpu"], "tpu"),
    ],
)
def test_gabic_compare_refuses_bad_options_before_coding(pair, tmp_path, capsys, argv, message):
    from tests.conftest import run_cli

    gabic, wacnn, images = pair
    out = tmp_path / "cmp"
    code, _, err = run_cli(capsys, "compare", gabic[0], "--against", wacnn[0], "--dataset", images, "--out", out, *argv)
    assert code != 0 and message in err and "Traceback" not in err
    assert not out.exists(), "nothing written"


def test_gabic_compare_refuses_a_file_as_output_folder(pair, tmp_path, capsys):
    from tests.conftest import run_cli

    gabic, wacnn, images = pair
    out = tmp_path / "report.json"
    out.write_text("{}")
    code, _, err = run_cli(capsys, "compare", gabic[0], "--against", wacnn[0], "--out", out)
    assert code == 1 and "exists and is not a folder" in err and out.read_text() == "{}"


def test_names_are_the_architectures_numbered_when_the_same():
    from gabic.analysis.compare import pair_names

    assert pair_names("gabic", "wacnn") == ("GABIC", "WACNN")
    assert pair_names("wacnn", "gabic") == ("WACNN", "GABIC")
    assert pair_names("wacnn", "wacnn") == ("WACNN (1)", "WACNN (2)")
    assert pair_names("gabic", "wacnn", ["ours", "theirs"]) == ("ours", "theirs")
    for bad in (["same", "same"], ["only"], ["", "x"], [1, 2]):
        with pytest.raises(ValueError, match="names must be two different labels"):
            pair_names("gabic", "wacnn", bad)


def test_one_architecture_on_both_sides_keeps_both_apart(pair):
    _, wacnn, images = pair
    report = compare_report(wacnn[0], wacnn[1], images, device="cpu", progress=False)
    assert report["names"] == {"first": "WACNN (1)", "second": "WACNN (2)"}
    (analysis,) = report["pairs"][0]["images"].values()
    assert all(set(per_model) == {"first", "second"} for per_model in analysis["redundancy"].values())
    assert analysis["attention"] == {}, "no graph block to compare window attention with"
    with pytest.raises(ValueError, match="names must be two different labels"):
        compare_report(wacnn[0], wacnn[1], images, names=("x", "x"), device="cpu", progress=False)


def test_a_model_is_not_compared_with_itself(pair, tmp_path, capsys):
    """The same file, or a copy of it, on both sides is refused before any coding."""
    import shutil

    from tests.conftest import run_cli

    gabic, _, images = pair
    out = tmp_path / "cmp"
    code, _, err = run_cli(capsys, "compare", gabic[0], "--against", gabic[0], "--dataset", images, "--out", out)
    assert code == 1 and f"gabic: error: {gabic[0]}: the same checkpoint on both sides of the comparison" in err
    assert not out.exists()
    copy = tmp_path / "copy.pth.tar"
    shutil.copy(gabic[0], copy)
    with pytest.raises(ValueError, match=r"and .*copy\.pth\.tar \(the same bytes\): the same checkpoint on both sides"):
        compare_report(gabic, [copy], images, device="cpu", progress=False)


def test_checkpoint_labels_tell_the_files_apart(tmp_path):
    from gabic.analysis.compare import checkpoint_labels

    a, b = tmp_path / "runs" / "demo" / "best.pth.tar", tmp_path / "runs" / "demo-wacnn" / "best.pth.tar"
    assert checkpoint_labels(a, b) == ("demo/best.pth.tar", "demo-wacnn/best.pth.tar")
    assert checkpoint_labels(tmp_path / "q1.pth.tar", tmp_path / "cnn_0018.pth.tar") == ("q1.pth.tar", "cnn_0018.pth.tar")
