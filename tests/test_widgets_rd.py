"""The RD explorer and the quality explorer (gabic.widgets.rd), driven through their controls."""

from __future__ import annotations

import math

import pandas as pd
import pytest

pytest.importorskip("ipywidgets")

from gabic import plots  # noqa: E402
from gabic.checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from gabic.codecs import get_codec  # noqa: E402
from gabic.errors import CheckpointError, CodecError, ImageError, ResultsError  # noqa: E402
from gabic.images import load_image  # noqa: E402
from gabic.measurement import measure  # noqa: E402
from gabic.metrics import bpp_from_bytes, psnr  # noqa: E402
from gabic.widgets.rd import quality_explorer, rd_explorer  # noqa: E402
from tests.conftest import small_model  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def curve(name: str, bpp, psnr_values, ms_ssim=None) -> dict:
    results = {"bpp": list(bpp), "psnr-rgb": list(psnr_values)}
    if ms_ssim is not None:
        results["ms-ssim-rgb"] = list(ms_ssim)
    return {"name": name, "results": results, "meta": {"kind": "measured", "dataset": "kodak"}}


@pytest.fixture
def curves() -> list[dict]:
    """Three hand-made curves of five points; the third has no MS-SSIM."""
    return [
        curve("Anchor", [0.2, 0.4, 0.6, 0.8, 1.0], [28.0, 31.0, 33.0, 34.5, 35.5], [0.90, 0.94, 0.96, 0.97, 0.98]),
        curve("Better", [0.2, 0.4, 0.6, 0.8, 1.0], [29.0, 32.2, 34.1, 35.4, 36.3], [0.92, 0.95, 0.97, 0.98, 0.985]),
        curve("PsnrOnly", [0.25, 0.45, 0.65, 0.85, 1.05], [27.0, 30.0, 32.2, 33.8, 35.0]),
    ]


@pytest.fixture(scope="module")
def photo():
    """A small RGB crop of a sample photo (fast to code)."""
    from gabic.data import samples

    return load_image(samples()[0])[0].crop((200, 200, 264, 248))


# --- RD explorer ---------------------------------------------------------------------------------


def test_rd_explorer_figure_follows_metric_and_selection(curves):
    ex = rd_explorer(curves, width="single", dpi=60)
    assert [v for _, v in ex.metric.options] == ["psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb"]
    assert ex.methods.value == ("Anchor", "Better", "PsnrOnly"), "every curve selected at first"
    assert ex.anchor.value == "Anchor" and ex.status.value == ""
    psnr_png = bytes(ex.image.value)
    assert psnr_png.startswith(PNG)

    ex.metric.value = "ms-ssim-db-rgb"
    assert bytes(ex.image.value).startswith(PNG) and bytes(ex.image.value) != psnr_png
    assert ex.anchor.options == ("Anchor", "Better"), "only curves with the metric can be anchors"
    assert "left out" in ex.status.value and "PsnrOnly" in ex.status.value

    ex.metric.value = "psnr-rgb"
    assert bytes(ex.image.value) == psnr_png, "the figure is a function of the controls"
    ex.methods.value = ("Anchor", "Better")
    assert bytes(ex.image.value).startswith(PNG) and bytes(ex.image.value) != psnr_png
    assert "PsnrOnly" not in ex.table.value

    ex.methods.value = ()
    assert bytes(ex.image.value) == b"" and "no curve selected" in ex.status.value and ex.bd is None


def test_rd_explorer_bd_table_names_anchor_and_equals_bd_table(curves):
    ex = rd_explorer(curves, anchor="Better", width="single", dpi=60)
    assert ex.anchor.value == "Better"
    expected = plots.bd_table(curves, "Better")
    pd.testing.assert_frame_equal(ex.bd, expected)
    assert "BD against Better" in ex.table.value
    for column in ("BD-rate (%)", "BD-PSNR (dB)"):
        for label, value in expected[column].items():
            text = "0.00" if value == 0 else f"{value:+.2f}"
            assert text in ex.table.value, (label, column, text)
    assert expected.loc["Anchor", "BD-rate (%)"] > 5, "a worse curve costs bits"  # sanity of the hand-made curves

    ex.anchor.value = "Anchor"
    pd.testing.assert_frame_equal(ex.bd, plots.bd_table(curves, "Anchor"))
    assert "BD against Anchor" in ex.table.value

    ex.bd_method.value = "pchip"
    pd.testing.assert_frame_equal(ex.bd, plots.bd_table(curves, "Anchor", method="pchip"))

    ex.methods.value = ("Better",)  # the anchor stays in the table, first
    assert list(ex.bd.index) == ["Anchor", "Better"]
    full = plots.bd_table(curves, "Anchor", method="pchip")
    assert ex.bd.loc["Better", "BD-rate (%)"] == pytest.approx(full.loc["Better", "BD-rate (%)"])


