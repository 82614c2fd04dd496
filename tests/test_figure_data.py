"""Every figure of gabic carries the numbers it draws: saved with save_figure, they come back as CSV
beside the figure, equal to the inputs (results files, captures, images, histories)."""

from __future__ import annotations

import csv
import inspect
import math
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gabic import plots, reconstructions, viz  # noqa: E402
from gabic.metrics import psnr  # noqa: E402
from gabic.results import load, points  # noqa: E402
from gabic.train import figures as train_figures  # noqa: E402
from gabic.viz import drawing  # noqa: E402
from tests.conftest import sample_capture  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The modules whose public functions draw matplotlib figures, and the functions this file checks.
MODULES = (plots.figures, reconstructions, drawing, train_figures)
CHECKED = {
    "rd_figure",
    "reconstruction_figure",
    "comparison_figure",
    "stream_size_figure",
    "draw_window_grid",
    "draw_window",
    "draw_attention_matrix",
    "draw_statistics",
    "plot_k_sweep",
    "training_figure",
}


# --- the inputs of each figure, and one way to build each figure from them ------------------------
# Shared with tests/test_figure_fonts.py, which builds every figure again to check its type sizes.

#: A measured curve, stored out of bpp order, drawn against two published ones.
RD_OURS = {
    "name": "gabic (ours)",
    "results": {"bpp": [0.61, 0.18, 0.35], "psnr-rgb": [34.2, 29.1, 31.8]},  # stored out of bpp order
    "meta": {"kind": "measured", "lambda": [0.025, 0.0067, 0.013]},
}
RD_CURVES = (RD_OURS, "jpeg", "stf_mse")
#: The crop and rate of the reconstruction figure; the bpp of the comparison figure.
BOX = (10, 5, 30, 25)
RECONSTRUCTION_BPP = 0.42
COMPARISON_BPP = {"before": 0.3}
STREAM_PER_IMAGE = {
    "a.png": {"bpp": [0.1, 0.2], "y_bytes": [100, 300], "z_bytes": [20, 30]},
    "b.png": {"bpp": [0.1, 0.4], "y_bytes": [90, 310], "z_bytes": [10, 40]},
}
STREAM_RESULT = {"name": "GABIC", "results": {"bpp": [0.1, 0.3], "psnr-rgb": [30.0, 33.0]}, "meta": {"lambda": [0.0067, 0.013]}}
K_SWEEP_KS = [1, 3, 6, 9, 12, 15]
K_SWEEP = {
    "name": "k sweep",
    "results": {"bpp": [0.31, 0.305, 0.3, 0.302, 0.304, 0.306], "psnr-rgb": [30.1, 30.4, 30.6, 30.7, 30.65, 30.6]},
    "meta": {"knn": K_SWEEP_KS, "trained_knn": 9, "estimate": "likelihoods"},
}
TRAINING_TITLE = "run: step 5 of 5"


def make_pair() -> tuple[np.ndarray, np.ndarray]:
    """A 56x40 RGB image and a noisy copy of it (seeded)."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)
    return a, b


@cache
def make_capture():
    """The attention capture of the small GABIC on a 64x64 crop (built once, only read)."""
    return sample_capture(64)


def training_rows() -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Five training rows and one validation row of fit()'s history."""
    train = [{"step": s, "loss": 10.0 / s, "mse": 0.01, "bpp": 0.5 + 0.01 * s, "psnr": 20.0 + s, "lr": 1e-4} for s in range(1, 6)]
    val = [{"step": 5, "loss": 2.5, "mse": 0.005, "bpp": 0.52, "psnr": 24.5}]
    return train, val


def _comparison(**kwargs: Any) -> Figure:
    a, b = make_pair()
    return reconstructions.comparison_figure(a, {"before": b, "same": a}, bpp=COMPARISON_BPP, **kwargs)


def _stream_sizes(**kwargs: Any) -> Figure:
    return reconstructions.stream_size_figure({**STREAM_RESULT, "per_image": STREAM_PER_IMAGE}, point=1, **kwargs)


