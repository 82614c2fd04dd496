"""Metrics against hand-computed values: PSNR, MS-SSIM, bpp, and Bjøntegaard BD-rate / BD-PSNR."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.integrate import trapezoid
from scipy.interpolate import pchip_interpolate

from gabic.metrics import bd_psnr, bd_rate, bpp_from_bytes, bpp_from_likelihoods, ms_ssim, ms_ssim_db, psnr

METHODS = ["cubic", "pchip"]

#: A realistic 6-point RD curve (bpp, PSNR in dB) of a learned codec on Kodak.
BPP = [0.124, 0.191, 0.298, 0.441, 0.651, 0.903]
PSNR = [29.14, 30.50, 32.15, 33.97, 35.82, 37.72]


def _scaled(values: list[float], factor: float) -> list[float]:
    return [v * factor for v in values]


def _shifted(values: list[float], offset: float) -> list[float]:
    return [v + offset for v in values]


def _mean_by_quadrature(x1, y1, x2, y2, method: str, samples: int = 200_001) -> float:
    """Mean of curve 2 minus curve 1 over the overlap, by a dense trapezoid rule (an independent check)."""
    o1, o2 = np.argsort(x1), np.argsort(x2)
    x1, y1, x2, y2 = (np.asarray(v, dtype=np.float64) for v in (x1, y1, x2, y2))
    lo, hi = max(x1.min(), x2.min()), min(x1.max(), x2.max())
    grid = np.linspace(lo, hi, samples)
    if method == "cubic":
        v1 = np.polyval(np.polyfit(x1, y1, 3), grid)
        v2 = np.polyval(np.polyfit(x2, y2, 3), grid)
    else:
        v1 = pchip_interpolate(x1[o1], y1[o1], grid)
        v2 = pchip_interpolate(x2[o2], y2[o2], grid)
    return float(trapezoid(v2 - v1, grid) / (hi - lo))


# --- PSNR, MS-SSIM, bpp -------------------------------------------------------------------------


def test_psnr_identical_images_is_inf():
    img = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    assert psnr(img, img.copy()) == math.inf


def test_psnr_off_by_one_everywhere():
    a = np.full((8, 8, 3), 100, dtype=np.uint8)
    b = a + 1
    # MSE = 1, so PSNR = 10 log10(255^2) = 48.1308...
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2), abs=1e-12)
    assert psnr(Image.fromarray(a), Image.fromarray(b)) == pytest.approx(48.130803608679106, abs=1e-9)


def test_psnr_size_mismatch():
    with pytest.raises(ValueError, match="differ in size"):
        psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))


def test_ms_ssim_identical_and_different():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (161, 161, 3), dtype=np.uint8)
    assert ms_ssim(a, a.copy()) == pytest.approx(1.0, abs=1e-6)
    noisy = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    assert 0.0 < ms_ssim(a, noisy) < 0.999


def test_ms_ssim_db_values():
    assert ms_ssim_db(0.9) == pytest.approx(10.0, abs=1e-9)
    assert ms_ssim_db(0.99) == pytest.approx(20.0, abs=1e-9)
    assert ms_ssim_db(0.999) == pytest.approx(30.0, abs=1e-9)
    assert ms_ssim_db(0.0) == 0.0
    assert ms_ssim_db(1.0) == math.inf


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan")])
def test_ms_ssim_db_rejects_values_outside_unit_interval(value):
    with pytest.raises(ValueError, match=r"value must be a linear MS-SSIM in \[0, 1\]"):
        ms_ssim_db(value)


def test_bpp_from_bytes():
    assert bpp_from_bytes(1000, 100, 80) == 1.0


def test_bpp_from_likelihoods_hand_count():
    # y: 192*16*16 = 49152 elements at p = 1/2 -> 1 bit each; z: 128*4*4 = 2048 at p = 1/4 -> 2 bits each.
    # 49152 + 4096 = 53248 bits over a 256x256 image = 0.8125 bpp.
    y = torch.full((1, 192, 16, 16), 0.5, requires_grad=True)
    z = torch.full((1, 128, 4, 4), 0.25)
    bpp = bpp_from_likelihoods({"y": y, "z": z}, 256 * 256)
    assert isinstance(bpp, float)
    assert bpp == pytest.approx(53248 / 65536, abs=1e-12)
    # One tensor: 1 bit per element.
    assert bpp_from_likelihoods(torch.full((1, 8, 4, 4), 0.5), 64) == pytest.approx(2.0, abs=1e-12)
    # A batch of two: twice the bits over twice the pixels -> the same mean bpp.
    batch = {"y": torch.full((2, 192, 16, 16), 0.5), "z": torch.full((2, 128, 4, 4), 0.25)}
    assert bpp_from_likelihoods(batch, 2 * 256 * 256) == pytest.approx(0.8125, abs=1e-12)


@pytest.mark.parametrize(
    ("likelihoods", "num_pixels", "message"),
    [
        ({"y": torch.full((4,), 0.5)}, 0, "num_pixels must be a positive integer"),
        ({"y": torch.full((4,), 0.5)}, 12.5, "num_pixels must be a positive integer"),
        ({}, 16, "empty mapping"),
        ({"y": torch.tensor([0.5, 0.0])}, 16, r"likelihoods\['y'\] must hold probabilities in \(0, 1\]"),
        ({"z": torch.tensor([0.5, 1.5])}, 16, r"likelihoods\['z'\] must hold probabilities"),
        ({"y": [0.5, 0.5]}, 16, r"likelihoods\['y'\] must be a tensor"),
        ([0.5, 0.5], 16, "must be a tensor or a mapping"),
    ],
)
def test_bpp_from_likelihoods_errors(likelihoods, num_pixels, message):
    with pytest.raises(ValueError, match=message):
        bpp_from_likelihoods(likelihoods, num_pixels)


# --- BD-rate and BD-PSNR: exact values ------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_curve_against_itself_is_zero(method):
    assert bd_rate(BPP, PSNR, BPP, PSNR, method) == pytest.approx(0.0, abs=1e-12)
    assert bd_psnr(BPP, PSNR, BPP, PSNR, method) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_rates_scaled_at_equal_psnr(method):
    # ln(0.9 R) = ln R + ln 0.9 at every PSNR, so the mean log difference is ln 0.9: exactly -10%.
    assert bd_rate(BPP, PSNR, _scaled(BPP, 0.9), PSNR, method) == pytest.approx(-10.0, abs=1e-9)
    assert bd_rate(BPP, PSNR, _scaled(BPP, 1.25), PSNR, method) == pytest.approx(25.0, abs=1e-9)
    # Swapping anchor and test inverts the ratio: 1 / 0.9 - 1 = +11.11...%.
    assert bd_rate(_scaled(BPP, 0.9), PSNR, BPP, PSNR, method) == pytest.approx(100 / 9, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_psnr_offset_at_equal_rate(method):
    assert bd_psnr(BPP, PSNR, BPP, _shifted(PSNR, 0.5), method) == pytest.approx(0.5, abs=1e-9)
    assert bd_psnr(BPP, PSNR, BPP, _shifted(PSNR, -0.25), method) == pytest.approx(-0.25, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_unsorted_input_gives_the_sorted_result(method):
    order = [3, 0, 5, 1, 4, 2]
    bpp_u = [BPP[i] for i in order]
    psnr_u = [PSNR[i] for i in order]
    test_bpp, test_psnr = _scaled(BPP, 0.87), _shifted(PSNR, 0.3)
    test_order = [5, 2, 0, 4, 1, 3]
    test_bpp_u = [test_bpp[i] for i in test_order]
    test_psnr_u = [test_psnr[i] for i in test_order]
    for fn in (bd_rate, bd_psnr):
        expected = fn(BPP, PSNR, test_bpp, test_psnr, method)
        assert fn(bpp_u, psnr_u, test_bpp_u, test_psnr_u, method) == pytest.approx(expected, abs=1e-12)
        assert fn(np.array(bpp_u), tuple(psnr_u), test_bpp_u, np.array(test_psnr_u), method) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_realistic_curve_against_shifted_copy(method):
    # 0.5 dB better at every rate: fewer bits at equal quality, so a negative BD-rate. The cubic and
    # the pchip curves agree to a few hundredths of a percent on a smooth curve like this one.
    rate = bd_rate(BPP, PSNR, BPP, _shifted(PSNR, 0.5), method)
    assert rate == pytest.approx(-10.87, abs=0.03)
    # Check the exact integration against a dense trapezoid rule over the same interpolants.
    mean_log = _mean_by_quadrature(PSNR, np.log(BPP), _shifted(PSNR, 0.5), np.log(BPP), method)
    assert rate == pytest.approx((math.exp(mean_log) - 1) * 100, abs=1e-7)
    # 10% fewer bits at every quality: a higher PSNR at equal rate.
    gain = bd_psnr(BPP, PSNR, _scaled(BPP, 0.9), PSNR, method)
    assert gain == pytest.approx(0.454, abs=0.002)
    assert gain == pytest.approx(_mean_by_quadrature(np.log(BPP), PSNR, np.log(_scaled(BPP, 0.9)), PSNR, method), abs=1e-7)
    # A partial overlap (test curve 2 dB higher: the integral covers [31.14, 37.72] dB only).
    rate = bd_rate(BPP, PSNR, BPP, _shifted(PSNR, 2.0), method)
    mean_log = _mean_by_quadrature(PSNR, np.log(BPP), _shifted(PSNR, 2.0), np.log(BPP), method)
    assert rate == pytest.approx((math.exp(mean_log) - 1) * 100, abs=1e-7)
    assert rate < -30


@pytest.mark.parametrize("method", METHODS)
def test_bd_rate_closed_form_linear_log_rate(method):
    # Anchor: ln R = -3 + 0.10 (P - 30) at P = 30, 32, ..., 38.
    # Test:   ln R = -3.2 + 0.12 (P - 30) at P = 31, 33, ..., 39.
    # Both are exactly linear, so the cubic fit and the pchip reproduce them exactly.
    # Overlap [31, 38]; difference d(P) = -0.2 + 0.02 (P - 30), whose mean over [31, 38] is its value at
    # the midpoint 34.5: -0.2 + 0.02 * 4.5 = -0.11. BD-rate = (exp(-0.11) - 1) * 100 = -10.4166...%.
    ap = np.arange(30.0, 39.0, 2.0)
    tp = np.arange(31.0, 40.0, 2.0)
    ar = np.exp(-3 + 0.10 * (ap - 30))
    tr = np.exp(-3.2 + 0.12 * (tp - 30))
    assert bd_rate(ar, ap, tr, tp, method) == pytest.approx((math.exp(-0.11) - 1) * 100, abs=1e-9)
    assert bd_rate(ar, ap, tr, tp, method) == pytest.approx(-10.4165865, abs=1e-6)


def test_bd_rate_closed_form_cubic():
    # Anchor: ln R = -2 + 0.1 (P - 30); test: the anchor plus 0.001 (P - 30)^3 - 0.1, both at P = 30, 31, ..., 38.
    # Each is a polynomial of degree <= 3 in P, so the cubic fit is exact. Over the overlap [30, 38]:
    #   mean of 0.001 u^3 for u in [0, 8] = 0.001 * (8^4 / 4) / 8 = 0.001 * 128 = 0.128,
    # so the mean log-rate difference is 0.128 - 0.1 = 0.028 and BD-rate = (exp(0.028) - 1) * 100 = 2.8396...%.
    p = np.arange(30.0, 39.0)
    anchor = np.exp(-2 + 0.1 * (p - 30))
    test = anchor * np.exp(0.001 * (p - 30) ** 3 - 0.1)
    assert bd_rate(anchor, p, test, p, "cubic") == pytest.approx((math.exp(0.028) - 1) * 100, abs=1e-9)
    assert bd_rate(anchor, p, test, p, "cubic") == pytest.approx(2.83957, abs=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_bd_psnr_closed_form_linear_psnr(method):
    # Anchor: P = 35 + 5 t at t = ln R = -2, -1.5, ..., 0; test: P = 35.5 + 6 t at t = -1.75, -1.25, ..., 0.25.
    # Overlap t in [-1.75, 0]; difference 0.5 + t, whose mean is its midpoint value 0.5 - 0.875 = -0.375 dB.
    at = np.arange(-2.0, 0.01, 0.5)
    tt = np.arange(-1.75, 0.26, 0.5)
    assert bd_psnr(np.exp(at), 35 + 5 * at, np.exp(tt), 35.5 + 6 * tt, method) == pytest.approx(-0.375, abs=1e-9)


def test_pchip_with_two_points():
    # Two points: pchip is the straight line through them (in log-rate / PSNR), so the answers are exact.
    assert bd_rate([0.1, 0.4], [30.0, 36.0], [0.09, 0.36], [30.0, 36.0], "pchip") == pytest.approx(-10.0, abs=1e-9)
    assert bd_psnr([0.1, 0.4], [30.0, 36.0], [0.1, 0.4], [30.5, 36.5], "pchip") == pytest.approx(0.5, abs=1e-9)


# --- BD-rate and BD-PSNR: bad input ---------------------------------------------------------------

FUNCTIONS = [bd_rate, bd_psnr]


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize(
    ("args", "method", "message"),
    [
        ((BPP, PSNR[:5], BPP, PSNR), "cubic", r"anchor_bpp and anchor_psnr differ in length: 6 and 5"),
        ((BPP, PSNR, BPP[:4], PSNR), "pchip", r"test_bpp and test_psnr differ in length: 4 and 6"),
        # what is wrong with a curve's points names the curve, not the argument (see test_bd_messages_name_the_curves...)
        ((BPP[:3], PSNR[:3], BPP, PSNR), "cubic", r"^the anchor has 3 points; method 'cubic' needs at least 4 points per curve$"),
        ((BPP, PSNR, BPP[:1], PSNR[:1]), "pchip", r"^the test curve has 1 point; method 'pchip' needs at least 2 points per curve$"),
        ((BPP, PSNR, [], []), "pchip", r"^the test curve has 0 points; method 'pchip' needs at least 2 points per curve$"),
        (([0.0, *BPP[1:]], PSNR, BPP, PSNR), "cubic", r"^the anchor has a point at 0 bpp: BD takes the rate on a log scale"),
        ((BPP, PSNR, [*BPP[:3], -0.4, *BPP[4:]], PSNR), "pchip", r"^the test curve has a point at -0\.4 bpp: BD takes the rate"),
        (([*BPP[:2], float("nan"), *BPP[3:]], PSNR, BPP, PSNR), "cubic", r"anchor_bpp holds NaN or inf \(at index 2\)"),
        ((BPP, PSNR, BPP, [*PSNR[:5], float("inf")]), "pchip", r"test_psnr holds NaN or inf \(at index 5\)"),
        ((BPP, [float("-inf"), *PSNR[1:]], BPP, PSNR), "cubic", r"anchor_psnr holds NaN or inf \(at index 0\)"),
        ((BPP, PSNR, BPP, PSNR), "linear", r"unknown method 'linear': expected one of \['cubic', 'pchip'\]"),
        ((BPP, PSNR, BPP, PSNR), ["cubic"], r"unknown method \['cubic'\]"),
        (([BPP, BPP], PSNR, BPP, PSNR), "cubic", r"anchor_bpp must be a 1-D sequence of numbers"),
        ((BPP, ["a"] * 6, BPP, PSNR), "cubic", r"anchor_psnr must be a 1-D sequence of numbers"),
    ],
)
def test_bd_bad_input(fn, args, method, message):
    with pytest.raises(ValueError, match=message):
        fn(*args, method=method)


@pytest.mark.parametrize("method", METHODS)
def test_bd_duplicate_independent_values(method):
    # Two points at one PSNR, or at one bpp (in any order), are refused by both: the PSNR of a curve must rise
    # strictly with its bpp (a repeated value used to pass where it was not the interpolated-over one).
    for fn in FUNCTIONS:
        with pytest.raises(ValueError, match=r"^the anchor: PSNR stays at 32\.15 dB as bpp rises from 0\.298 to 0\.441; BD needs"):
            fn(BPP, [29.14, 30.50, 32.15, 32.15, 35.82, 37.72], BPP, PSNR, method)
        with pytest.raises(ValueError, match=r"^the test curve: two points at 0\.441 bpp \(33\.97 dB and 35\.82 dB\); BD needs"):
            fn(BPP, PSNR, [0.441, 0.124, 0.903, 0.298, 0.441, 0.191], [35.82, 29.14, 37.72, 32.15, 33.97, 30.50], method)
        with pytest.raises(ValueError, match=r"^the test curve: two points at 0\.10 bpp \(29\.14 dB and 30\.50 dB\)"):
            fn(BPP, PSNR, [0.1, 0.1, 0.3, 0.44, 0.65, 0.9], PSNR, method)


@pytest.mark.parametrize("method", METHODS)
def test_bd_ranges_that_do_not_overlap(method):
    with pytest.raises(ValueError, match=r"the PSNR ranges of the two curves do not overlap: the anchor spans \[29\.14, 37\.72\] dB"):
        bd_rate(BPP, PSNR, BPP, _shifted(PSNR, 10.0), method)
    # Touching at one point leaves nothing to average over.
    with pytest.raises(ValueError, match=r"PSNR ranges of the two curves do not overlap"):
        bd_rate(BPP, PSNR, BPP, _shifted(PSNR, PSNR[-1] - PSNR[0]), method)
    with pytest.raises(
        ValueError, match=r"the log-rate ranges of the two curves do not overlap: the anchor spans \[0\.124, 0\.903\] bpp"
    ):
        bd_psnr(BPP, PSNR, _scaled(BPP, 10.0), PSNR, method)


# --- BD-rate and BD-PSNR: curves whose quality does not rise with rate ------------------------------

#: Hand-made curves of five points (bpp, PSNR): PSNR rising with rate; falling from 30.10 to 29.80 dB
#: between 0.40 and 0.60 bpp; the same 30.10 dB at 0.40 and 0.60 bpp.
RISING = ([0.2, 0.4, 0.6, 0.8, 1.0], [28.0, 30.1, 31.5, 33.0, 34.0])
FALLING = ([0.2, 0.4, 0.6, 0.8, 1.0], [28.0, 30.1, 29.8, 33.0, 34.0])
FLAT = ([0.2, 0.4, 0.6, 0.8, 1.0], [28.0, 30.1, 30.1, 33.0, 34.0])
RULE = "; BD needs PSNR to rise strictly with bpp"


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize("method", METHODS)
def test_bd_refuses_a_curve_whose_quality_does_not_rise_with_rate(fn, method):
    better = (RISING[0], _shifted(RISING[1], 0.3))
    assert math.isfinite(fn(*RISING, *better, method))
    falls = "PSNR falls from 30.10 dB to 29.80 dB as bpp rises from 0.40 to 0.60" + RULE
    stays = "PSNR stays at 30.10 dB as bpp rises from 0.40 to 0.60" + RULE
    for anchor, test, message in [
        (RISING, FALLING, f"the test curve: {falls}"),
        (FALLING, RISING, f"the anchor: {falls}"),
        (RISING, FLAT, f"the test curve: {stays}"),
        (FLAT, better, f"the anchor: {stays}"),
        # the points in any order: sorted by bpp, pairs kept together
        (RISING, ([1.0, 0.6, 0.2, 0.4, 0.8], [34.0, 29.8, 28.0, 30.1, 33.0]), f"the test curve: {falls}"),
    ]:
        with pytest.raises(ValueError) as err:
            fn(*anchor, *test, method)
        assert str(err.value) == message
    # two points at one rate: quality is not a function of the rate there
    with pytest.raises(ValueError) as err:
        fn(*RISING, [0.2, 0.4, 0.4, 0.8, 1.0], [28.0, 30.1, 31.5, 33.0, 34.0], method)
    assert str(err.value) == "the test curve: two points at 0.40 bpp (30.10 dB and 31.50 dB)" + RULE
    # the curves' names and the quality as the caller shows them; two decimals, or as many as tell the values apart
    with pytest.raises(ValueError) as err:
        fn(
            *RISING,
            [0.2, 0.4, 0.6, 0.8],
            [10.0, 12.345, 12.3449, 14.0],
            method,
            names=("the anchor JPEG", "kodak-bad"),
            quality="MS-SSIM (dB)",
        )
    falls = "MS-SSIM falls from 12.3450 dB to 12.3449 dB as bpp rises from 0.40 to 0.60"
    assert str(err.value) == f"kodak-bad: {falls}; BD needs MS-SSIM to rise strictly with bpp"
    with pytest.raises(ValueError, match=r"^the anchor JPEG: PSNR falls from 30\.10 dB"):
        fn(*FALLING, *RISING, method, names=("the anchor JPEG", "kodak"))


@pytest.mark.parametrize("fn", FUNCTIONS)
@pytest.mark.parametrize(
    ("args", "method", "message"),
    [
        ((BPP[:3], PSNR[:3], BPP, PSNR), "cubic", "JPEG has 3 points; method 'cubic' needs at least 4 points per curve"),
        ((BPP, PSNR, BPP[:1], PSNR[:1]), "pchip", "kodak-bad has 1 point; method 'pchip' needs at least 2 points per curve"),
        ((BPP, PSNR, [*BPP[:3], 0.0, *BPP[4:]], PSNR), "pchip", "kodak-bad has a point at 0 bpp: BD takes the rate on a log scale"),
        ((BPP, PSNR, *FALLING), "cubic", "kodak-bad: PSNR falls from 30.10 dB to 29.80 dB"),
        ((BPP, PSNR, _scaled(BPP, 10.0), _shifted(PSNR, 10.0)), "cubic", "ranges of the two curves do not overlap: JPEG spans"),
    ],
)
def test_bd_messages_name_the_curves_not_the_arguments(fn, args, method, message):
    with pytest.raises(ValueError) as err:
        fn(*args, method=method, names=("JPEG", "kodak-bad"))
    assert message in str(err.value)
    assert not re.search(r"_bpp|_psnr|\b(anchor|test)\b|index", str(err.value)), str(err.value)
