"""`gabic rd`: figures and BD tables from results files and published curves."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from gabic.metrics import bd_rate
from gabic.results import load, points
from tests.conftest import run_cli


def test_rd_writes_figures_and_bd_table(capsys, tmp_path):
    measured = load("stf_mse") | {"name": "stf", "meta": {"kind": "measured", "dataset": "kodak"}}
    path = tmp_path / "measured.json"
    path.write_text(json.dumps(measured))
    out = tmp_path / "report"
    code, stdout, err = run_cli(
        capsys, "rd", "jpeg", "wacnn_mse", path, "--anchor", "jpeg", "--out", out, "--metric", "psnr-rgb", "--formats", "pdf", "png"
    )
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "bd_psnr-rgb.csv",
        "bd_psnr-rgb.md",
        "bd_psnr-rgb.tex",
        "rd_psnr-rgb_double.csv",  # the plotted points
        "rd_psnr-rgb_double.pdf",
        "rd_psnr-rgb_double.png",
        "rd_psnr-rgb_single.csv",
        "rd_psnr-rgb_single.pdf",
        "rd_psnr-rgb_single.png",
    ]
    assert "wrote 9 files" in stdout
    drawn = pd.read_csv(out / "rd_psnr-rgb_single.csv", float_precision="round_trip")
    for label, given in (("JPEG (published)", load("jpeg")), ("STF", measured)):
        rows = drawn[drawn["curve"] == label].sort_values("point")
        assert rows["bpp"].tolist() == given["results"]["bpp"] and rows["psnr_db"].tolist() == given["results"]["psnr-rgb"]
    table = pd.read_csv(out / "bd_psnr-rgb.csv", index_col=0)
    anchor, test = zip(*points(load("jpeg")), strict=True), zip(*points(load("stf_mse")), strict=True)
    expected = bd_rate(*anchor, *test)
    (row,) = [r for label, r in table.iterrows() if label == "STF"]  # the measured curve, by its display name
    assert row["BD-rate (%)"] == pytest.approx(expected, abs=1e-9)
    assert "JPEG (published)" in (out / "bd_psnr-rgb.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nosuch",), "'nosuch': no such results file or published curve"),
        (("jpeg", "--anchor", "nosuch"), "anchor 'nosuch'"),
        (("{other}",), "not in the results schema: no 'results' object"),
    ],
)
def test_rd_bad_input(capsys, tmp_path, args, message):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"bpp": [0.1], "psnr": [30.0]}))
    out = tmp_path / "report"
    code, _, err = run_cli(capsys, "rd", *(a.format(other=other) for a in args), "--out", out)
    assert code == 1 and message in err and err.count("\n") == 1, err
    assert not out.exists(), "nothing written"


@pytest.mark.parametrize(("flag", "xlim"), [((), None), (("--full-range",), "full")])
def test_rd_full_range(capsys, tmp_path, monkeypatch, flag, xlim):
    from gabic import plots

    seen = []
    original = plots.rd_figure

    def spy(*args, **kwargs):
        fig = original(*args, **kwargs)
        seen.append((kwargs.get("xlim"), fig.axes[0].get_xlim()))
        return fig

    monkeypatch.setattr(plots, "rd_figure", spy)
    code, _, err = run_cli(capsys, "rd", "bpg444", "stf_mse", *flag, "--out", tmp_path, "--metric", "psnr-rgb", "--formats", "png")
    assert code == 0, err
    assert [x for x, _ in seen] == [xlim, xlim], "both widths"
    right = max(hi for _, (_, hi) in seen)
    # BPG reaches 4.70 bpp, STF (the learned curve) 0.903 bpp
    assert right > 4.7 if xlim == "full" else 0.903 < right < 1.0