def test_rd_explorer_published_anchor_by_name():
    ex = rd_explorer(["jpeg", "vtm"], anchor="bpg444", width="single", dpi=50)
    assert ex.anchor.value == "BPG 4:4:4 (x265) (published)"
    assert "BPG 4:4:4 (x265) (published)" in ex.methods.options, "an anchor not among the curves is added"
    assert "BD against BPG 4:4:4 (x265) (published)" in ex.table.value


def test_rd_explorer_export_writes_pdf_svg_png(curves, tmp_path):
    ex = rd_explorer(curves, width="single", dpi=50)
    ex.export_stem.value = str(tmp_path / "figures" / "rd")
    ex.export_button.click()
    written = sorted(p.name for p in (tmp_path / "figures").iterdir())
    figures = [f"rd_{w}.{f}" for w in ("single", "double") for f in ("pdf", "svg", "png", "csv")]  # csv: the plotted points
    assert written == sorted([*figures, "rd_bd.md"])
    folder = tmp_path / "figures"
    assert (folder / "rd_single.pdf").read_bytes().startswith(b"%PDF")
    assert (folder / "rd_double.png").read_bytes().startswith(PNG)
    assert b"<svg" in (folder / "rd_single.svg").read_bytes()
    assert (folder / "rd_bd.md").read_text().startswith("| curve")
    assert "wrote 9 files" in ex.status.value
    points = pd.read_csv(folder / "rd_single.csv", float_precision="round_trip")
    for c in curves:
        rows = points[points["curve"] == c["name"]].sort_values("point")
        assert rows["bpp"].tolist() == c["results"]["bpp"] and rows["psnr_db"].tolist() == c["results"]["psnr-rgb"]

    ex.export_stem.value = "  "
    ex.export_button.click()
    assert "export failed" in ex.status.value and "stem" in ex.status.value


def test_rd_explorer_full_range_checkbox(monkeypatch, tmp_path):
    """The checkbox widens the bpp axis from the learned codecs to every point, on screen and in the export."""
    learned = curve("gabic", [0.1, 0.3, 0.6, 0.9], [28.0, 31.0, 33.5, 35.0])
    classical = curve("bpg", [0.1, 0.5, 1.5, 4.7], [27.0, 32.0, 37.0, 47.0])
    seen = []
    original = plots.rd_figure

    def spy(*args, **kwargs):
        fig = original(*args, **kwargs)
        seen.append((kwargs.get("xlim"), fig.axes[0].get_xlim()[1]))
        return fig

    monkeypatch.setattr(plots, "rd_figure", spy)
    ex = rd_explorer([learned, classical], width="single", dpi=40)
    fitted = bytes(ex.image.value)
    assert seen[-1][0] is None and seen[-1][1] < 1.0
    ex.full_range.value = True
    assert seen[-1][0] == "full" and seen[-1][1] >= 4.7 and bytes(ex.image.value) != fitted
    ex.export(tmp_path / "rd")
    assert [x for x, _ in seen[-2:]] == ["full", "full"], "the export draws what is shown"
    ex.full_range.value = False
    assert bytes(ex.image.value) == fitted


def test_rd_explorer_bad_input(curves):
    with pytest.raises(ValueError, match="no curves"):
        rd_explorer([])
    with pytest.raises(ResultsError, match="'psnr-y'"):
        rd_explorer(curves, metric="psnr-y")
    with pytest.raises(ResultsError, match="'Nobody'"):
        rd_explorer(curves, anchor="Nobody")
    with pytest.raises(ResultsError, match="'PsnrOnly' has no metric 'ms-ssim-rgb'"):
        rd_explorer(curves, metric="ms-ssim-rgb", anchor="PsnrOnly")


# --- quality explorer ----------------------------------------------------------------------------


