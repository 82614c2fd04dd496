"""RD figures and BD tables (gabic.plots): styles, figure sizes and data, files, hover text, BD values."""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gabic import plots, results  # noqa: E402
from gabic.errors import ResultsError  # noqa: E402
from gabic.metrics import bd_psnr, bd_rate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

#: A hand-made anchor: five RD points on a plausible concave curve.
ANCHOR_BPP = [0.2, 0.4, 0.6, 0.8, 1.0]
ANCHOR_PSNR = [28.0, 31.0, 33.0, 34.5, 35.5]


def curve(name: str, bpp, psnr, kind: str = "measured", **meta) -> dict:
    return {"name": name, "results": {"bpp": list(bpp), "psnr-rgb": list(psnr)}, "meta": {"kind": kind, **meta}}


def lines_by_label(fig: Figure) -> dict:
    return {line.get_label(): line for line in fig.axes[0].get_lines()}


def notes(fig: Figure) -> list[str]:
    """The notes rd_figure wrote on the figure, unwrapped, one per line of meaning."""
    texts = [t.get_text() for t in fig.axes[0].texts if t.get_gid() == plots.NOTE_GID]
    return [line for text in texts for line in text.replace("\n  ", " ").split("\n")]


# --- styles -----------------------------------------------------------------------------------


def test_same_method_same_style_across_figures_and_sources():
    measured = curve("stf", [0.2, 0.5, 0.9], [30, 34, 37])
    fig1 = plots.rd_figure(["stf_mse", "jpeg"])
    fig2 = plots.rd_figure([measured, "gabic_icip2024_digitized", "stf_mse"])
    a, b, m = lines_by_label(fig1)["STF (mse) (published)"], lines_by_label(fig2)["STF (mse) (published)"], lines_by_label(fig2)["STF"]
    for line in (b, m):
        assert (line.get_color(), line.get_marker()) == (a.get_color(), a.get_marker())
    assert m.get_linestyle() == "-" and a.get_linestyle() == "--"  # same method, measured vs published
    assert plots.method_style("STF (mse)")["color"] == plots.method_style(measured)["color"] == plots.method_style("stf")["color"]


@pytest.mark.parametrize(
    "name, method",
    [
        ("GABIC (N=192, M=320, k=9)", "gabic"),
        ("gabic", "gabic"),
        ("GABIC, digitised from the GABIC paper figure, not published numbers", "gabic"),
        ("wacnn", "wacnn"),
        ("WACNN (mse)", "wacnn"),
        ("Zou2022 (WACNN as plotted by GABIC), digitised from the GABIC paper figure", "wacnn"),
        ("VTM (as plotted by GABIC), digitised from the GABIC paper figure", "vtm"),
        ("JPEG", "jpeg"),
        ("JPEG2000", "jpeg2000"),
        ("jpeg2000", "jpeg2000"),
        ("jpegxl", "jpegxl"),
        ("BPG 4:4:4 (x265)", "bpg"),
        ("heif", "heif"),
        ("HM", "hm"),
        ("CompressAI mbt2018-mean (mse, cpu)", "mbt2018-mean"),
        ("mbt2018 (paper)", "mbt2018"),
        ("CompressAI cheng2020-attn (ms-ssim, cuda)", "cheng2020-attn"),
        ("elic2022 (paper, mse)", "elic"),
    ],
)
def test_known_methods_matched_on_the_name(name, method):
    assert plots.method_style(name)["method"] == method


def test_known_styles_distinct_and_every_published_curve_styled():
    pairs = [(color, marker) for _, _, color, marker in plots.METHOD_STYLES]
    assert len(set(pairs)) == len(pairs)
    assert all(color in plots.PALETTE and marker in plots.MARKERS for color, marker in pairs)
    for name in results.list_published():
        style = plots.method_style(results.load(name))
        assert style["color"] in plots.PALETTE and style["marker"] in plots.MARKERS
        assert style["kind"] in ("published", "digitized")


@pytest.mark.slow  # a fresh interpreter imports torch (5-10 s)
def test_unknown_method_style_is_fixed_across_interpreters():
    name = "My lab codec v2 (q=3)"
    here = plots.method_style(name)
    upper = plots.method_style(name.upper())  # case-insensitive
    assert (upper["method"], upper["color"], upper["marker"]) == (here["method"], here["color"], here["marker"])
    assert (here["color"], here["marker"]) not in {(c, m) for _, _, c, m in plots.METHOD_STYLES}
    code = f"import json; from gabic.plots import method_style; print(json.dumps(method_style({name!r})))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == here
    # pinned, so a change of palette or hashing shows up here and not in someone's figures
    assert (here["color"], here["marker"]) == ("#882255", "o")


