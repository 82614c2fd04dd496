"""The RD explorer and the quality explorer (gabic.widgets.rd), driven through their controls."""

from __future__ import annotations

import ast
import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ipywidgets")

import ipywidgets  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from gabic import plots  # noqa: E402
from gabic.checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from gabic.codecs import get_codec  # noqa: E402
from gabic.errors import CheckpointError, CodecError, ImageError, ResultsError  # noqa: E402
from gabic.images import load_image  # noqa: E402
from gabic.measurement import measure  # noqa: E402
from gabic.metrics import bpp_from_bytes, psnr  # noqa: E402
from gabic.widgets import rd  # noqa: E402
from gabic.widgets._base import MAX_WIDTH_PX, SMALLEST_TEXT_KEY, figure_png, png_size, png_text, show_png, with_text  # noqa: E402
from gabic.widgets.rd import quality_explorer, rd_explorer  # noqa: E402
from gabic_jupyter import model_references  # noqa: E402
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
    ex = quality_explorer(photo, codecs={"jpeg": [20, 60], "webp": [30]})
    assert ex.codec.options == (("JPEG", "jpeg"), ("WebP", "webp")), "display names shown, codec names as values"
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
        assert f"JPEG, quality {q}: {bpp:.3f} bpp, {db:.2f} dB" in ex.titles.value
    assert bytes(ex.image.value) != first, "the image follows the slider"

    ex.quality.value = 20
    assert bytes(ex.image.value) == first and set(ex.coded) == {("jpeg", 20), ("jpeg", 60)}, "coded once per quality, then cached"

    ex.codec.value = "webp"
    assert [v for _, v in ex.quality.options] == [30] and ("webp", 30) in ex.coded
    ex.details.value = True  # error map and crops
    assert bytes(ex.image.value).startswith(PNG) and bytes(ex.detail_image.value).startswith(PNG)


def test_quality_explorer_checkpoints(photo, tmp_path):
    paths = [tmp_path / "low.pth.tar", tmp_path / "high.pth.tar"]
    for seed, path in enumerate(paths):
        save_checkpoint(small_model("gabic", seed=seed), path, lmbda=0.01 * (seed + 1))
    meta = {"checkpoint": [str(p) for p in paths]}
    result = {"name": "GABIC small", "results": {"bpp": [0.1, 0.2], "psnr-rgb": [20.0, 21.0]}, "meta": meta}
    ex = quality_explorer(photo, codecs=[], checkpoints=[result], device="cpu")
    assert ex.codec.options == (("GABIC small", "GABIC small"),)
    assert [label for label, _ in ex.quality.options] == ["low", "high"], "the file names, without .pth.tar"
    assert ex.quality.description == "checkpoint" and ex.quality.layout.display is None

    expected = measure(load_checkpoint(paths[0], device="cpu"), photo)
    assert ex.current.bpp == expected.bpp, "bpp of the y and z strings, as the RD curves"
    assert ex.current.psnr_rgb == expected.psnr_rgb
    assert ex.current.bpp_file > ex.current.bpp
    first = bytes(ex.image.value)
    ex.quality.value = paths[1]
    assert bytes(ex.image.value) != first and ex.current.psnr_rgb != pytest.approx(expected.psnr_rgb)

    plain = quality_explorer(photo, codecs=["jpeg"], checkpoints=[paths[0]], device="cpu", dpi=40)  # dpi: accepted, not used
    assert plain.codec.options == (("JPEG", "jpeg"), ("checkpoints", "checkpoints"))
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
    ex = quality_explorer(photo, crop=32)
    available = tuple(c for c in ("jpeg", "webp", "avif", "heif", "jpeg2000", "jpegxl", "bpg") if get_codec(c).available)
    assert tuple(value for _, value in ex.codec.options) == available
    assert ex.original.size == (32, 32)
    assert [v for _, v in ex.quality.options] == list(get_codec(available[0]).default_qualities)
    assert not math.isnan(ex.current.psnr_rgb)


# --- pictures at their own size, short names, the list, the anchor, saved notebooks ---------------


def decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGB"))


def assert_own_size(image) -> tuple[int, int]:
    """The Image's layout is its PNG's own size in px (no 100 %: the browser neither stretches nor squeezes it)."""
    width, height = png_size(bytes(image.value))
    assert (image.layout.width, image.layout.height) == (f"{width}px", f"{height}px")
    assert image.layout.display is None
    return width, height