#: Each checked figure function, built from the inputs above: ``BUILDERS[name](**kwargs)`` passes
#: ``kwargs`` (e.g. ``width=``, ``head=``) on to the function.
BUILDERS: dict[str, Callable[..., Figure]] = {
    "rd_figure": lambda **kw: plots.rd_figure(list(RD_CURVES), **kw),
    "reconstruction_figure": lambda **kw: reconstructions.reconstruction_figure(*make_pair(), box=BOX, bpp=RECONSTRUCTION_BPP, **kw),
    "comparison_figure": _comparison,
    "stream_size_figure": _stream_sizes,
    "draw_window_grid": lambda **kw: viz.draw_window_grid(make_capture()["g_a.4"], 1, 10, **kw),
    "draw_window": lambda **kw: viz.draw_window(make_capture()["g_a.8"], 0, 5, **kw),
    "draw_attention_matrix": lambda **kw: viz.draw_attention_matrix(make_capture()["g_a.4"], 3, head=1, **kw),
    "draw_statistics": lambda **kw: viz.draw_statistics(make_capture(), **kw),
    "plot_k_sweep": lambda **kw: viz.plot_k_sweep(K_SWEEP, **kw),
    "training_figure": lambda **kw: train_figures.training_figure(*training_rows(), title=TRAINING_TITLE, **kw),
}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def number(cell: str) -> float | None:
    return None if cell == "" else float(cell)


def save(fig, tmp_path: Path, stem: str) -> dict[str, list[dict[str, str]]]:
    """Save ``fig`` as PNG with its data; the CSV tables by name (``""`` for a figure's only table)."""
    paths = plots.save_figure(fig, tmp_path / stem, formats=("png",), dpi=40)
    assert paths[0].name == f"{stem}.png" and paths[0].is_file()
    tables = {}
    for path in paths[1:]:
        assert path.suffix == ".csv" and path.is_file()
        name = path.name.removeprefix(f"{stem}.").removesuffix(".csv")
        tables["" if name == "csv" or path.name == f"{stem}.csv" else name] = read_csv(path)
    assert tables, f"{stem}: no data written beside the figure"
    return tables


def test_every_figure_function_is_checked():
    drawn = {
        name
        for module in MODULES
        for name, fn in inspect.getmembers(module, inspect.isfunction)
        if fn.__module__ == module.__name__ and not name.startswith("_") and str(inspect.signature(fn).return_annotation) == "Figure"
    }
    assert drawn == CHECKED, "a figure function without a data check here (or one gone)"
    assert set(BUILDERS) == CHECKED, "a checked figure function without a builder (or one gone)"


# --- RD figures ---------------------------------------------------------------------------------


def test_rd_figure_data_are_the_results_points(tmp_path):
    ours = RD_OURS
    (table,) = save(BUILDERS["rd_figure"](), tmp_path, "rd").values()
    assert list(table[0]) == ["curve", "method", "kind", "point", "bpp", "psnr_db", "lambda"]
    expected = [("GABIC (ours)", "measured", ours), ("JPEG (published)", "published", load("jpeg"))]
    expected.append(("STF (mse) (published)", "published", load("stf_mse")))
    for label, kind, result in expected:
        rows = [r for r in table if r["curve"] == label]
        assert {r["kind"] for r in rows} == {kind}
        assert [(float(r["bpp"]), float(r["psnr_db"])) for r in rows] == points(result), label  # sorted by bpp, pairs kept
        for r in rows:  # each point keeps its index into the file, and its lambda
            i = int(r["point"])
            assert (float(r["bpp"]), float(r["psnr_db"])) == (result["results"]["bpp"][i], result["results"]["psnr-rgb"][i])
            lam = (result.get("meta") or {}).get("lambda")
            assert number(r["lambda"]) == (lam[i] if isinstance(lam, list) else None)
    (ms,) = save(plots.rd_figure(["jpeg", "stf_mse"], metric="ms-ssim-db-rgb"), tmp_path, "rd_ms").values()
    assert list(ms[0])[:6] == ["curve", "method", "kind", "point", "bpp", "ms_ssim_db"] and {r["curve"] for r in ms} == {
        "JPEG (published)"
    }
    assert [(float(r["bpp"]), float(r["ms_ssim_db"])) for r in ms] == points(load("jpeg"), "ms-ssim-db-rgb")


