"""Two models on one image, tile by tile (gabic.analysis.compare)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

import gabic.analysis.compare as compare_module
from gabic.analysis.compare import TILE_COLUMNS, ModelComparison, compare_models, gradient_energy, tile_boxes
from gabic.analysis.latent import latent_capture
from gabic.measurement import measure
from gabic.metrics import ms_ssim, psnr
from gabic.names import display_name
from tests.conftest import small_model

#: A 200x136 (W x H) image pads to 256x192 at (top, left) = ((192 - 136) // 2, (256 - 200) // 2) = (28, 28).
H, W, TOP, LEFT = 136, 200, 28, 28


def _loud(name: str, factor: float = 10.0):
    """A small model whose latent is ``factor`` times louder than at initialisation, so that its
    symbols are not all zero and y costs bits (as tests/test_analysis_latent.py does)."""
    model = small_model(name)
    model.g_a.register_forward_hook(lambda module, args, out: out * factor)
    return model


def _textured(h: int, w: int, seed: int) -> Image.Image:
    """Waves of different frequencies per channel, plus noise: texture everywhere, some tiles busier."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([127 + 90 * np.sin(xx / 7.0), 127 + 90 * np.cos(yy / 5.0), 127 + 90 * np.sin((xx + yy) / 11.0)], -1)
    base[:, : w // 3] = 0.3 * base[:, : w // 3] + 80  # a flatter band on the left
    return Image.fromarray(np.clip(base + rng.normal(0, 15, base.shape), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def gabic_model():
    return _loud("gabic")


@pytest.fixture(scope="module")
def wacnn_model():
    return _loud("wacnn")


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return _textured(H, W, seed=1)


@pytest.fixture(scope="module")
def pair(gabic_model, wacnn_model, image) -> dict[int, ModelComparison]:
    """GABIC against WACNN with 64- and 128-pixel tiles."""
    return {tile: compare_models(gabic_model, wacnn_model, image, tile=tile) for tile in (64, 128)}


# --------------------------------------------------------------------------- a model against itself
def test_a_model_against_itself_differs_nowhere(gabic_model, image):
    c = compare_models(gabic_model, gabic_model, image, tile=64)
    assert c.names == ("GABIC (1)", "GABIC (2)")  # the display names of the architectures, numbered (pair_names)
    assert len(c.tiles) == 12
    assert (c.column("delta_bpp") == 0).all()
    assert (c.column("delta_psnr") == 0).all()
    assert np.array_equal(c.column("bits_a"), c.column("bits_b"))
    assert np.array_equal(c.column("psnr_a"), c.column("psnr_b"))
    assert c.column("bits_a").min() > 10  # the equal bits are not zeros
    assert c.difference.shape == (192 // 16, 256 // 16)
    assert bool((c.difference == 0).all())
    s = c.summary()
    assert s["a"]["bpp"] == s["b"]["bpp"] and s["a"]["psnr_rgb"] == s["b"]["psnr_rgb"]
    assert s["share_tiles_b_fewer_bits"] == 0.0


def test_two_copies_of_one_model_differ_nowhere(image):
    """Two objects with the same weights: the same numbers (nothing depends on the object)."""
    c = compare_models(_loud("wacnn"), _loud("wacnn"), image, tile=128, names=("first", "second"))
    assert c.names == ("first", "second")
    assert (c.column("delta_bpp") == 0).all() and (c.column("delta_psnr") == 0).all()
    assert bool((c.difference == 0).all())


# --------------------------------------------------------------------------- tiles and their bits
#: The tiles by hand: the padded 192x256 grid cut every ``tile`` pixels, shifted by (28, 28), clipped to 136x200.
EXPECTED_BOXES = {
    64: [
        (i, j, (t, lft, b, r))
        for i, (t, b) in enumerate(((0, 36), (36, 100), (100, 136)))
        for j, (lft, r) in enumerate(((0, 36), (36, 100), (100, 164), (164, 200)))
    ],
    128: [
        (i, j, (t, lft, b, r)) for i, (t, b) in enumerate(((0, 100), (100, 136))) for j, (lft, r) in enumerate(((0, 100), (100, 200)))
    ],
}


@pytest.mark.parametrize("tile", [64, 128])
def test_tile_boxes_partition_the_image(pair, tile):
    c = pair[tile]
    boxes = tile_boxes(c.captures[0], tile)
    assert boxes == EXPECTED_BOXES[tile]
    cover = np.zeros((H, W), dtype=int)
    for _, _, (t, lft, b, r) in boxes:
        cover[t:b, lft:r] += 1
    assert (cover == 1).all()  # each pixel in exactly one tile
    rows = [(row["tile_row"], row["tile_col"], (row["top"], row["left"], row["bottom"], row["right"])) for row in c.tiles]
    assert rows == EXPECTED_BOXES[tile]
    assert int(c.column("pixels").sum()) == H * W
    assert all(row["pixels"] == (row["bottom"] - row["top"]) * (row["right"] - row["left"]) for row in c.tiles)


@pytest.mark.parametrize("tile", [64, 128])
def test_tiles_bits_sum_to_the_likelihood_rate(pair, tile):
    c = pair[tile]
    assert c.tile == tile
    assert list(c.tiles[0]) == list(TILE_COLUMNS)
    for key, cap, m in zip("ab", c.captures, c.measurements, strict=True):
        bits = c.column(f"bits_{key}")
        assert bits.sum() == pytest.approx(cap.total_bits, rel=1e-12)
        assert cap.total_bits == pytest.approx(cap.likelihood_bpp * H * W, rel=1e-9)
        assert cap.total_bits == pytest.approx(m.bpp_likelihoods * H * W, rel=1e-5)  # the measurement's own forward pass
        # each tile by hand: the y positions of its (tile/16)^2 cells and the z positions of its (tile/64)^2 cells
        cy, cz = tile // 16, tile // 64
        for row, got in zip(c.tiles, bits, strict=True):
            i, j = row["tile_row"], row["tile_col"]
            expected = float(
                cap.y_bits[:, i * cy : (i + 1) * cy, j * cy : (j + 1) * cy].sum()
                + cap.z_bits[:, i * cz : (i + 1) * cz, j * cz : (j + 1) * cz].sum()
            )
            assert got == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(c.column(f"bpp_{key}"), bits / c.column("pixels"), rtol=1e-15)
    assert not np.array_equal(c.column("bits_a"), c.column("bits_b"))  # two different models
    np.testing.assert_allclose(c.column("delta_bpp"), c.column("bpp_b") - c.column("bpp_a"), rtol=1e-15)
    np.testing.assert_allclose(c.column("delta_psnr"), c.column("psnr_b") - c.column("psnr_a"), rtol=1e-15)


def test_maps_and_their_difference(pair):
    c = pair[64]
    a, b = c.bits_maps
    assert a.shape == b.shape == (12, 16)
    assert torch.equal(a, c.captures[0].y_bits.sum(0)) and torch.equal(b, c.captures[1].y_bits.sum(0))
    assert torch.equal(c.difference, b - a)
    assert bool((c.difference != 0).any())


def test_tile_psnr_is_that_of_the_decoded_crop(pair, image):
    c = pair[64]
    original = np.asarray(image)
    for key, m in zip("ab", c.measurements, strict=True):
        decoded = np.asarray(m.decoded)
        assert decoded.shape == original.shape
        for row in c.tiles:
            t, lft, b, r = row["top"], row["left"], row["bottom"], row["right"]
            assert row[f"psnr_{key}"] == psnr(original[t:b, lft:r], decoded[t:b, lft:r])
            mse = np.mean((original[t:b, lft:r].astype(np.float64) - decoded[t:b, lft:r]) ** 2)
            assert row[f"psnr_{key}"] == pytest.approx(10 * math.log10(255**2 / mse), rel=1e-12)
            assert math.isnan(row[f"ms_ssim_{key}"])  # tiles under 161 pixels a side
    for row in c.tiles:
        crop = original[row["top"] : row["bottom"], row["left"] : row["right"]]
        assert row["gradient_energy"] == gradient_energy(crop)


def test_ms_ssim_only_on_tiles_of_161_pixels_or_more(gabic_model, wacnn_model):
    img = _textured(192, 192, seed=2)  # pads to itself: one 192-pixel tile covers it all
    c = compare_models(gabic_model, wacnn_model, img, tile=192)
    assert len(c.tiles) == 1
    (row,) = c.tiles
    assert (row["top"], row["left"], row["bottom"], row["right"], row["pixels"]) == (0, 0, 192, 192, 192 * 192)
    for key, m in zip("ab", c.measurements, strict=True):
        assert math.isfinite(row[f"ms_ssim_{key}"])
        assert row[f"ms_ssim_{key}"] == pytest.approx(ms_ssim(np.asarray(img), np.asarray(m.decoded)), rel=1e-12)
        assert row[f"ms_ssim_{key}"] == pytest.approx(m.ms_ssim_rgb, rel=1e-12)
        assert row[f"bits_{key}"] == pytest.approx(c.captures["ab".index(key)].total_bits, rel=1e-12)
    small = compare_models(gabic_model, wacnn_model, img, tile=64)
    assert len(small.tiles) == 9
    assert np.isnan(small.column("ms_ssim_a")).all() and np.isnan(small.column("ms_ssim_b")).all()


def test_tiles_of_192_on_a_short_image_have_no_ms_ssim(gabic_model, image):
    c = compare_models(gabic_model, gabic_model, image, tile=192)
    # the padded 192x256 image: tiles (0, 0) and (0, 1), 136 pixels tall
    assert [(r["top"], r["left"], r["bottom"], r["right"]) for r in c.tiles] == [(0, 0, 136, 164), (0, 164, 136, 200)]
    assert np.isnan(c.column("ms_ssim_a")).all()


# --------------------------------------------------------------------------- texture
def test_gradient_energy_by_hand():
    assert gradient_energy(np.full((5, 7, 3), 93, dtype=np.uint8)) == 0.0
    ramp = np.repeat(np.tile(np.arange(10, dtype=np.uint8), (6, 1))[..., None], 3, axis=2)  # luma 0, 1, 2, ... along x
    assert gradient_energy(ramp) == pytest.approx(1.0, abs=1e-12)
    assert gradient_energy(ramp.transpose(1, 0, 2)) == pytest.approx(1.0, abs=1e-12)  # the same along y
    assert gradient_energy(2 * ramp) == pytest.approx(4.0, abs=1e-12)
    # grey [[0, 3], [4, 0]]: dx = 3, -4 -> mean 12.5; dy = 4, -3 -> mean 12.5
    grey = np.repeat(np.array([[0, 3], [4, 0]], dtype=np.uint8)[..., None], 3, axis=2)
    assert gradient_energy(grey) == pytest.approx(25.0, abs=1e-12)
    assert gradient_energy(Image.fromarray(grey)) == pytest.approx(25.0, abs=1e-12)
    # a red pixel beside a black one: luma 0.299 * 255 = 76.245, one horizontal difference, no vertical one
    red = np.array([[[255, 0, 0], [0, 0, 0]]], dtype=np.uint8)
    assert gradient_energy(red) == pytest.approx(76.245**2, rel=1e-12)
    # blue over green: luma 0.114 * 255 and 0.587 * 255
    column = np.array([[[0, 0, 255]], [[0, 255, 0]]], dtype=np.uint8)
    assert gradient_energy(column) == pytest.approx(((0.587 - 0.114) * 255) ** 2, rel=1e-12)
    assert math.isnan(gradient_energy(np.zeros((1, 1, 3))))


@pytest.mark.parametrize("shape", [(4, 4), (4, 4, 4), (4, 4, 1), (2, 4, 4, 3)])
def test_gradient_energy_refuses_other_shapes(shape):
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        gradient_energy(np.zeros(shape))


# --------------------------------------------------------------------------- bad tiles, the summary
def test_bad_tile_is_refused_before_the_coding(gabic_model, image, monkeypatch, pair):
    def no_coding(*args, **kwargs):
        raise AssertionError("coded before the tile was checked")

    monkeypatch.setattr(compare_module, "measure", no_coding)
    for tile in (32, 100, 0, True):
        with pytest.raises(ValueError, match="tile"):
            compare_models(gabic_model, gabic_model, image, tile=tile)
    for tile in (32, 100, 0, True, 64.0, -64, "64"):
        with pytest.raises(ValueError, match="tile"):
            tile_boxes(pair[64].captures[0], tile)


def test_summary_matches_an_independent_measurement(pair, gabic_model, wacnn_model, image):
    for tile in (64, 128):
        s = pair[tile].summary()
        assert (s["tile"], s["tiles"]) == (tile, len(EXPECTED_BOXES[tile]))
        for key, model in (("a", gabic_model), ("b", wacnn_model)):
            m = measure(model, image)
            assert s[key]["name"] == display_name(model.name)
            assert s[key]["bpp"] == m.bpp
            assert s[key]["psnr_rgb"] == m.psnr_rgb
            assert math.isnan(s[key]["ms_ssim_rgb"])  # the image is 136 pixels tall
            assert s[key]["bpp_likelihoods"] == pytest.approx(latent_capture(model, image).bpp, rel=1e-12)
            assert s[key]["bpp_likelihoods"] == pytest.approx(m.bpp_likelihoods, rel=1e-5)
        assert s["a"]["bpp"] != s["b"]["bpp"]
        # the share of tiles where WACNN spends fewer bits, from the captures' own tile sums
        bits_a, bits_b = (c.tile_bits(tile).reshape(-1) for c in pair[tile].captures)
        kept = [i * math.ceil(256 / tile) + j for i, j, _ in EXPECTED_BOXES[tile]]
        assert s["share_tiles_b_fewer_bits"] == pytest.approx(float((bits_b[kept] < bits_a[kept]).double().mean()), abs=1e-15)


def test_column_names(pair):
    c = pair[128]
    assert c.column("tile_row").tolist() == [0, 0, 1, 1]
    with pytest.raises(KeyError, match="bits_a"):
        c.column("bits")