def test_quality_explorer_jpeg_matches_an_independent_computation(photo):
    ex = quality_explorer(photo, codecs={"jpeg": [20, 60], "webp": [30]}, dpi=40)
    assert ex.codec.options == ("jpeg", "webp")
    assert [v for _, v in ex.quality.options] == [20, 60] and ex.quality.value == 20
    first = bytes(ex.image.value)
    assert first.startswith(PNG)

    jpeg = get_codec("jpeg")
    for q in (20, 60):
        ex.quality.value = q
        data = jpeg.encode(photo, q)
        bpp, db = bpp_from_bytes(len(data), photo.height, photo.width), psnr(photo, jpeg.decode(data))
        assert ex.current.bpp == bpp and ex.current.file_bytes == len(data)
        assert ex.current.psnr_rgb == pytest.approx(db, abs=1e-12)
        assert f"{bpp:.4f} bpp" in ex.info.value and f"PSNR {db:.2f} dB" in ex.info.value and f"quality {q}" in ex.info.value
    assert bytes(ex.image.value) != first, "the image follows the slider"

    ex.quality.value = 20
    assert bytes(ex.image.value) == first and set(ex.coded) == {("jpeg", 20), ("jpeg", 60)}, "coded once per quality, then cached"

    ex.codec.value = "webp"
    assert [v for _, v in ex.quality.options] == [30] and ("webp", 30) in ex.coded
    ex.details.value = True  # error map and crops
    assert bytes(ex.image.value).startswith(PNG)


def test_quality_explorer_checkpoints(photo, tmp_path):
    paths = [tmp_path / "low.pth.tar", tmp_path / "high.pth.tar"]
    for seed, path in enumerate(paths):
        save_checkpoint(small_model("gabic", seed=seed), path, lmbda=0.01 * (seed + 1))
    meta = {"checkpoint": [str(p) for p in paths]}
    result = {"name": "GABIC small", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [20.0, 21.0]}, "meta": meta}
    ex = quality_explorer(photo, codecs=[], checkpoints=[result], device="cpu", dpi=40)
    assert ex.codec.options == ("GABIC small",)
    assert [label for label, _ in ex.quality.options] == ["low.pth.tar", "high.pth.tar"]
    assert ex.quality.description == "checkpoint"

    expected = measure(load_checkpoint(paths[0], device="cpu"), photo)
    assert ex.current.bpp == expected.bpp, "bpp of the y and z strings, as the RD curves"
    assert ex.current.psnr_rgb == expected.psnr_rgb
    assert ex.current.bpp_file > ex.current.bpp
    first = bytes(ex.image.value)
    ex.quality.value = paths[1]
    assert bytes(ex.image.value) != first and ex.current.psnr_rgb != pytest.approx(expected.psnr_rgb)

    plain = quality_explorer(photo, codecs=["jpeg"], checkpoints=[paths[0]], device="cpu", dpi=40)
    assert plain.codec.options == ("jpeg", "checkpoints")
    plain.codec.value = "checkpoints"
    assert plain.current.psnr_rgb == expected.psnr_rgb


def test_quality_explorer_bad_input(photo, tmp_path):
    with pytest.raises(CodecError, match="'nope'"):
        quality_explorer(photo, codecs=["nope"])
    with pytest.raises(CodecError, match="jpeg.*500"):
        quality_explorer(photo, codecs={"jpeg": [500]})
    missing = tmp_path / "missing.pth.tar"
    with pytest.raises(CheckpointError, match="missing.pth.tar"):
        quality_explorer(photo, codecs=[], checkpoints=[missing])
    with pytest.raises(ValueError, match="no codecs or checkpoints"):
        quality_explorer(photo, codecs=[])
    with pytest.raises(ImageError, match="nothing.png"):
        quality_explorer(tmp_path / "nothing.png", codecs=["jpeg"])
    with pytest.raises(ValueError, match="not a result of evaluate_checkpoints"):
        quality_explorer(photo, codecs=[], checkpoints=[{"name": "x", "results": {}}])
    if not get_codec("bpg").available:
        with pytest.raises(CodecError, match="'bpg' is not available"):
            quality_explorer(photo, codecs=["bpg"])


def test_quality_explorer_crop_and_defaults(photo):
    ex = quality_explorer(photo, crop=32, dpi=30)
    available = tuple(c for c in ("jpeg", "webp", "avif", "heif", "jpeg2000", "jpegxl", "bpg") if get_codec(c).available)
    assert ex.codec.options == available
    assert ex.original.size == (32, 32)
    assert [v for _, v in ex.quality.options] == list(get_codec(available[0]).default_qualities)
    assert not math.isnan(ex.current.psnr_rgb)