def test_show_png_sets_the_layout_to_the_png_size():
    image = ipywidgets.Image(format="png")
    buf = io.BytesIO()
    Image.new("RGB", (37, 21)).save(buf, format="png")
    assert show_png(image, buf.getvalue()) == (37, 21)
    assert (image.layout.width, image.layout.height, image.layout.object_fit) == ("37px", "21px", "contain")
    show_png(image, buf.getvalue(), pixels=True)
    assert image.layout.object_fit == "none", "a photo is cut, never resampled, where the output is narrower"
    assert show_png(image, b"") == (0, 0) and image.layout.display == "none" and bytes(image.value) == b""
    with pytest.raises(ValueError, match="not PNG"):
        show_png(image, b"GIF89a" + bytes(30))


def test_figure_png_writes_its_smallest_text_in_a_png_text_chunk():
    fig = Figure(figsize=(4, 3))
    ax = fig.add_subplot()
    ax.set_title("title", fontsize=9)
    ax.tick_params(labelsize=7)  # tick labels exist once the figure is drawn: they are counted
    png = figure_png(fig, 100)
    assert png_text(png)[SMALLEST_TEXT_KEY] == f"{7 * 100 / 72:.2f}" == "9.72"
    opened = Image.open(io.BytesIO(png))
    opened.load()  # Pillow checks the chunk's CRC
    assert opened.text[SMALLEST_TEXT_KEY] == "9.72" and opened.size == (400, 300)
    narrow = figure_png(fig, 100, max_width=200)  # the resolution lowered to fit: the text's pixels with it
    assert png_size(narrow) == (200, 150) and png_text(narrow)[SMALLEST_TEXT_KEY] == f"{7 * 50 / 72:.2f}"
    assert SMALLEST_TEXT_KEY not in png_text(figure_png(Figure(figsize=(2, 1)), 100)), "no text, no size"
    assert png_text(with_text(png, "Comment", "é")) == {"Comment": "é", **png_text(png)}
    with pytest.raises(ValueError, match="keyword"):
        with_text(png, "", "x")
    with pytest.raises(ValueError, match="not PNG"):
        png_text(b"GIF89a" + bytes(30))
    with pytest.raises(ValueError, match="runs past the end"):
        png_text(png[:60])  # inside the text chunk
    with pytest.raises(ValueError, match="before its image data"):
        png_text(png[:33])  # after the header


def test_rd_explorer_figure_is_shown_at_its_size_with_legible_type(curves):
    ex = rd_explorer(curves)  # the defaults: the double-column figure at DISPLAY_DPI
    width, height = assert_own_size(ex.image)
    assert width == int(plots.COLUMN_WIDTHS["double"] * rd.DISPLAY_DPI) <= MAX_WIDTH_PX  # 787 px
    assert height < 800
    assert rd.DISPLAY_DPI * plots.NOTE_FONT_SIZE / 72 >= 9, "the smallest type (the notes) at least 9 px on screen"
    assert decoded(ex.image.value).shape[:2] == (height, width)
    ex.methods.value = ()
    assert ex.image.layout.display == "none"
    ex.methods.value = ("Anchor",)
    assert_own_size(ex.image)
    wide = rd_explorer(curves, width=12.0, dpi=110)  # wider than the output: the resolution is lowered, not the type cut
    assert png_size(bytes(wide.image.value))[0] <= MAX_WIDTH_PX


def test_rd_explorer_lists_every_curve_with_all_and_none_buttons():
    many = [curve(f"ours {i}", [0.2, 0.4, 0.6, 0.8], [28 + i, 31 + i, 33 + i, 34 + i]) for i in range(11)]
    ex = rd_explorer(many, width="single", dpi=40)
    assert ex.methods.rows == 11, "every curve shown, no scrollbar"
    ex.select_none.click()
    assert ex.methods.value == () and ex.bd is None and "no curve selected" in ex.status.value
    ex.select_all.click()
    assert ex.methods.value == tuple(c["name"] for c in many) and ex.image.layout.display is None
    more = [curve(f"ours {i}", [0.2, 0.4, 0.6, 0.8], [28 + i, 31 + i, 33 + i, 34 + i]) for i in range(30)]
    assert rd_explorer(more, width="single", dpi=30).methods.rows == rd.MAX_LIST_ROWS


