"""The latent capture (bits, Gaussian parameters, tiles) and the residual correlation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gabic.analysis import LatentCapture, latent_capture, residual_correlation
from gabic.measurement import forward_padded
from tests.conftest import small_model

#: A 100x70 (H x W) image pads to 128x128 at (top, left) = ((128 - 100) // 2, (128 - 70) // 2).
H, W, TOP, LEFT = 100, 70, 14, 29


def _loud(name: str):
    """A small model whose latent is 40 times louder than at initialisation, so that many symbols
    are non-zero and y costs bits (an untrained small model's y rounds to its means everywhere)."""
    model = small_model(name)
    model.g_a.register_forward_hook(lambda module, args, out: out * 40)
    return model


@pytest.fixture(scope="module", params=["gabic", "wacnn"])
def model(request):
    return _loud(request.param)


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    torch.manual_seed(3)
    smooth = F.interpolate(torch.rand(1, 3, 13, 9), size=(H, W), mode="bilinear", align_corners=False)
    return (smooth + 0.1 * torch.rand(1, 3, H, W)).clamp(0, 1)


@pytest.fixture(scope="module")
def lat(model, image) -> LatentCapture:
    return latent_capture(model, image)


def _reference_forward(model, x: torch.Tensor) -> dict:
    """The slice loop of ``ChannelContextCodec.forward`` as it was before ``entropy_parameters``
    was factored out of it, written out on the model's modules."""
    y = model.analysis(x)
    z = model.h_a(y)
    _, z_lik = model.entropy_bottleneck(z)
    offset = model.entropy_bottleneck._get_medians()
    z_hat = torch.round(z - offset) + offset
    scales, means = model.h_scale_s(z_hat), model.h_mean_s(z_hat)
    decoded, liks = [], []
    for i, y_slice in enumerate(y.chunk(model.num_slices, 1)):
        support = decoded[: model.max_support_slices]
        mean_support = torch.cat([means, *support], dim=1)
        mu = model.cc_mean_transforms[i](mean_support)[:, :, : y.shape[2], : y.shape[3]]
        scale = model.cc_scale_transforms[i](torch.cat([scales, *support], dim=1))[:, :, : y.shape[2], : y.shape[3]]
        _, lik = model.gaussian_conditional(y_slice, scale, mu)
        liks.append(lik)
        y_hat = torch.round(y_slice - mu) + mu
        lrp = model.lrp_transforms[i](torch.cat([mean_support, y_hat], dim=1))
        decoded.append(y_hat + 0.5 * torch.tanh(lrp))
    return {"x_hat": model.synthesis(torch.cat(decoded, dim=1)), "likelihoods": {"y": torch.cat(liks, dim=1), "z": z_lik}}


# --------------------------------------------------------------------------- the model's pass
@torch.no_grad()
def test_forward_is_unchanged_and_entropy_parameters_is_the_same_pass(model, image):
    xp = F.pad(image, (LEFT, 128 - W - LEFT, TOP, 128 - H - TOP))
    ref = _reference_forward(model, xp)
    out = model(xp)
    params = model.entropy_parameters(xp)
    for got in (out, params):
        assert torch.equal(got["x_hat"], ref["x_hat"])
        assert torch.equal(got["likelihoods"]["y"], ref["likelihoods"]["y"])
        assert torch.equal(got["likelihoods"]["z"], ref["likelihoods"]["z"])
    assert set(out) == {"x_hat", "likelihoods"}
    M = model.num_slices * model.slice_channels
    for key in ("y", "y_hat", "means", "scales"):
        assert params[key].shape == (1, M, 8, 8)
    torch.testing.assert_close(params["y"], model.analysis(xp))


# --------------------------------------------------------------------------- the capture
def test_capture_geometry(lat, model):
    assert lat.model_name == model.name
    assert (lat.image_size, lat.padded_size, lat.offset) == ((H, W), (128, 128), (TOP, LEFT))
    assert lat.y_hat.shape == lat.means.shape == lat.scales.shape == lat.y_bits.shape == (40, 8, 8)
    assert lat.z_bits.shape == (32, 2, 2)
    assert lat.x_hat.shape == (1, 3, H, W)
    assert lat.extent("y") == lat.extent("z") == (-TOP, -LEFT, 128 - TOP, 128 - LEFT)
    with pytest.raises(ValueError, match="level"):
        lat.extent("x")


def test_bits_add_up_to_the_rate(lat, model, image):
    assert lat.y_total > 100  # the loud latent costs bits: the sums below are not of zeros
    torch.testing.assert_close(float(lat.bits_map.sum() + lat.z_map.sum()), lat.total_bits, rtol=1e-12, atol=0)
    _, _, bpp = forward_padded(model, image)
    assert lat.bpp == pytest.approx(bpp, rel=1e-5)
    assert lat.likelihood_bpp == pytest.approx(bpp, rel=1e-12)
    with torch.no_grad():
        out = model(F.pad(image, (LEFT, 128 - W - LEFT, TOP, 128 - H - TOP)))
    by_hand = sum(float(-torch.log2(v.double()).sum()) for v in out["likelihoods"].values()) / (H * W)
    assert lat.bpp == pytest.approx(by_hand, rel=1e-9)


def test_slice_bits(lat):
    sc = lat.slice_channels
    assert lat.slice_bits.shape == (lat.num_slices, 8, 8)
    torch.testing.assert_close(lat.slice_bits.sum(0), lat.bits_map, rtol=1e-12, atol=1e-9)
    for i in range(lat.num_slices):
        torch.testing.assert_close(lat.slice_bits[i], lat.y_bits[i * sc : (i + 1) * sc].sum(0))


def test_tile_bits(lat):
    tiles = lat.tile_bits(64)
    assert tiles.shape == (2, 2)
    assert float(tiles.sum()) == pytest.approx(lat.total_bits, rel=1e-12)
    # tile (1, 0): latent rows 4..7, columns 0..3 (16 px each) and hyper-latent position (1, 0)
    expected = float(lat.y_bits[:, 4:8, 0:4].sum() + lat.z_bits[:, 1, 0].sum())
    assert float(tiles[1, 0]) == pytest.approx(expected, rel=1e-12)
    assert lat.tile_bits(128).shape == (1, 1)
    assert lat.tile_bits(192).shape == (1, 1)  # cut at the padded image's edge
    assert float(lat.tile_bits(192).sum()) == pytest.approx(lat.total_bits, rel=1e-12)
    for bad in (32, 0, 100, 64.0):
        with pytest.raises(ValueError, match="multiple of 64"):
            lat.tile_bits(bad)


def test_symbols_scales_and_bits_agree(lat, model):
    d = lat.y_hat - lat.means
    torch.testing.assert_close(d, d.round(), atol=1e-4, rtol=0)
    assert bool((d.abs() > 0.5).any())  # some symbols are not zero
    bound = float(model.gaussian_conditional.lower_bound_scale.bound)
    assert float(lat.scales.min()) >= bound
    torch.testing.assert_close(lat.residual, d / lat.scales)
    # the bits are the Gaussian likelihood of the symbol under (means, scales), written out by hand
    v, s = d.double().abs(), lat.scales.double()

    def phi(t):
        return 0.5 * torch.erfc(-t / math.sqrt(2))

    lik = (phi((0.5 - v) / s) - phi((-0.5 - v) / s)).clamp_min(1e-9)
    torch.testing.assert_close(lat.y_bits, -torch.log2(lik), atol=2e-3, rtol=1e-3)


def test_latent_capture_refuses_other_models():
    with pytest.raises(ValueError, match="learned codec"):
        latent_capture(torch.nn.Identity(), torch.rand(1, 3, 64, 64))


# --------------------------------------------------------------------------- residual correlation
def test_residual_correlation_of_white_noise():
    torch.manual_seed(0)
    rho = residual_correlation(torch.randn(8, 64, 64), max_offset=2)
    assert rho.shape == (5, 5)
    assert float(rho[2, 2]) == pytest.approx(1.0, abs=1e-12)
    off = rho.clone()
    off[2, 2] = 0
    assert float(off.abs().max()) < 0.05


def test_residual_correlation_of_a_smooth_field():
    torch.manual_seed(0)
    noise = torch.randn(4, 1, 96, 96)
    smooth = F.avg_pool2d(noise, 15, stride=1)[:, 0]  # (4, 82, 82): a 15x15 box blur, correlation 14/15 at offset 1
    rho = residual_correlation(smooth, max_offset=1)
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        assert float(rho[1 + dy, 1 + dx]) > 0.9
    torch.testing.assert_close(rho, rho.flip(0, 1))  # rho(d) == rho(-d)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    wave = torch.cos(2 * math.pi * (yy + xx) / 32)[None]
    rho = residual_correlation(wave, max_offset=1)
    assert float(rho[1, 2]) > 0.9 and float(rho[2, 1]) > 0.9


def test_residual_correlation_by_hand():
    """Rows [1, 2, 3, 4] twice: standardised (z = (v - 2.5) / sqrt(1.25)); horizontal neighbours give
    (-1.5 * -0.5 + -0.5 * 0.5 + 0.5 * 1.5) / 3 / 1.25 = 1/3, vertical ones (equal rows) 1, diagonal
    ones 1/3; a constant channel is left out."""
    row = torch.tensor([1.0, 2.0, 3.0, 4.0])
    field = torch.stack([torch.stack([row, row]), torch.full((2, 4), 7.0)])
    third = 1 / 3
    expected = torch.tensor([[third, 1.0, third]] * 3, dtype=torch.float64)
    torch.testing.assert_close(residual_correlation(field, max_offset=1), expected)
    assert bool(residual_correlation(torch.ones(2, 4, 4), 1).isnan().all())
    with pytest.raises(ValueError, match="max_offset"):
        residual_correlation(field, max_offset=2)
    with pytest.raises(ValueError, match=r"\(C, h, w\)"):
        residual_correlation(row)