def test_published_dashed_digitised_dotted_hollow_and_labelled():
    fig = plots.rd_figure(["jpeg", "gabic_icip2024_digitized", curve("gabic", [0.3, 0.5, 0.8], [32, 34.5, 37])])
    lines = lines_by_label(fig)
    assert set(lines) == {"JPEG (published)", "GABIC (digitised from figure)", "GABIC"}
    published, digitised, measured = lines["JPEG (published)"], lines["GABIC (digitised from figure)"], lines["GABIC"]
    assert published.get_linestyle() == "--" and digitised.get_linestyle() == ":" and measured.get_linestyle() == "-"
    # measured: filled markers, full width, opaque; published and digitised: hollow, thinner, lighter
    assert measured.get_markerfacecolor() == measured.get_color() and measured.get_alpha() == 1.0
    for line in (published, digitised):
        assert line.get_markerfacecolor() == "white" and line.get_markeredgecolor() == line.get_color()
        assert line.get_linewidth() < measured.get_linewidth() and line.get_alpha() < 1.0
    assert (digitised.get_color(), digitised.get_marker()) == (measured.get_color(), measured.get_marker())
    legend = (
        [t.get_text() for t in fig.legends[0].get_texts()]
        if fig.legends
        else [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    )
    assert "GABIC (digitised from figure)" in legend and "JPEG (published)" in legend


@pytest.mark.parametrize(
    "name, shown",
    [
        ("jpeg", "JPEG"),
        ("bpg", "BPG"),
        ("webp", "WebP"),
        ("avif", "AVIF"),
        ("heif", "HEIF"),
        ("jpegxl", "JPEG XL"),
        ("jxl", "JPEG XL"),
        ("jpeg2000", "JPEG 2000"),
        ("vtm", "VTM"),
        ("gabic", "GABIC"),
        ("wacnn", "WACNN"),
        ("stf", "STF"),
        ("gabic (ours, λ=0.013)", "GABIC (ours, λ=0.013)"),
        ("webp (4 sample photos)", "WebP (4 sample photos)"),
        ("gabic-n32-m40-num-slices4", "GABIC-n32-m40-num-slices4"),
        ("BPG 4:4:4 (x265)", "BPG 4:4:4 (x265)"),
        ("Zou2022 (WACNN as plotted by GABIC)", "Zou2022 (WACNN as plotted by GABIC)"),
        ("CompressAI mbt2018 (mse, cpu)", "CompressAI mbt2018 (mse, cpu)"),
        ("jpegger", "jpegger"),
        ("stfx (ours)", "stfx (ours)"),
    ],
)
def test_display_names(name, shown):
    assert plots.display_name(name) == shown
    assert plots.method_style(name)["label"] == shown
    assert plots.method_style({"name": name, "results": {}, "meta": {"kind": "published"}})["label"] == f"{shown} (published)"


def test_display_names_shared_by_figure_bd_table_and_plotly():
    measured = [
        curve("jpeg", ANCHOR_BPP, ANCHOR_PSNR),
        curve("webp", ANCHOR_BPP, [p + 0.5 for p in ANCHOR_PSNR]),
        curve("gabic", ANCHOR_BPP, [p + 2 for p in ANCHOR_PSNR]),
    ]
    assert list(lines_by_label(plots.rd_figure(measured))) == ["JPEG", "WebP", "GABIC"]
    assert list(plots.bd_table(measured, anchor="jpeg").index) == ["JPEG", "WebP", "GABIC"]
    assert [c.label for c in plots.load_curves(measured)] == ["JPEG", "WebP", "GABIC"]
    pytest.importorskip("plotly")
    assert [trace.name for trace in plots.rd_plotly(measured).data] == ["JPEG", "WebP", "GABIC"]


def test_measured_and_published_of_one_codec_told_apart_by_marker_fill():
    fig = plots.rd_figure([curve("jpeg", [0.3, 0.6, 1.0], [28, 31, 33]), "jpeg"])
    lines = lines_by_label(fig)
    measured, published = lines["JPEG"], lines["JPEG (published)"]
    assert (measured.get_color(), measured.get_marker()) == (published.get_color(), published.get_marker())
    assert measured.get_markerfacecolor() == measured.get_color() and published.get_markerfacecolor() == "white"
    assert published.get_linewidth() < measured.get_linewidth() and published.get_alpha() < measured.get_alpha()
    assert plots.method_style("jpeg")["learned"] is False and plots.method_style("My lab codec")["learned"] is True


def learned_and_classical() -> list[dict]:
    """A measured learned curve and a published one up to 0.95 bpp, and a classical curve to 4.7 bpp."""
    return [
        curve("bpg", [0.05, 0.4, 1.2, 4.7], [25.0, 31.0, 36.0, 47.0]),
        curve("gabic (ours)", [0.15, 0.3, 0.6, 0.9], [29.0, 31.5, 34.0, 36.0]),
        curve("WACNN", [0.1, 0.5, 0.95], [28.0, 33.0, 36.5], kind="published"),
    ]


def test_default_x_range_fits_the_learned_codecs():
    bpg, ours, wacnn = learned_and_classical()
    fig = plots.rd_figure([bpg, ours, wacnn])
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert all(lo <= b <= hi for b in ours["results"]["bpp"] + wacnn["results"]["bpp"]), "every learned point shown"
    assert hi < 4.7 and not lo <= 4.7 <= hi, "the classical point at 4.7 bpp is beyond the axis"
    span = 0.95 - 0.05  # from the lowest bpp drawn to the highest learned one, a margin of 5 % of it each side
    assert (lo, hi) == pytest.approx((0.05 - plots.AXIS_MARGIN * span, 0.95 + plots.AXIS_MARGIN * span))
    inside = [v for c in (bpg, ours, wacnn) for b, v in results.points(c) if lo <= b <= hi]
    assert ax.get_ylim() == pytest.approx((25.0 - plots.AXIS_MARGIN * 11.5, 36.5 + plots.AXIS_MARGIN * 11.5))
    assert (min(inside), max(inside)) == (25.0, 36.5), "the y-range follows the points inside the x-range, not 47 dB"
    assert notes(fig) == ["x-range fitted to the learned codecs; BPG goes on to 4.7 bpp"]
    np.testing.assert_array_equal(lines_by_label(fig)["BPG"].get_xydata(), np.array(results.points(bpg)))  # clipped, not dropped
    # ``ax=``: the same rule
    other = Figure()
    plots.rd_figure([bpg, ours, wacnn], ax=other.add_subplot())
    assert other.axes[0].get_xlim() == pytest.approx((lo, hi))


def test_full_range_explicit_limits_and_no_learned_curves():
    bpg, ours, wacnn = learned_and_classical()
    full = plots.rd_figure([bpg, ours, wacnn], xlim="full")
    lo, hi = full.axes[0].get_xlim()
    assert lo <= 0.05 and hi >= 4.7 and full.axes[0].get_ylim()[1] >= 47 and notes(full) == []
    fixed = plots.rd_figure([bpg, ours, wacnn], xlim=(0.2, 1.0))
    assert fixed.axes[0].get_xlim() == (0.2, 1.0) and notes(fixed) == []
    bottom, top = fixed.axes[0].get_ylim()
    # inside 0.2 .. 1.0 bpp: BPG's 31 dB at 0.4 bpp is the lowest, WACNN's 36.5 dB the highest
    assert (bottom, top) == pytest.approx((31.0 - plots.AXIS_MARGIN * 5.5, 36.5 + plots.AXIS_MARGIN * 5.5))
    classical = plots.rd_figure([bpg, curve("jpeg", [0.2, 1.0, 3.0], [24.0, 32.0, 40.0])])
    assert classical.axes[0].get_xlim()[1] >= 4.7 and notes(classical) == [], "no learned curve: every point"
    assert plots.rd_figure([ours, wacnn]).axes[0].get_xlim()[1] >= 0.95 and notes(plots.rd_figure([ours, wacnn])) == []
    with pytest.raises(ValueError, match="xlim must be"):
        plots.rd_figure([bpg, ours], xlim="wide")


# --- matplotlib figures -------------------------------------------------------------------------


@pytest.mark.parametrize("width, inches", [("single", 3.5), ("double", 7.16), (5, 5.0), (np.float32(4.5), 4.5)])
def test_figure_width(width, inches):
    fig = plots.rd_figure("jpeg", width=width)
    assert fig.get_figwidth() == pytest.approx(inches)
    assert fig.get_figheight() >= inches * plots.HEIGHT_RATIO - 1e-9


@pytest.mark.parametrize("width", ["triple", 0, -3.5, float("nan"), True])
def test_bad_width(width):
    with pytest.raises(ValueError, match="width"):
        plots.rd_figure("jpeg", width=width)


@pytest.mark.parametrize("metric, label", [("psnr-rgb", "PSNR (dB)"), ("ms-ssim-rgb", "MS-SSIM"), ("ms-ssim-db-rgb", "MS-SSIM (dB)")])
def test_axis_labels(metric, label):
    ax = plots.rd_figure("jpeg", metric=metric).axes[0]
    assert ax.get_ylabel() == label and ax.get_xlabel() == "Rate (bpp)"
    assert ax.get_title() == "Kodak"  # every curve is on Kodak


@pytest.mark.parametrize("metric", ["psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb"])
def test_plotted_data_are_the_rd_points(metric):
    # jpeg2000 is stored from high to low rate; ms-ssim-db-rgb is derived from linear MS-SSIM
    fig = plots.rd_figure(["jpeg2000", "webp"], metric=metric)
    for name, line in zip(["jpeg2000", "webp"], fig.axes[0].get_lines(), strict=True):
        np.testing.assert_array_equal(line.get_xydata(), np.array(results.points(results.load(name), metric)))


def test_draws_into_given_axes_and_options():
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.rd_figure(["jpeg", "webp"], ax=ax, title="", legend=False, xlim=(0, 2), ylim=(25, 40)) is fig
    assert ax.get_legend() is None and ax.get_title() == ""
    assert ax.get_xlim() == (0, 2) and ax.get_ylim() == (25, 40)
    mixed = plots.rd_figure(["jpeg", curve("ours", [0.2, 0.5], [30, 33], dataset="clic")])
    assert mixed.axes[0].get_title() == ""  # datasets differ: no title


@pytest.mark.parametrize(
    "names, width",
    [(["jpeg", "webp"], "single"), (["stf_mse", "wacnn_mse", "bpg444", "vtm", "jpeg", "webp", "jpeg2000", "hm", "av1"], "double")],
)
def test_a_legend_inside_the_plot_covers_no_curve(names, width):
    fig = plots.rd_figure(names, width=width)
    ax, legend = fig.axes[0], fig.axes[0].get_legend()
    assert (legend is not None) != (len(fig.legends) == 1), "one legend, inside or below"
    if legend is not None:
        fig.draw_without_rendering()
        box = legend.get_window_extent()
        for line in ax.get_lines():
            path = line.get_transform().transform_path(line.get_path())
            assert not path.intersects_bbox(box, filled=False), line.get_label()


def test_same_label_twice_kept_apart():
    fig = plots.rd_figure([curve("ours", [0.2, 0.5], [30, 33]), curve("ours", [0.3, 0.6], [31, 34])])
    assert set(lines_by_label(fig)) == {"ours", "ours [2]"}


def test_missing_metric(caplog):
    with pytest.raises(ResultsError, match=r"STF \(mse\).*ms-ssim-rgb.*psnr-rgb"):
        plots.rd_figure("stf_mse", metric="ms-ssim-rgb")
    with caplog.at_level(logging.DEBUG, logger="gabic.plots"):
        fig = plots.rd_figure(["stf_mse", "jpeg"], metric="ms-ssim-rgb")
    assert list(lines_by_label(fig)) == ["JPEG (published)"]
    assert "STF (mse)" in caplog.text and all(r.levelno == logging.DEBUG for r in caplog.records), "logged, not a warning"
    assert [n for n in notes(fig) if n.startswith("no ")] == ["no MS-SSIM data: STF (mse) (published)"]
    three = plots.rd_figure(["stf_mse", "wacnn_mse", "jpeg", "webp"], metric="ms-ssim-db-rgb")
    assert notes(three)[-1] == "no MS-SSIM data: STF (mse) (published), WACNN (mse) (published)"
    assert not any(n.startswith("no ") for n in notes(plots.rd_figure(["jpeg", "webp"], metric="ms-ssim-rgb")))


def test_not_results_schema():
    other = {"bpp": [0.1, 0.2], "psnr": [30, 32]}
    for call in (plots.rd_figure, plots.rd_plotly, lambda r: plots.bd_table(r, "jpeg")):
        with pytest.raises(ResultsError, match="not in the results schema"):
            call([other, "jpeg"])
    with pytest.raises(ResultsError, match="no such results file or published curve"):
        plots.rd_figure(["jpgg"])
    with pytest.raises(ValueError, match="no curves"):
        plots.rd_figure([])


# --- files ----------------------------------------------------------------------------------------


def test_save_figure(tmp_path):
    fig = plots.rd_figure(["jpeg", "stf_mse"])
    paths = plots.save_figure(fig, tmp_path / "sub" / "rd", dpi=100)
    assert [p.name for p in paths] == ["rd.pdf", "rd.svg", "rd.png", "rd.csv"]  # the figures, then the data behind them
    pdf, svg, png = (p.read_bytes() for p in paths[:3])
    assert pdf.startswith(b"%PDF")
    assert svg.lstrip().startswith((b"<?xml", b"<svg"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert int.from_bytes(png[16:20], "big") == round(3.5 * 100)  # IHDR width in pixels
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["rd.csv", "rd.pdf", "rd.png", "rd.svg"]  # no temporary files
    again = plots.save_figure(plots.rd_figure(["jpeg", "stf_mse"]), tmp_path / "again", formats=("pdf", "svg"))
    assert [p.read_bytes() for p in again] == [pdf, svg, paths[3].read_bytes()]  # no dates: the same figure, the same bytes


def test_save_figure_bad_format_writes_nothing(tmp_path):
    fig = plots.rd_figure("jpeg")
    with pytest.raises(ValueError, match="bmp"):
        plots.save_figure(fig, tmp_path / "out" / "rd", formats=("pdf", "bmp"))
    assert list(tmp_path.iterdir()) == []


# --- plotly ------------------------------------------------------------------------------------------


def test_plotly_hover_pairs_settings_with_points():
    pytest.importorskip("plotly")
    # stored out of bpp order: quality i belongs to point i, whatever the order
    bpp, psnr, quality = [0.8, 0.2, 0.5, 0.35], [36.0, 29.0, 33.0, 31.5], [8, 2, 5, 3]
    measured = curve("GABIC (ours)", bpp, psnr, quality=quality)
    lam = [0.0483, 0.0067, 0.025, 0.013]
    published = curve("WACNN (mse)", bpp, [p + 0.3 for p in psnr], kind="published", **{"lambda": lam})
    fig = plots.rd_plotly([measured, published, "gabic_icip2024_digitized"])
    ours, wacnn, gabic = fig.data
    assert list(ours.x) == sorted(bpp) and list(ours.y) == [29.0, 31.5, 33.0, 36.0]
    for b, p, q, text in zip(ours.x, ours.y, [2, 3, 5, 8], ours.text, strict=True):
        assert f"quality {q}<" in text and f"{b:.4f} bpp" in text and f"PSNR {p:.3f} dB" in text and "GABIC (ours)" in text
    assert [t.split("<br>")[1] for t in wacnn.text] == ["λ = 0.0067", "λ = 0.013", "λ = 0.025", "λ = 0.0483"]
    assert ours.line.dash == "solid" and wacnn.line.dash == "dash" and gabic.line.dash == "dot"
    assert gabic.marker.symbol == "circle-open" and ours.marker.symbol == "circle"
    assert wacnn.name == "WACNN (mse) (published)" and wacnn.line.color == plots.method_style("wacnn")["color"]
    assert fig.layout.xaxis.title.text == "Rate (bpp)" and fig.layout.yaxis.title.text == "PSNR (dB)"


def test_plotly_layout_gives_the_plot_most_of_the_height_and_the_legend_rows_below():
    """About 12 curves (notebook 03's): the plot area is PLOTLY_PLOT_HEIGHT px tall and most of the figure, the
    legend lies in rows under the x-axis title, inside the bottom margin (no scrollbar of its own), margins tight."""
    pytest.importorskip("plotly")
    from gabic.plots.figures import PLOTLY_PLOT_HEIGHT

    codecs = ["jpeg", "heif", "webp", "avif", "GABIC (N=192, M=320, num_slices=10, knn=9)"]
    measured = [curve(name, ANCHOR_BPP, [p + i for p in ANCHOR_PSNR]) for i, name in enumerate(codecs)]
    names = [*measured, "stf_mse", "wacnn_mse", "gabic_icip2024_digitized", "bpg444", "vtm", "jpeg", "jpeg2000"]
    fig = plots.rd_plotly(names)
    layout = fig.layout
    assert len(fig.data) == 12
    margin = layout.margin
    plot_height = layout.height - margin.t - margin.b
    assert plot_height == PLOTLY_PLOT_HEIGHT and plot_height >= 0.6 * layout.height, "the plot area dominates"
    assert margin.t <= 50 and margin.l <= 70 and margin.r <= 20 and margin.autoexpand is False
    legend = layout.legend
    assert (legend.orientation, legend.x, legend.xanchor, legend.yanchor) == ("h", 0, "left", "top")
    below_axis = -legend.y * PLOTLY_PLOT_HEIGHT  # pixels between the plot's bottom and the legend's top
    assert 40 <= below_axis < margin.b, "under the x-axis title, inside the bottom margin"
    legend_height = margin.b - below_axis - 16  # what the layout leaves the legend's rows
    assert 3 * 17 <= legend_height <= 0.5 * layout.height, "room for 12 entries; plotly scrolls a horizontal legend taller than that"
    assert all(max(map(len, trace.name.split("<br>"))) <= 32 for trace in fig.data), "long labels wrapped: the columns stay narrow"
    long = fig.data[4]  # "GABIC (N=192, M=320, num_slices=10, knn=9)": two lines in the legend, one in the hover text
    assert "<br>" in long.name and long.name.replace("<br>  ", " ") == "GABIC (N=192, M=320, num_slices=10, knn=9)"
    assert "<b>GABIC (N=192, M=320, num_slices=10, knn=9)</b>" in long.text[0]
    assert layout.height <= 700, "fits a 1280x800 screen"
    # a title: the top margin makes room for it; none: a thin top margin
    titled = plots.rd_plotly(["stf_mse", "jpeg"], title="Kodak").layout
    assert titled.title.text == "Kodak" and titled.margin.t > plots.rd_plotly(["stf_mse", "jpeg"], title="").layout.margin.t
    assert titled.height - titled.margin.t - titled.margin.b == PLOTLY_PLOT_HEIGHT


def test_plotly_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(ImportError, match="pip install plotly"):
        plots.rd_plotly("jpeg")


# --- BD tables -----------------------------------------------------------------------------------------


def test_bd_table_hand_made():
    anchor = curve("anchor", ANCHOR_BPP, ANCHOR_PSNR)
    cheaper = curve("cheaper", [0.9 * b for b in ANCHOR_BPP], ANCHOR_PSNR)  # 10 % fewer bits at equal PSNR
    better = curve("better", ANCHOR_BPP, [p + 0.5 for p in ANCHOR_PSNR])  # +0.5 dB at equal rate
    apart = curve("apart", [2, 3, 4, 5], [40, 41, 42, 43])  # no PSNR overlap with the anchor
    short = curve("short", [0.3, 0.5, 0.7], [30, 32, 33.5])  # too few for the cubic
    df = plots.bd_table([anchor, cheaper, better, apart, short, "stf_ms-ssim"], anchor="anchor")
    assert list(df.index) == ["anchor", "cheaper", "better", "apart", "short", "STF (ms-ssim) (published)"]
    assert list(df.columns) == ["BD-rate (%)", "BD-PSNR (dB)", "points", "bpp range", "note"]
    assert df.loc["anchor", "BD-rate (%)"] == 0 and df.loc["anchor", "BD-PSNR (dB)"] == 0 and df.loc["anchor", "note"] == "anchor"
    assert df.loc["cheaper", "BD-rate (%)"] == pytest.approx(-10.0, abs=1e-6)
    assert df.loc["better", "BD-PSNR (dB)"] == pytest.approx(0.5, abs=1e-9)
    assert df.loc["better", "BD-rate (%)"] < 0 and df.loc["cheaper", "BD-PSNR (dB)"] > 0
    for label, why in [("apart", "overlap"), ("short", "at least 4 points"), ("STF (ms-ssim) (published)", "no metric 'psnr-rgb'")]:
        assert math.isnan(df.loc[label, "BD-rate (%)"]) and math.isnan(df.loc[label, "BD-PSNR (dB)"])
        assert why in df.loc[label, "note"]
    assert df.loc["cheaper", "note"] == "" and df.loc["cheaper", "points"] == 5 and df.loc["cheaper", "bpp range"] == "0.180–0.900"
    assert df.attrs == {
        **{"anchor": "anchor", "metric": "psnr-rgb", "method": "cubic", "anchor_set": None},
        "n/a": {"overlap": ["apart"], "points": ["short"], "metric": ["STF (ms-ssim) (published)"]},  # what bd_caption counts
    }
    # pchip needs 2 points: the short curve now has values
    assert not math.isnan(plots.bd_table([anchor, short], anchor, method="pchip").loc["short", "BD-rate (%)"])


@pytest.mark.parametrize("method", ["cubic", "pchip"])
def test_bd_table_na_for_a_curve_whose_quality_does_not_rise_with_rate(method):
    anchor = curve("anchor", ANCHOR_BPP, ANCHOR_PSNR)
    good = curve("good", ANCHOR_BPP, [p + 0.5 for p in ANCHOR_PSNR])
    bad = curve("kodak-bad", [0.2, 0.4, 0.6, 0.8, 1.0], [28.0, 30.1, 29.8, 33.0, 34.0])
    flat = curve("kodak-flat", [1.0, 0.2, 0.6, 0.4, 0.8], [34.0, 28.0, 30.1, 30.1, 33.0])  # any order
    df = plots.bd_table([anchor, good, bad, flat], anchor="anchor", method=method)
    assert df.loc["good", "BD-PSNR (dB)"] == pytest.approx(0.5, abs=1e-9) and df.loc["good", "note"] == ""
    rule = "; BD needs PSNR to rise strictly with bpp"
    for label, note in [
        ("kodak-bad", "kodak-bad: PSNR falls from 30.10 dB to 29.80 dB as bpp rises from 0.40 to 0.60" + rule),
        ("kodak-flat", "kodak-flat: PSNR stays at 30.10 dB as bpp rises from 0.40 to 0.60" + rule),
    ]:
        assert math.isnan(df.loc[label, "BD-rate (%)"]) and math.isnan(df.loc[label, "BD-PSNR (dB)"])
        assert df.loc[label, "note"] == note
    # such an anchor: every other row n/a, the note naming the anchor
    df = plots.bd_table([bad, good], anchor="kodak-bad", method=method)
    assert math.isnan(df.loc["good", "BD-rate (%)"])
    assert df.loc["good", "note"] == "the anchor kodak-bad: PSNR falls from 30.10 dB to 29.80 dB as bpp rises from 0.40 to 0.60" + rule
    # another metric: named as the table names it
    ssim = curve("ssim-bad", [0.2, 0.4, 0.6, 0.8], [10.0, 12.0, 11.5, 14.0])
    ssim["results"]["ms-ssim-db-rgb"] = ssim["results"].pop("psnr-rgb")
    good["results"]["ms-ssim-db-rgb"] = [10.0, 11.0, 12.0, 13.0, 14.0]
    df = plots.bd_table([good, ssim], anchor="good", metric="ms-ssim-db-rgb", method=method)
    assert df.loc["ssim-bad", "note"].startswith("ssim-bad: MS-SSIM falls from 12.00 dB to 11.50 dB as bpp rises from 0.40 to 0.60")
    # the cross-set override does not reach it: n/a still
    kodak = curve("anchor", ANCHOR_BPP, ANCHOR_PSNR, dataset="kodak")
    other = curve("kodak-bad", bad["results"]["bpp"], bad["results"]["psnr-rgb"], dataset="clic")
    df = plots.bd_table([kodak, other], anchor="anchor", method=method, across_image_sets=True)
    assert math.isnan(df.iloc[1]["BD-rate (%)"]) and "PSNR falls from 30.10 dB to 29.80 dB" in df.iloc[1]["note"]


def test_bd_table_notes_name_the_curves_not_internal_variables():
    anchor = curve("anchor", ANCHOR_BPP, ANCHOR_PSNR)
    short = curve("jpeg", [0.3, 0.5, 0.7], [30, 32, 33.5])
    zero = curve("zero", [0.0, 0.4, 0.6, 0.8, 1.0], ANCHOR_PSNR)
    apart = curve("apart", [2, 3, 4, 5], [40, 41, 42, 43])
    df = plots.bd_table([anchor, short, zero, apart], anchor="anchor")
    assert df.loc["JPEG", "note"] == "JPEG has 3 points; method 'cubic' needs at least 4 points per curve"
    assert df.loc["zero", "note"].startswith("zero has a point at 0 bpp: BD takes the rate on a log scale")
    apart_note = "the PSNR ranges of the two curves do not overlap: the anchor anchor spans [28, 35.5] dB, apart spans [40, 43] dB"
    assert df.loc["apart", "note"] == apart_note
    assert plots.bd_table([short, anchor], anchor="jpeg").loc["anchor", "note"] == (
        "the anchor JPEG has 3 points; method 'cubic' needs at least 4 points per curve"
    )
    for note in df["note"]:
        assert not re.search(r"_bpp|_psnr|\btest\b|index", note), note


@pytest.mark.parametrize("method", ["cubic", "pchip"])
@pytest.mark.parametrize("metric", ["psnr-rgb", "ms-ssim-db-rgb"])
def test_bd_table_equals_metrics(method, metric):
    names = ["jpeg", "bpg444", "webp", "compressai_mbt2018-mean_mse_cpu", "vtm"]
    df = plots.bd_table(names, anchor="jpeg", metric=metric, method=method)
    column = "BD-PSNR (dB)" if metric == "psnr-rgb" else "BD-MS-SSIM (dB)"
    ab, aq = zip(*results.points(results.load("jpeg"), metric), strict=True)
    for name, (label, row) in zip(names, df.iterrows(), strict=True):
        tb, tq = zip(*results.points(results.load(name), metric), strict=True)
        assert label == plots.method_style(results.load(name))["label"]
        assert row["BD-rate (%)"] == pytest.approx(bd_rate(ab, aq, tb, tq, method=method), rel=1e-12, abs=1e-12)
        assert row[column] == pytest.approx(bd_psnr(ab, aq, tb, tq, method=method), rel=1e-12, abs=1e-12)


def test_bd_table_anchor_forms():
    jpeg = results.load("jpeg")
    by_name = plots.bd_table(["jpeg", "stf_mse"], anchor="jpeg")
    by_label = plots.bd_table(["jpeg", "stf_mse"], anchor="JPEG (published)")
    by_dict = plots.bd_table([jpeg, "stf_mse"], anchor=jpeg)
    outside = plots.bd_table(["stf_mse"], anchor="jpeg")  # not among the curves: loaded, first row
    for df in (by_name, by_label, by_dict, outside):
        assert list(df.index) == ["JPEG (published)", "STF (mse) (published)"]
        pd.testing.assert_frame_equal(df, by_name)
    assert plots.bd_table("stf_mse", anchor="jpeg").shape[0] == 2
    linear = plots.bd_table(["jpeg", "webp"], anchor="jpeg", metric="ms-ssim-rgb")
    assert "BD-MS-SSIM" in linear.columns
    with pytest.raises(ResultsError, match="anchor 'nope' is none of the curves"):
        plots.bd_table(["jpeg"], anchor="nope")
    with pytest.raises(ResultsError, match="no metric 'psnr-rgb'"):
        plots.bd_table(["jpeg"], anchor="stf_ms-ssim")
    with pytest.raises(ValueError, match="unknown method"):
        plots.bd_table(["jpeg"], anchor="jpeg", method="linear")


def test_bd_markdown_and_latex():
    anchor = curve("anchor_1", ANCHOR_BPP, ANCHOR_PSNR)
    cheaper = curve("cheaper & co", [0.9 * b for b in ANCHOR_BPP], [p + 0.5 for p in ANCHOR_PSNR])
    apart = curve("apart", [2, 3, 4, 5], [40, 41, 42, 43])
    df = plots.bd_table([anchor, cheaper, apart], anchor="anchor_1")
    rate, gain = df.loc["cheaper & co", "BD-rate (%)"], df.loc["cheaper & co", "BD-PSNR (dB)"]
    md = plots.bd_markdown(df)
    assert md.splitlines()[0].startswith("| curve") and md.splitlines()[1].startswith("| :---") and len(md.splitlines()) == 5
    assert "| anchor_1 " in md and "| cheaper & co " in md
    assert f"{rate:+.2f}" in md and f"{gain:+.2f}" in md and "n/a" in md and "0.00" in md
    assert f"{rate:+.3f}" in plots.bd_markdown(df, digits=3)
    tex = plots.bd_latex(df)
    assert "\\begin{tabular}" in tex and "BD-rate (\\%)" in tex
    assert "anchor\\_1" in tex and "cheaper \\& co" in tex and f"{rate:+.2f}" in tex and "n/a" in tex
    assert "0.180--0.900" in tex and "–" not in tex


# --- the whole report ------------------------------------------------------------------------------------


@pytest.mark.slow  # every figure of a report in every format: 3-5 s
def test_write_report(tmp_path, caplog):
    names = ["jpeg", "stf_mse", "gabic_icip2024_digitized"]
    with caplog.at_level(logging.INFO, logger="gabic.plots"):
        paths = plots.write_report(names, tmp_path / "rd", anchor="jpeg", dpi=72)
    expected = {
        f"rd_{metric}_{width}.{fmt}"
        for metric in ("psnr-rgb", "ms-ssim-db-rgb")
        for width in ("single", "double")
        for fmt in ("pdf", "svg", "png", "csv")  # csv: the plotted points
    } | {f"bd_{metric}.{ext}" for metric in ("psnr-rgb", "ms-ssim-db-rgb") for ext in ("md", "tex", "csv")}
    assert {p.name for p in paths} == expected == {p.name for p in (tmp_path / "rd").iterdir()}
    assert all(p.parent == tmp_path / "rd" and p.stat().st_size > 0 for p in paths)
    lacking = [r.getMessage() for r in caplog.records if "left out of its figures" in r.getMessage()]
    assert lacking == [  # no MS-SSIM: left out of those figures, one log line ...
        "no ms-ssim-db-rgb in STF (mse) (published), GABIC (digitised from figure): left out of its figures (n/a in its BD table)"
    ]
    points_drawn = pd.read_csv(tmp_path / "rd" / "rd_ms-ssim-db-rgb_single.csv")
    assert set(points_drawn["curve"]) == {"JPEG (published)"}  # ... and a note on them
    assert notes(plots.rd_figure(names, "ms-ssim-db-rgb")) == [
        "x-range fitted to the learned codecs; JPEG goes on to 3.4 bpp",  # STF and GABIC count, MS-SSIM or not
        "no MS-SSIM data: STF (mse) (published), GABIC (digitised from figure)",
    ]
    table = pd.read_csv(tmp_path / "rd" / "bd_psnr-rgb.csv", index_col=0)
    expected_df = plots.bd_table(names, anchor="jpeg")
    np.testing.assert_allclose(table["BD-rate (%)"], expected_df["BD-rate (%)"], rtol=1e-12)
    assert "GABIC (digitised from figure)" in (tmp_path / "rd" / "bd_psnr-rgb.md").read_text(encoding="utf-8")
    assert (tmp_path / "rd" / "rd_psnr-rgb_single.pdf").read_bytes().startswith(b"%PDF")


def test_write_report_skips_a_metric_no_curve_has(tmp_path):
    stf = copy.deepcopy(results.load("stf_mse"))
    paths = plots.write_report([stf], tmp_path, metrics=("psnr-rgb", "ms-ssim-rgb"), widths=(4,), formats=("png",))
    assert sorted(p.name for p in paths) == [
        "bd_psnr-rgb.csv",
        "bd_psnr-rgb.md",
        "bd_psnr-rgb.tex",
        "rd_psnr-rgb_4in.csv",
        "rd_psnr-rgb_4in.png",
    ]
    assert stf == results.load("stf_mse")  # the input is not changed


def test_write_report_anchor(tmp_path, caplog):
    with pytest.raises(ResultsError, match="anchor 'jpgg'"):
        plots.write_report(["jpeg", "stf_mse"], tmp_path / "bad", anchor="jpgg", formats=("png",))
    assert not (tmp_path / "bad").exists()  # checked before anything is written
    with caplog.at_level(logging.WARNING, logger="gabic.plots"):
        paths = plots.write_report(["jpeg"], tmp_path, anchor="stf_mse", widths=("single",), formats=("png",), dpi=50)
    # the anchor joins the curves; it has no MS-SSIM, so that metric gets a figure but no BD table
    assert sorted(p.name for p in paths) == [
        "bd_psnr-rgb.csv",
        "bd_psnr-rgb.md",
        "bd_psnr-rgb.tex",
        "rd_ms-ssim-db-rgb_single.csv",
        "rd_ms-ssim-db-rgb_single.png",
        "rd_psnr-rgb_single.csv",
        "rd_psnr-rgb_single.png",
    ]
    assert "the anchor STF (mse) (published) has no ms-ssim-db-rgb" in caplog.text
    assert (tmp_path / "bd_psnr-rgb.md").read_text(encoding="utf-8").splitlines()[2].startswith("| STF (mse) (published)")


def test_anchor_by_published_name_finds_the_loaded_curve():
    """A published name as the anchor matches the same curve given as a loaded dict: not drawn twice."""
    curves = [results.load("jpeg"), results.load("bpg444")]
    table = plots.bd_table(curves, "bpg444")
    assert len(table) == 2 and not any("[anchor]" in label for label in table.index)
    assert table.loc[table.index[1], "BD-rate (%)"] == 0.0


# --- default anchor, captions, no output --------------------------------------------------------------


def sample_curves() -> list[dict]:
    """Codecs and a GABIC measured on the embedded sample photos (as notebook 03 by default), beside the published Kodak curves."""
    measured = [
        curve(name, ANCHOR_BPP, [p + i for p in ANCHOR_PSNR], dataset="gabic samples")
        for i, name in enumerate(["jpeg", "webp", "heif", "gabic"])
    ]
    return [*measured, "stf_mse", "bpg444", "vtm", "jpeg"]


def test_default_anchor_is_on_the_image_set_of_the_measured_curves():
    from gabic.image_sets import same_image_set

    curves = plots.load_curves(sample_curves())
    anchor = plots.default_anchor(curves)
    assert anchor.label == "HEIF", "a classical codec measured on the photos, HEVC intra first; not the published BPG"
    assert same_image_set(anchor.image_set, curves[0].image_set)
    table = plots.bd_table(curves)  # no anchor named: the default one
    assert table.attrs["anchor"] == "HEIF"
    measured = ["JPEG", "WebP", "HEIF", "GABIC"]
    assert table.loc[measured, "BD-rate (%)"].notna().all(), "every measured row has a value"
    assert table.loc[["JPEG", "GABIC"], "BD-rate (%)"].tolist() == [
        pytest.approx(v) for v in plots.bd_table(curves, "heif").loc[["JPEG", "GABIC"], "BD-rate (%)"]
    ]
    # measured on Kodak: the published BPG, as before
    kodak = [curve("jpeg", ANCHOR_BPP, ANCHOR_PSNR, dataset="kodak"), "stf_mse", "bpg444"]
    assert plots.default_anchor(kodak).label == "BPG 4:4:4 (x265) (published)"
    # no known classical codec there: the first curve of the set; nothing measured: every curve counts
    assert plots.default_anchor([curve("ours", ANCHOR_BPP, ANCHOR_PSNR), curve("theirs", ANCHOR_BPP, ANCHOR_PSNR)]).label == "ours"
    assert plots.default_anchor(["stf_mse", "vtm", "bpg444"]).label == "BPG 4:4:4 (x265) (published)"
    assert plots.default_anchor(["stf_mse", "jpeg"], metric="ms-ssim-rgb").label == "JPEG (published)", "one that has the metric"
    with pytest.raises(ResultsError, match="no curve has the metric 'ms-ssim-rgb'"):
        plots.default_anchor(["stf_mse"], metric="ms-ssim-rgb")


def test_bd_caption_says_why_rows_are_na():
    short = curve("short", ANCHOR_BPP[:3], ANCHOR_PSNR[:3], dataset="gabic samples")
    table = plots.bd_table([*sample_curves(), short])
    assert table.attrs["n/a"] == {
        "image set": [f"{name} (published) (Kodak)" for name in ("STF (mse)", "BPG 4:4:4 (x265)", "VTM", "JPEG")],
        "points": ["short"],
    }
    assert plots.bd_caption(table) == (
        "BD against HEIF (PSNR, cubic fit; negative BD-rate: fewer bits). n/a: 4 curves measured on other images than the "
        "anchor (the anchor: 4 sample photos; BD compares curves of one image set), 1 curve with too few points for the fit; "
        "the notes say more."
    )
    clean = plots.bd_table([curve("a", ANCHOR_BPP, ANCHOR_PSNR), curve("b", ANCHOR_BPP, [p + 1 for p in ANCHOR_PSNR])], "a")
    assert plots.bd_caption(clean) == "BD against a (PSNR, cubic fit; negative BD-rate: fewer bits)."
    flat = curve("flat", ANCHOR_BPP, [28.0, 31.0, 31.0, 34.5, 35.5])
    ms = plots.bd_table([curve("a", ANCHOR_BPP, ANCHOR_PSNR), flat, "stf_mse"], "a", metric="psnr-rgb", method="pchip")
    assert "1 curve whose quality does not rise strictly with bpp" in plots.bd_caption(ms) and "pchip fit" in plots.bd_caption(ms)


@pytest.mark.slow  # every figure of a report: 3-5 s
def test_write_report_prints_nothing(tmp_path, capfd, monkeypatch):
    """In a notebook the gabic loggers have no handler: Python's last-resort handler prints WARNING and above
    to stderr (a pink box). With notebook 03's curves, write_report logs nothing that high and prints nothing."""
    monkeypatch.setattr(logging.root, "handlers", [])  # as in a fresh kernel (pytest's own capture handler removed)
    written = plots.write_report(sample_curves(), tmp_path, widths=("single",), formats=("png",), dpi=50)
    out, err = capfd.readouterr()
    assert (out, err) == ("", ""), "nothing printed"
    assert {p.name for p in written} >= {"bd_psnr-rgb.md"}, "a BD table: the default anchor"
    md = (tmp_path / "bd_psnr-rgb.md").read_text(encoding="utf-8")
    assert "| HEIF " in md and "anchor" in md


def test_write_report_logs_each_message_once(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="gabic.plots"):
        plots.write_report(["jpeg", "stf_mse", "wacnn_mse"], tmp_path, widths=("single", "double"), formats=("png",), dpi=30)
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and not r.getMessage().startswith("wrote")]
    assert len(messages) == len(set(messages)), "no message twice (not once per figure width)"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_title_too_wide_for_the_figure_is_wrapped_not_cut():
    title = "GABIC (N=64, M=96, num_slices=8, knn=6), best.pth.tar against every codec: 0.512 bpp, 20.79 dB"
    fig = plots.rd_figure("jpeg", width="single", title=title)
    fig.draw_without_rendering()
    box, edge = fig.axes[0].title.get_window_extent(), fig.bbox
    assert edge.x0 <= box.x0 and box.x1 <= edge.x1, "inside the figure"
    assert "\n" in fig.axes[0].title.get_text() and fig.axes[0].title.get_text().replace("\n", " ") == title
    assert "\n" not in plots.rd_figure("jpeg", width="single", title="Kodak").axes[0].title.get_text()