def test_rd_explorer_default_anchor_is_measured_where_the_measured_curves_were(monkeypatch):
    """The sample photos measured beside published Kodak curves: the anchor is one measured on the photos, so the
    measured rows have values; the caption says why the published rows are n/a."""
    photos = [
        {**curve(name, [0.2, 0.4, 0.6, 0.8, 1.0], [28 + i, 31 + i, 33 + i, 34.5 + i, 35.5 + i]), "meta": {"dataset": "gabic samples"}}
        for i, name in enumerate(["jpeg", "webp", "heif"])
    ]
    ex = rd_explorer([*photos, "bpg444", "vtm"], width="single", dpi=40)
    assert ex.anchor.value == "HEIF"
    assert ex.bd.loc[["JPEG", "WebP"], "BD-rate (%)"].notna().all()
    assert "BD against HEIF" in ex.table.value and "2 curves measured on other images than the anchor" in ex.table.value
    drawn = []
    original = plots.rd_figure
    monkeypatch.setattr(plots, "rd_figure", lambda *a, **k: drawn.append(1) or original(*a, **k))
    ex.anchor.value = "JPEG"
    ex.bd_method.value = "pchip"
    assert drawn == [] and ex.bd.attrs["anchor"] == "JPEG", "the anchor and the fit change the table, not the figure"
    ex.metric.value = "psnr-rgb"  # unchanged: nothing to do
    ex.full_range.value = True
    ex.full_range.value = False  # drawn before: from the cache
    assert len(drawn) == 1


def gabic_result(paths, lambdas, name="GABIC (N=32, M=40, num_slices=4)") -> dict:
    meta = {"checkpoint": [str(p) for p in paths], "lambda": lambdas, "kind": "measured"}
    results = {"bpp": [0.1 * (i + 1) for i in range(len(paths))], "psnr-rgb": [20.0] * len(paths)}
    return {"name": name, "results": results, "meta": meta}


def test_quality_explorer_names_are_short_and_one_checkpoint_hides_the_slider(photo, tmp_path):
    run = tmp_path / "runs" / "notebook01"
    run.mkdir(parents=True)
    save_checkpoint(small_model("gabic"), run / "best.pth.tar", lmbda=0.013)
    ex = quality_explorer(photo, codecs=["jpeg"], checkpoints=[gabic_result([run / "best.pth.tar"], [0.013])], device="cpu")
    labels = [label for label, _ in ex.codec.options]
    assert labels == ["JPEG", "GABIC"], "the architecture, not its configuration"
    assert max(map(len, labels)) * 8 + 64 <= int(ex.codec.layout.width.removesuffix("px")), "the dropdown fits its labels"
    ex.codec.value = "GABIC (N=32, M=40, num_slices=4)"
    assert ex.quality.layout.display == "none" and ex.quality.disabled, "one checkpoint: no slider"
    assert "GABIC · notebook01/best, λ=0.013: " in ex.titles.value, "the run and its lambda say which checkpoint"
    assert "GABIC · notebook01/best, λ=0.013" in ex.info.value
    controls = ex.children[0]
    assert controls.layout.flex_flow == "row wrap", "controls wrap rather than overlap"
    assert ex.details.layout.min_width and ex.quality.layout.min_width, "the readout and the checkbox keep their room"
    # several checkpoints: their lambdas on the slider
    other = tmp_path / "runs" / "lambda0.0067"
    other.mkdir()
    save_checkpoint(small_model("gabic", seed=1), other / "best.pth.tar", lmbda=0.0067)
    two = quality_explorer(
        photo, codecs=[], checkpoints=[gabic_result([other / "best.pth.tar", run / "best.pth.tar"], [0.0067, 0.013])], device="cpu"
    )
    assert [label for label, _ in two.quality.options] == ["λ=0.0067", "λ=0.013"] and two.quality.layout.display is None
    # two configurations of one architecture: their full names tell them apart
    both = quality_explorer(
        photo,
        codecs=[],
        checkpoints=[gabic_result([run / "best.pth.tar"], [0.013]), gabic_result([other / "best.pth.tar"], [0.0067], "GABIC (N=64)")],
        device="cpu",
    )
    assert [label for label, _ in both.codec.options] == ["GABIC (N=32, M=40, num_slices=4)", "GABIC (N=64)"]


