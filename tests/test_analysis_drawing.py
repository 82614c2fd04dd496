"""The drawings of gabic.analysis: each returns a Figure carrying its data, written as CSV equal to the inputs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from gabic.analysis import attention_comparison, block_redundancy, latent_capture, residual_correlation
from gabic.analysis.compare import TILE_COLUMNS, compare_models
from gabic.analysis.drawing import (
    draw_attention_comparison,
    draw_attention_maps,
    draw_bits,
    draw_bits_comparison,
    draw_redundancy,
    draw_residual_correlation,
    draw_slice_bits,
    draw_tile_scatter,
)
from gabic.figure_data import figure_data
from gabic.plots import save_figure
from gabic.viz import capture
from tests.conftest import small_model

#: A 200x136 (W x H) image: padded to 256x192 at (top, left) = (28, 28); a 12x16 latent.
H, W, TOP, LEFT = 136, 200, 28, 28


def _loud(name: str):
    """A small model whose latent costs bits (see tests/test_analysis_latent.py)."""
    model = small_model(name)
    model.g_a.register_forward_hook(lambda module, args, out: out * 10)
    return model


@pytest.fixture(scope="module")
def models():
    return _loud("gabic"), _loud("wacnn")


@pytest.fixture(scope="module")
def image() -> Image.Image:
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    base = np.stack([127 + 90 * np.sin(xx / 6.0), 127 + 90 * np.cos(yy / 9.0), 127 + 90 * np.sin((xx - yy) / 13.0)], -1)
    return Image.fromarray(np.clip(base + rng.normal(0, 15, base.shape), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def comparison(models, image):
    return compare_models(*models, image, tile=64)


@pytest.fixture(scope="module")
def attention(models, image):
    """The attention captures of both models: {"gabic": AttentionCapture, "wacnn": AttentionCapture}."""
    return {m.name: capture(m, image) for m in models}


def _save(fig, tmp_path: Path) -> list[Path]:
    """save_figure as a PNG (small, for speed); the figure and its CSV files are written."""
    paths = save_figure(fig, tmp_path / "x", formats=("png",), dpi=40)
    assert paths[0] == tmp_path / "x.png" and paths[0].stat().st_size > 0
    assert all(p.exists() for p in paths)
    return paths


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _floats(rows: list[dict[str, str]], column: str) -> np.ndarray:
    return np.array([float(r[column]) for r in rows], dtype=np.float64)


def _check_figure(fig, names: set[str]) -> None:
    assert isinstance(fig, Figure)
    tables = figure_data(fig)
    assert set(tables) == names
    assert all(len(next(iter(t.values()))) > 0 for t in tables.values())


# --------------------------------------------------------------------------- bits
def test_bits_comparison_csv_is_the_bits_maps(comparison, tmp_path):
    fig = draw_bits_comparison(comparison)
    _check_figure(fig, {"bits_GABIC", "bits_WACNN", "difference"})
    paths = _save(fig, tmp_path)
    assert sorted(p.name for p in paths[1:]) == ["x.bits_GABIC.csv", "x.bits_WACNN.csv", "x.difference.csv"]
    maps = {}
    for name, cap in zip(("GABIC", "WACNN"), comparison.captures, strict=True):
        rows = _read(tmp_path / f"x.bits_{name}.csv")
        assert list(rows[0]) == ["row", "col", "y", "x", "bits_per_pixel"]
        expected = (cap.bits_map / 256).numpy().reshape(-1)  # row-major
        assert len(rows) == 12 * 16
        np.testing.assert_array_equal(_floats(rows, "bits_per_pixel"), expected)
        assert expected.max() > 0.1  # the maps are not zeros
        # row-major cells, centres in original-image pixels: 16-pixel cells, starting at (-28, -28)
        assert [(int(r["row"]), int(r["col"])) for r in rows] == [(i, j) for i in range(12) for j in range(16)]
        np.testing.assert_allclose(_floats(rows, "y"), [-TOP + 16 * i + 8 for i in range(12) for _ in range(16)], rtol=0, atol=1e-9)
        np.testing.assert_allclose(_floats(rows, "x"), [-LEFT + 16 * j + 8 for _ in range(12) for j in range(16)], rtol=0, atol=1e-9)
        maps[name] = expected
    rows = _read(tmp_path / "x.difference.csv")
    assert list(rows[0])[-1] == "bpp_WACNN_minus_GABIC"
    np.testing.assert_allclose(_floats(rows, "bpp_WACNN_minus_GABIC"), maps["WACNN"] - maps["GABIC"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        _floats(rows, "bpp_WACNN_minus_GABIC"), (comparison.difference / 256).numpy().reshape(-1), rtol=1e-12, atol=1e-12
    )


def test_slice_bits_csv_is_the_rate_per_slice(comparison, models, image, tmp_path):
    captures = comparison.captures
    fig = draw_slice_bits(captures, names=["G", "W"])
    _check_figure(fig, {"slice_bits"})
    paths = _save(fig, tmp_path)
    assert [p.name for p in paths[1:]] == ["x.csv"]  # one table: <stem>.csv
    rows = _read(tmp_path / "x.csv")
    assert [(r["model"], r["part"]) for r in rows] == [(m, p) for m in ("G", "W") for p in ("0", "1", "2", "3", "z")]
    for label, cap in zip(("G", "W"), captures, strict=True):
        got = {r["part"]: float(r["bpp"]) for r in rows if r["model"] == label}
        sc = cap.y_bits.shape[0] // 4
        for s in range(4):  # slice s: channels s*10 .. s*10 + 9 of the 40
            assert got[str(s)] == pytest.approx(float(cap.y_bits[s * sc : (s + 1) * sc].sum()) / (H * W), rel=1e-12)
        assert got["z"] == pytest.approx(float(cap.z_bits.sum()) / (H * W), rel=1e-12)
        assert sum(got.values()) == pytest.approx(cap.likelihood_bpp, rel=1e-9)
    # names default to the captures' model names
    assert set(figure_data(draw_slice_bits([latent_capture(models[1], image)]))["slice_bits"]["model"]) == {"wacnn"}


def test_tile_scatter_csv_is_the_tile_table(comparison, tmp_path):
    fig = draw_tile_scatter(comparison)
    _check_figure(fig, {"tiles"})
    _save(fig, tmp_path)
    rows = _read(tmp_path / "x.csv")
    assert list(rows[0]) == list(TILE_COLUMNS)
    assert len(rows) == len(comparison.tiles) == 12
    for col in TILE_COLUMNS:
        got, expected = _floats(rows, col), comparison.column(col)
        np.testing.assert_array_equal(got, expected)  # NaN (the tiles' MS-SSIM) compares equal to NaN here
    assert np.isnan(_floats(rows, "ms_ssim_a")).all()


# --------------------------------------------------------------------------- residuals
def test_residual_correlation_csv_is_the_correlation(comparison, tmp_path):
    rho = {cap.model_name: residual_correlation(cap.residual) for cap in comparison.captures}
    fig = draw_residual_correlation(rho)
    _check_figure(fig, {"residual_correlation"})
    _save(fig, tmp_path)
    rows = _read(tmp_path / "x.csv")
    assert len(rows) == 2 * 25
    for r in rows:
        dy, dx = int(r["dy"]), int(r["dx"])
        assert float(r["correlation"]) == float(rho[r["model"]][dy + 2, dx + 2])
    assert {(r["model"], int(r["dy"]), int(r["dx"])) for r in rows} == {
        (m, dy, dx) for m in rho for dy in range(-2, 3) for dx in range(-2, 3)
    }
    centre = [float(r["correlation"]) for r in rows if r["dy"] == "0" and r["dx"] == "0"]
    assert centre == pytest.approx([1.0, 1.0], abs=1e-12)
    one = draw_residual_correlation({"only": torch.eye(3, dtype=torch.float64)})  # one panel, one matrix
    assert figure_data(one)["residual_correlation"]["correlation"] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]


# --------------------------------------------------------------------------- redundancy and attention
def test_redundancy_csv_is_the_finite_window_values(attention, tmp_path):
    blocks = attention["gabic"].names()
    redundancy = {b: {name: block_redundancy(attention[name][b]) for name in ("gabic", "wacnn")} for b in blocks}
    fig = draw_redundancy(redundancy)
    _check_figure(fig, {"redundancy"})
    _save(fig, tmp_path)
    rows = _read(tmp_path / "x.csv")
    assert list(rows[0]) == ["block", "model", "measure", "where", "window", "value"]
    nan_windows = 0
    for b in blocks:
        for name in ("gabic", "wacnn"):
            stats = redundancy[b][name]
            for measure in ("cosine", "rank"):
                for when in ("in", "out"):
                    values = stats[f"{measure}_{when}"].numpy()
                    mine = [r for r in rows if (r["block"], r["model"], r["measure"], r["where"]) == (b, name, measure, when)]
                    finite = values[np.isfinite(values)]
                    nan_windows += int((~np.isfinite(values)).sum())
                    np.testing.assert_array_equal(_floats(mine, "value"), finite)
    assert nan_windows > 0  # some windows hold fewer than 2 image nodes: left out of the table
    assert len(rows) == sum(
        int(np.isfinite(redundancy[b][n][f"{m}_{w}"].numpy()).sum())
        for b in blocks
        for n in ("gabic", "wacnn")
        for m in ("cosine", "rank")
        for w in ("in", "out")
    )


def test_redundancy_csv_numbers_its_windows_as_the_block_does(attention):
    """The ``window`` column is the window's index in the block (as ``block_redundancy`` numbers it),
    also where windows before it were left out for holding fewer than 2 image nodes."""
    block = "g_a.4.conv_b.0"
    stats = {name: block_redundancy(attention[name][block]) for name in ("gabic", "wacnn")}
    assert bool(stats["gabic"]["cosine_in"][0].isnan())  # GABIC's first window holds one image node
    table = figure_data(draw_redundancy({block: stats}))["redundancy"]
    for i in range(len(table["value"])):
        values = stats[table["model"][i]][f"{table['measure'][i]}_{table['where'][i]}"]
        assert table["value"][i] == float(values[table["window"][i]])


def test_attention_csv_means_are_the_per_head_means(attention, tmp_path):
    blocks = attention["gabic"].names()
    comparisons = {b: attention_comparison(attention["gabic"][b], attention["wacnn"][b]) for b in blocks}
    fig = draw_attention_comparison(comparisons)
    _check_figure(fig, {"attention_per_head"})
    _save(fig, tmp_path)
    rows = _read(tmp_path / "x.csv")
    assert list(rows[0]) == ["block", "model", "measure", "head", "mean", "median", "nodes"]
    heads = attention["gabic"][blocks[0]].heads
    assert len(rows) == len(blocks) * 2 * 3 * heads
    for r in rows:
        kind = {"GABIC": "graph", "WACNN": "window"}[r["model"]]
        values = comparisons[r["block"]][kind][r["measure"]][int(r["head"])].numpy()
        finite = values[np.isfinite(values)]
        assert int(r["nodes"]) == finite.size > 0
        assert float(r["mean"]) == pytest.approx(float(finite.mean()), rel=1e-12)
        assert float(r["median"]) == pytest.approx(float(np.median(finite)), rel=1e-12)
    # GABIC's own graph: all its attention on its kNN set
    shares = [float(r["mean"]) for r in rows if r["model"] == "GABIC" and r["measure"] == "knn_share"]
    assert shares == pytest.approx([1.0] * len(shares), abs=1e-9)
    named = figure_data(draw_attention_comparison({blocks[1]: comparisons[blocks[1]]}, names={"window": "Swin"}))
    assert set(named["attention_per_head"]["model"]) == {"GABIC", "Swin"}


def test_attention_csv_skips_nan_nodes():
    """A head whose values are partly NaN: the mean and median are over its finite values, the
    node count is theirs; a head with no finite value gets NaN."""
    per_head = torch.tensor([[1.0, math.nan, 3.0, 8.0], [math.nan] * 4], dtype=torch.float64)
    side = {"knn_share": per_head, "weighted_distance": per_head, "entropy": per_head, "entropy_max": 1.0, "uniform_share": 0.5}
    fig = draw_attention_comparison({"b": {"k": 2, "graph": side, "window": side}})
    table = figure_data(fig)["attention_per_head"]
    first = [i for i in range(len(table["head"])) if table["head"][i] == 0]
    assert all(table["mean"][i] == 4.0 and table["median"][i] == 3.0 and table["nodes"][i] == 3 for i in first)
    second = [i for i in range(len(table["head"])) if table["head"][i] == 1]
    assert all(math.isnan(table["mean"][i]) and table["nodes"][i] == 0 for i in second)


def test_bits_of_one_model_csv_is_each_slice_and_z(comparison, tmp_path):
    cap = comparison.captures[0]
    fig = draw_bits(cap, comparison.measurements[0].bpp)
    paths = {p.name: p for p in _save(fig, tmp_path)}
    assert set(figure_data(fig)) == {"all_slices", "z", *(f"slice_{i}" for i in range(cap.num_slices))}
    for i in range(cap.num_slices):
        values = _floats(_read(paths[f"x.slice_{i}.csv"]), "bits_per_pixel")
        assert np.array_equal(values, (cap.slice_bits[i].double() / 256.0).numpy().reshape(-1))
    z = _read(paths["x.z.csv"])
    assert np.array_equal(_floats(z, "bits_per_pixel"), (cap.z_map.double() / 4096.0).numpy().reshape(-1))
    assert float(z[0]["y"]) == -TOP + 32 and float(z[0]["x"]) == -LEFT + 32  # the centre of the first 64x64 cell
    total = _floats(_read(paths["x.all_slices.csv"]), "bits_per_pixel").sum() * 256 + _floats(z, "bits_per_pixel").sum() * 4096
    assert total == pytest.approx(cap.total_bits, rel=1e-12)
    assert f"{cap.bpp:.4f} bpp from the likelihoods, {comparison.measurements[0].bpp:.4f} bpp coded" in fig._suptitle.get_text()


def test_attention_maps_csv_is_the_per_node_values_on_the_map(attention, tmp_path):
    from gabic.viz import node_map

    block = "g_a.8.conv_b.0"
    pair = {"graph": attention["gabic"][block], "window": attention["wacnn"][block]}
    comp = attention_comparison(pair["graph"], pair["window"])
    fig = draw_attention_maps(comp, pair, head=1)
    paths = {p.name: p for p in _save(fig, tmp_path)}
    for kind, name in (("graph", "GABIC"), ("window", "WACNN")):
        for measure in ("knn_share", "weighted_distance", "entropy"):
            rows = _read(paths[f"x.{name}_{measure}.csv"])
            expected = node_map(pair[kind], comp[kind]["per_node"][measure][:, 1]).double().numpy().reshape(-1)
            np.testing.assert_array_equal(_floats(rows, measure), expected)
    with pytest.raises(ValueError, match="head must be 'mean' or an integer"):
        draw_attention_maps(comp, pair, head=99)
