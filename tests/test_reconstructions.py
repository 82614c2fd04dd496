"""Error maps, the worst crop, the reconstruction and stream-size figures, per-image tables."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
from PIL import Image

from gabic.errors import ResultsError
from gabic.metrics import psnr
from gabic.reconstructions import comparison_figure, error_map, reconstruction_figure, stream_size_figure, worst_crop
from gabic.results import per_image_frame, point_labels

matplotlib.use("Agg")


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    b = a.copy()
    b[30:45, 50:70] = 255 - b[30:45, 50:70]  # a 20x15 block of large errors
    b[:5, :5] ^= 1  # and tiny ones elsewhere
    return a, b


def test_error_map_gives_the_psnr(pair):
    a, b = pair
    err = error_map(a, b)
    assert err.shape == (60, 80)
    assert 10 * math.log10(255**2 / err.mean()) == pytest.approx(psnr(a, b), abs=1e-9)
    assert err[0, 0] == pytest.approx(1.0)  # each channel off by one level


def test_worst_crop_finds_the_damaged_block(pair):
    a, b = pair
    left, top, right, bottom = worst_crop(a, b, 15)
    assert (top, bottom, right - left) == (30, 45, 15) and 50 <= left <= 55  # inside the block
    assert worst_crop(a, b, 500) == (0, 0, 80, 60)  # shrunk to the image


def test_worst_crop_equals_brute_force():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    err = error_map(a, b)
    sums = {(x, y): err[y : y + 7, x : x + 7].sum() for y in range(23 - 6) for x in range(31 - 6)}
    best = max(sums.values())
    left, top, _, _ = worst_crop(a, b, 7)
    assert sums[left, top] == pytest.approx(best)


def test_bad_input(pair):
    a, b = pair
    with pytest.raises(ValueError, match="differ in size: 80x60 vs 40x60"):
        error_map(a, b[:, :40])
    with pytest.raises(ValueError, match="decoded must be an RGB image"):
        error_map(a, b[..., 0])
    with pytest.raises(ValueError, match="size must be a positive integer"):
        worst_crop(a, b, 0)
    with pytest.raises(ValueError, match="not inside the 80x60 image"):
        reconstruction_figure(a, b, box=(70, 0, 90, 10))


def test_reconstruction_figure(pair):
    a, b = pair
    fig = reconstruction_figure(Image.fromarray(a), Image.fromarray(b), title="test")
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 6  # six panels (the colour bar holds no image)
    left, top, right, bottom = worst_crop(a, b)
    np.testing.assert_array_equal(images[3], a[top:bottom, left:right])
    np.testing.assert_array_equal(images[4], b[top:bottom, left:right])
    assert f"{psnr(a, b):.2f} dB" in fig.axes[1].get_title()
    assert fig._suptitle.get_text() == "test"


def _curve():
    return {
        "name": "GABIC (N=32)",
        "results": {"bpp": [0.1, 0.3], "psnr-rgb": [30.0, 33.0]},
        "meta": {"checkpoint": ["/x/q1.pth.tar", "/x/q2.pth.tar"], "lambda": [0.0067, 0.013]},
        "per_image": {
            "a.png": {
                "bpp": [0.1, 0.2],
                "psnr-rgb": [29.0, 32.0],
                "y_bytes": [100, 300],
                "z_bytes": [20, 30],
                "ms-ssim-rgb": [None, None],
            },
            "b.png": {
                "bpp": [0.1, 0.4],
                "psnr-rgb": [31.0, 34.0],
                "y_bytes": [90, 310],
                "z_bytes": [10, 40],
                "ms-ssim-rgb": [None, None],
            },
        },
    }


def test_per_image_frame():
    df = per_image_frame(_curve())
    assert list(df.index) == [("a.png", "q1.pth.tar"), ("a.png", "q2.pth.tar"), ("b.png", "q1.pth.tar"), ("b.png", "q2.pth.tar")]
    assert df.loc[("b.png", "q2.pth.tar"), "psnr-rgb"] == 34.0
    assert df["ms-ssim-rgb"].isna().all()
    with pytest.raises(ResultsError, match="no per-image values"):
        per_image_frame({"name": "x", "results": {"bpp": [1.0], "psnr-rgb": [30.0]}})


def test_point_labels():
    curve = _curve()
    assert point_labels(curve) == ["q1.pth.tar", "q2.pth.tar"]
    del curve["meta"]["checkpoint"]
    assert point_labels(curve) == ["lambda=0.0067", "lambda=0.013"]
    curve["meta"]["quality"] = [5, 9]
    assert point_labels(curve) == ["q=5", "q=9"]
    curve["meta"] = {"lambda": [None, 0.1]}
    assert point_labels(curve) == ["0", "1"]


def test_stream_size_figure():
    fig = stream_size_figure(_curve(), point=1)
    bars = fig.axes[0].patches
    widths = [p.get_width() for p in bars]
    assert widths == [300, 310, 30, 40]
    assert [p.get_x() for p in bars[2:]] == [300, 310]  # z stacked after y
    with pytest.raises(ValueError, match="point must be in 0..1"):
        stream_size_figure(_curve(), point=2)
    with pytest.raises(ValueError, match="not a checkpoint evaluation"):
        stream_size_figure({"name": "jpeg", "results": {"bpp": [1.0], "psnr-rgb": [30.0]}, "per_image": {"a": {"bpp": [1.0]}}})


def test_comparison_figure(pair):
    a, b = pair
    c = a.copy()
    c[0, 0] = 255 - c[0, 0]  # one pixel wrong
    fig = comparison_figure(a, {"before": b, "after": c}, bpp={"after": 0.25}, title="run")
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == [
        "original (80x60)",
        f"before: {psnr(a, b):.2f} dB",
        f"after: 0.250 bpp, {psnr(a, c):.2f} dB",
    ]
    for ax, pixels in zip(panels, (a, b, c), strict=True):
        np.testing.assert_array_equal(ax.images[0].get_array(), pixels)
    same = comparison_figure(a, {"same": a})
    assert same.axes[1].get_title() == "same: ∞ dB"
    with pytest.raises(ValueError, match="no reconstructions"):
        comparison_figure(a, {})
    with pytest.raises(ValueError, match="differ in size"):
        comparison_figure(a, {"small": b[:, :40]})
    with pytest.raises(ValueError, match=r"bpp given for \['other'\]"):
        comparison_figure(a, {"before": b}, bpp={"other": 1.0})