def test_quality_explorer_shows_the_pixels_one_to_one():
    from gabic.data import samples

    original = load_image(samples()[0])[0]  # 512x512: larger than a panel
    ex = quality_explorer(original, codecs={"jpeg": [20]})
    side, gap = rd.PANEL_PX, rd.PANEL_GAP
    assert 2 * side + gap <= MAX_WIDTH_PX
    left, top = (512 - side) // 2, (512 - side) // 2
    assert ex.box == (left, top, left + side, top + side)
    width, height = assert_own_size(ex.image)
    assert (width, height) == (2 * side + gap, side) and ex.image.layout.object_fit == "none"
    shown = decoded(ex.image.value)
    crop = (slice(top, top + side), slice(left, left + side))
    assert np.array_equal(shown[:, :side], np.asarray(original)[crop]), "the original, pixel for pixel"
    assert np.array_equal(shown[:, side + gap :], np.asarray(ex.current.decoded)[crop]), "the decoded image, pixel for pixel"
    assert f"the centre {side}x{side} of 512x512, 1:1" in ex.titles.value
    assert ex.detail_image.layout.display == "none"

    ex.details.value = True
    width, height = assert_own_size(ex.detail_image)
    size = rd.DETAIL_CROP * rd.DETAIL_ZOOM
    assert (width, height) == (3 * size + 2 * gap, size) <= (MAX_WIDTH_PX, MAX_WIDTH_PX)
    zoomed = decoded(ex.detail_image.value)
    first = zoomed[:, :size]
    assert np.array_equal(first[:: rd.DETAIL_ZOOM, :: rd.DETAIL_ZOOM].repeat(rd.DETAIL_ZOOM, 0).repeat(rd.DETAIL_ZOOM, 1), first), (
        "an integer zoom: each pixel a 3x3 square"
    )
    outlined = decoded(ex.image.value)
    assert (outlined == rd.OUTLINE).all(axis=2).any(), "the square outlined on the panels"
    ex.details.value = False
    assert np.array_equal(decoded(ex.image.value), shown) and ex.detail_image.layout.display == "none"


def test_comparison_and_rd_explorers_share_the_helper():
    import inspect

    from gabic.widgets import compare

    for module in (rd, compare):
        source = inspect.getsource(module)
        assert "show_png(" in source and ".value = _png(" not in source and "image.value =" not in source, module.__name__


# --- the notebooks as committed, and the widget state JupyterLab saves ----------------------------

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.mark.parametrize("name", ["01_train_small.ipynb", "03_rd_curves.ipynb"])
def test_notebooks_are_committed_without_widget_outputs_or_state(name):
    nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert [o for o in outputs if WIDGET_VIEW in o.get("data", {})] == [], "no widget views to be 'model not found' on reopening"
    assert outputs == []
    state = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    assert state == {}, "no saved widget models"
    if name == "03_rd_curves.ipynb":
        assert "Save Widget State Automatically" in "".join(nb["cells"][0]["source"]), "the first cell says what to tick"
    training = [c for c in nb["cells"] if c["cell_type"] == "code" and "= fit(" in "".join(c["source"])]
    assert len(training) == (name == "01_train_small.ipynb")
    for cell in training:  # its last statement is not an expression: nothing (a list of paths) shown under the live plot
        source = "\n".join(line for line in "".join(cell["source"]).splitlines() if not line.startswith("%"))
        assert not isinstance(ast.parse(source).body[-1], ast.Expr) or source.rstrip().endswith(";"), cell["source"]


def test_saved_widget_state_restores_every_view(curves, photo):
    """What JupyterLab writes into a notebook with "Save Widget State Automatically" (every live model's state, as
    ipywidgets gives it) holds each model an explorer's view needs, pictures included: reopened, it shows no
    "model not found"."""
    for app in (rd_explorer(curves, width="single", dpi=40), quality_explorer(photo, codecs={"jpeg": [20]})):
        view = app._repr_mimebundle_()[WIDGET_VIEW]
        state = ipywidgets.Widget.get_manager_state(drop_defaults=True)["state"]
        json.dumps(state)  # buffers base64-encoded: it goes into the .ipynb as it is
        wanted, seen = [view["model_id"]], set()
        while wanted:
            model = wanted.pop()
            if model in seen:
                continue
            seen.add(model)
            assert model in state, f"{type(app).__name__}: model {model} not in the saved state"
            wanted += model_references(state[model]["state"])
        assert app.image.model_id in seen and state[app.image.model_id].get("buffers"), "the PNG is saved with the state"