def test_rd_figure_into_given_axes_attaches_to_their_figure(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure()
    left, right = fig.subplots(1, 2)
    plots.rd_figure("jpeg", ax=left)
    plots.rd_figure("webp", ax=right)
    tables = save(fig, tmp_path, "two")
    assert sorted(tables) == ["rd", "rd_2"]
    assert [float(r["bpp"]) for r in tables["rd_2"]] == [b for b, _ in points(load("webp"))]


# --- decoded images -----------------------------------------------------------------------------


@pytest.fixture
def pair():
    return make_pair()


def test_reconstruction_figure_data(pair, tmp_path):
    a, b = pair
    box = (10, 5, 30, 25)
    assert (box, RECONSTRUCTION_BPP) == (BOX, 0.42)
    (table,) = save(BUILDERS["reconstruction_figure"](), tmp_path, "rec").values()
    err = ((a.astype(float) - b.astype(float)) ** 2).mean(axis=2)  # written out here, not error_map
    image, crop = table
    assert (image["region"], crop["region"]) == ("image", "crop")
    assert [int(image[k]) for k in ("left", "top", "right", "bottom")] == [0, 0, 56, 40]
    assert [int(crop[k]) for k in ("left", "top", "right", "bottom")] == list(box)
    assert float(image["bpp"]) == 0.42 and crop["bpp"] == ""
    assert float(image["psnr_db"]) == pytest.approx(10 * math.log10(255**2 / err.mean()), abs=1e-9)
    assert float(crop["psnr_db"]) == pytest.approx(psnr(a[5:25, 10:30], b[5:25, 10:30]), abs=1e-12)
    assert float(image["mse"]) == pytest.approx(err.mean()) and float(crop["mse"]) == pytest.approx(err[5:25, 10:30].mean())
    assert float(image["max_squared_error"]) == err.max() and float(crop["max_squared_error"]) == err[5:25, 10:30].max()
    assert float(image["colour_scale_max"]) == pytest.approx(max(np.percentile(err, 99.5), 1.0))


def test_comparison_figure_data(pair, tmp_path):
    a, b = pair
    assert COMPARISON_BPP == {"before": 0.3}
    (table,) = save(BUILDERS["comparison_figure"](), tmp_path, "cmp").values()
    assert [r["panel"] for r in table] == ["original", "before", "same"]
    assert table[0]["psnr_db"] == "" and table[0]["bpp"] == ""
    assert float(table[1]["psnr_db"]) == psnr(a, b) and float(table[1]["bpp"]) == 0.3
    assert table[2]["psnr_db"] == "inf" and float(table[2]["mse"]) == 0.0 and table[2]["bpp"] == ""
    assert {(int(r["width"]), int(r["height"])) for r in table} == {(56, 40)}


def test_stream_size_figure_data(tmp_path):
    per_image = STREAM_PER_IMAGE
    (table,) = save(BUILDERS["stream_size_figure"](), tmp_path, "sizes").values()
    assert [r["image"] for r in table] == ["a.png", "b.png"]
    for r in table:
        values = per_image[r["image"]]
        assert (int(r["y_bytes"]), int(r["z_bytes"])) == (values["y_bytes"][1], values["z_bytes"][1])
        assert int(r["total_bytes"]) == values["y_bytes"][1] + values["z_bytes"][1]
        assert float(r["z_share"]) == values["z_bytes"][1] / (values["y_bytes"][1] + values["z_bytes"][1])
        assert float(r["bpp"]) == values["bpp"][1] and r["point"] == "1" and r["setting"] == "lambda=0.013"


# --- attention --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cap():
    return make_capture()


def test_window_grid_data(cap, tmp_path):
    block = cap["g_a.4"]
    (table,) = save(BUILDERS["draw_window_grid"](), tmp_path, "grid").values()
    windows = [r for r in table if r["role"] == "window"]
    assert [int(r["window"]) for r in windows] == list(range(block.num_windows))
    for r in windows:
        assert tuple(int(r[k]) for k in ("top", "left", "bottom", "right")) == viz.window_box(block, int(r["window"]))
    (query,) = [r for r in table if r["role"] == "query_node"]
    assert tuple(int(query[k]) for k in ("top", "left", "bottom", "right")) == viz.node_patch(block, 1, 10)
    neighbours = [int(r["node"]) for r in table if r["role"] == "neighbour"]
    assert neighbours == block.idx[1, 10].tolist()


@pytest.mark.parametrize("head", ["mean", 3])
def test_window_data(cap, tmp_path, head):
    block = cap["g_a.8"]
    (table,) = save(BUILDERS["draw_window"](head=head), tmp_path, "window").values()
    query, *neighbours = table
    assert (query["role"], int(query["node"]), int(query["row"]), int(query["col"]), query["weight"]) == ("query", 5, 1, 1, "")
    w = block.weights[0, :, 5]
    w = w.mean(0) if head == "mean" else w[head]
    assert [int(r["node"]) for r in neighbours] == block.idx[0, 5].tolist()
    assert [float(r["weight"]) for r in neighbours] == pytest.approx(w.tolist(), abs=1e-7)
    for r in neighbours:
        top, left, bottom, right = viz.node_patch(block, 0, int(r["node"]))
        assert (int(r["row"]), int(r["col"])) == divmod(int(r["node"]), block.window_size)
        assert (float(r["y"]), float(r["x"])) == ((top + bottom) / 2, (left + right) / 2)
        assert r["head"] == str(head) and r["window"] == "0"


def test_attention_matrix_data(cap, tmp_path):
    block = cap["g_a.4"]
    (table,) = save(BUILDERS["draw_attention_matrix"](), tmp_path, "matrix").values()
    m = viz.attention_matrix(block, 3, head=1)
    assert len(table) == block.n**2
    got = np.full((block.n, block.n), -1.0)
    for r in table:
        got[int(r["i"]), int(r["j"])] = float(r["weight"])
    np.testing.assert_array_equal(got, m)  # NaN where j is no neighbour of i, in both


def test_statistics_data(cap, tmp_path):
    tables = save(BUILDERS["draw_statistics"](), tmp_path, "stats")
    assert sorted(tables) == sorted(["statistics"] + [f"frequency_{n.removesuffix('.conv_b.0')}" for n in cap.names()])
    for name, block in cap.items():
        stats = viz.block_statistics(block)
        rows = [r for r in tables["statistics"] if r["block"] == name]
        assert [int(r["head"]) for r in rows] == list(range(block.heads))
        assert [float(r["entropy_nats"]) for r in rows] == pytest.approx(stats["entropy"].tolist(), abs=1e-6)
        assert [float(r["uniform_entropy_nats"]) for r in rows] == [math.log(block.knn)] * block.heads
        assert [float(r["mean_distance_nodes"]) for r in rows] == [stats["mean_distance"]] * block.heads
        assert [float(r["adjacent_share"]) for r in rows] == [stats["adjacent_share"]] * block.heads
        fmap = torch.zeros(block.resolution, dtype=torch.float64)
        for r in tables[f"frequency_{name.removesuffix('.conv_b.0')}"]:
            fmap[int(r["row"]), int(r["col"])] = float(r["times_chosen"])
        torch.testing.assert_close(fmap, stats["frequency_map"].double(), atol=0, rtol=0)


def test_k_sweep_data(tmp_path):
    ks, result = K_SWEEP_KS, K_SWEEP
    (table,) = save(BUILDERS["plot_k_sweep"](), tmp_path, "sweep").values()
    assert [int(r["k"]) for r in table] == ks
    assert [float(r["bpp"]) for r in table] == result["results"]["bpp"]
    assert [float(r["psnr_db"]) for r in table] == result["results"]["psnr-rgb"]
    assert [r["trained"] for r in table] == ["true" if k == 9 else "false" for k in ks]


# --- training ---------------------------------------------------------------------------------------


def test_training_figure_data(tmp_path):
    train, val = training_rows()
    fig = BUILDERS["training_figure"]()
    (table,) = save(fig, tmp_path, "training").values()
    assert [r["split"] for r in table] == ["train"] * 5 + ["validation"]
    for r, given in zip(table, train + val, strict=True):
        assert int(r["step"]) == given["step"]
        assert (float(r["loss"]), float(r["bpp"]), float(r["psnr_db"])) == (given["loss"], given["bpp"], given["psnr"])
    lines = [line for ax in fig.axes for line in ax.get_lines()]
    assert [list(line.get_ydata()) for line in lines[:2]] == [[r["loss"] for r in train], [r["loss"] for r in val]]
    empty = train_figures.training_figure([], title="starting")  # the live figure before the first step
    assert save(empty, tmp_path, "empty") == {"": []}
    with pytest.raises(ValueError, match=r"train\[0\] has no psnr"):
        train_figures.training_figure([{"step": 1, "loss": 1.0, "bpp": 0.1}])
