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


def test_rd_bd_table_na_for_a_curve_whose_psnr_falls_or_has_too_few_points(capsys, tmp_path):
    def write(name: str, bpp: list[float], psnr: list[float]):
        path = tmp_path / f"{name}.json"  # the CompressAI results schema, as `gabic evaluate` writes it
        meta = {"kind": "measured", "dataset": "kodak"}
        path.write_text(
            json.dumps({"name": name, "description": "hand-made", "meta": meta, "results": {"bpp": bpp, "psnr-rgb": psnr}})
        )
        return path

    bpp = [0.2, 0.4, 0.6, 0.8, 1.0]
    good = write("kodak-good", bpp, [28.0, 30.1, 31.5, 33.0, 34.0])
    bad = write("kodak-bad", bpp, [28.0, 30.1, 29.8, 33.0, 34.0])
    flat = write("kodak-flat", bpp, [28.0, 30.1, 30.1, 33.0, 34.0])
    short = write("jpeg", bpp[:3], [28.0, 30.1, 31.5])
    out = tmp_path / "report"
    code, _, err = run_cli(
        capsys, "rd", good, bad, flat, short, "--anchor", good, "--out", out, "--metric", "psnr-rgb", "--formats", "png"
    )
    assert code == 0, err
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in (out / "bd_psnr-rgb.md").read_text().splitlines()
    }
    rule = "; BD needs PSNR to rise strictly with bpp"
    assert rows["kodak-bad"][:2] == ["n/a", "n/a"]
    assert rows["kodak-bad"][-1] == "kodak-bad: PSNR falls from 30.10 dB to 29.80 dB as bpp rises from 0.40 to 0.60" + rule
    assert rows["kodak-flat"][:2] == ["n/a", "n/a"]
    assert rows["kodak-flat"][-1] == "kodak-flat: PSNR stays at 30.10 dB as bpp rises from 0.40 to 0.60" + rule
    assert (
        rows["JPEG"][:2] == ["n/a", "n/a"]
        and rows["JPEG"][-1] == "JPEG has 3 points; method 'cubic' needs at least 4 points per curve"
    )
    assert rows["kodak-good"][:2] == ["0.00", "0.00"] and rows["kodak-good"][-1] == "anchor"
    table = pd.read_csv(out / "bd_psnr-rgb.csv", index_col=0)
    assert table.loc[["kodak-bad", "kodak-flat", "JPEG"], "BD-rate (%)"].isna().all()


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

    monkeypatch.setattr(plots.report, "rd_figure", spy)  # write_report (gabic rd) draws with gabic.plots.report's rd_figure
    code, _, err = run_cli(capsys, "rd", "bpg444", "stf_mse", *flag, "--out", tmp_path, "--metric", "psnr-rgb", "--formats", "png")
    assert code == 0, err
    assert [x for x, _ in seen] == [xlim, xlim], "both widths"
    right = max(hi for _, (_, hi) in seen)
    # BPG reaches 4.70 bpp, STF (the learned curve) 0.903 bpp
    assert right > 4.7 if xlim == "full" else 0.903 < right < 1.0
