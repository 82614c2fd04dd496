"""Quality and rate measures, computed as the papers report them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from pytorch_msssim import ms_ssim as _ms_ssim
from scipy.interpolate import PchipInterpolator

from gabic.checks import check_int

__all__ = [
    "BD_METHODS",
    "MS_SSIM_MIN_SIDE",
    "bd_psnr",
    "bd_rate",
    "bpp_from_bytes",
    "bpp_from_likelihoods",
    "ms_ssim",
    "ms_ssim_db",
    "psnr",
]

#: The interpolation methods of :func:`bd_rate` and :func:`bd_psnr`, with the fewest points per curve each needs
#: ("cubic": G. Bjøntegaard, Calculation of average PSNR differences between RD-curves, VCEG-M33, 2001).
BD_METHODS: dict[str, int] = {"cubic": 4, "pchip": 2}


#: The smallest image side the 5-scale MS-SSIM (11x11 Gaussian windows, four halvings) is defined for.
MS_SSIM_MIN_SIDE = 161


def psnr(reference: Image.Image | np.ndarray, test: Image.Image | np.ndarray) -> float:
    """PSNR in dB between two 8-bit RGB images (PIL or ``(H, W, 3)`` uint8 arrays).

    ``10 log10(255^2 / MSE)`` over all pixels and channels; ``inf`` for identical images.
    """
    a = np.asarray(reference, dtype=np.float64)
    b = np.asarray(test, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} and {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ms_ssim(reference: Image.Image | np.ndarray, test: Image.Image | np.ndarray) -> float:
    """MS-SSIM (linear, in [0, 1]) between two 8-bit RGB images, with pytorch-msssim.

    The images are compared as float tensors on the 0..255 scale (``data_range=255``).
    Images smaller than 161 pixels on a side are too small for the 5-scale MS-SSIM and
    raise ValueError.
    """
    a = np.asarray(reference, dtype=np.float32)
    b = np.asarray(test, dtype=np.float32)
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} and {b.shape}")
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise ValueError(
            f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE}x{MS_SSIM_MIN_SIDE} pixels, got {a.shape[1]}x{a.shape[0]}"
        )
    ta = torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0)
    tb = torch.from_numpy(b).permute(2, 0, 1).unsqueeze(0)
    return float(_ms_ssim(ta, tb, data_range=255.0))


def bpp_from_bytes(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of ``num_bytes`` for a ``height x width`` image."""
    return num_bytes * 8.0 / (height * width)


def ms_ssim_db(value: float) -> float:
    """MS-SSIM in decibels: ``-10 log10(1 - value)``, as learned-compression papers plot it.

    ``value`` is a linear MS-SSIM in ``[0, 1]`` (what :func:`ms_ssim` returns); 1.0 (identical
    images) gives ``inf``. Values outside ``[0, 1]`` or NaN raise ValueError.
    """
    v = float(value)
    if not 0.0 <= v <= 1.0:  # also catches NaN
        raise ValueError(f"value must be a linear MS-SSIM in [0, 1], got {value!r}")
    return math.inf if v == 1.0 else -10.0 * math.log10(1.0 - v)


def bpp_from_likelihoods(likelihoods: Mapping[str, torch.Tensor] | torch.Tensor, num_pixels: int) -> float:
    """Estimated bits per pixel from an entropy model's likelihoods.

    Args:
        likelihoods: one tensor, or a mapping of tensors such as the ``{"y": ..., "z": ...}``
            that CompressAI models return under ``"likelihoods"``; any shape, e.g.
            ``(N, C, H', W')``. Every entry is a probability in ``(0, 1]``.
        num_pixels: the number of image pixels the likelihoods code; for a batch, the total
            over the batch (``N * H * W``), so the result is the mean bpp of the batch.

    Returns:
        ``sum(-log2(l)) / num_pixels`` over every entry of every tensor, as a Python float
        (computed in float64, without gradients).
    """
    num_pixels = check_int(num_pixels, "num_pixels", 1)
    if isinstance(likelihoods, torch.Tensor):
        tensors = {"likelihoods": likelihoods}
    elif isinstance(likelihoods, Mapping):
        tensors = dict(likelihoods)
        if not tensors:
            raise ValueError("likelihoods is an empty mapping: expected tensors such as {'y': ..., 'z': ...}")
    else:
        raise ValueError(f"likelihoods must be a tensor or a mapping of tensors, got {type(likelihoods).__name__}")
    bits = 0.0
    with torch.no_grad():
        for name, lik in tensors.items():
            if not isinstance(lik, torch.Tensor):
                raise ValueError(f"likelihoods[{name!r}] must be a tensor, got {type(lik).__name__}")
            lik = lik.detach().to(torch.float64)
            if lik.numel() and not bool(((lik > 0) & (lik <= 1)).all()):
                raise ValueError(f"likelihoods[{name!r}] must hold probabilities in (0, 1]; found values outside it (or NaN)")
            bits += float(-torch.log2(lik).sum())
    return bits / int(num_pixels)


#: How :func:`bd_rate` and :func:`bd_psnr` name the two curves in their messages when the caller does not.
_BD_NAMES = ("the anchor", "the test curve")


def _quality_name(quality: str) -> tuple[str, str]:
    """The name and unit of a quality label: ``"PSNR (dB)"`` -> ``("PSNR", " dB")``, ``"MS-SSIM"`` -> ``("MS-SSIM", "")``."""
    name, _, unit = quality.strip().partition(" (")
    return name, f" {unit.removesuffix(')')}" if unit else ""


def _apart(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` as text with 2 decimals, or 3 where the data have them (0.298), or as many more (up to 6) as it
    takes to tell two different values apart."""
    for digits in range(2, 7):
        shown = f"{a:.{digits}f}", f"{b:.{digits}f}"
        exact = float(shown[0]) == a and float(shown[1]) == b
        if (exact or digits >= 3) and (a == b or shown[0] != shown[1]):
            break
    return shown


def _check_rising(r: np.ndarray, q: np.ndarray, name: str, quality: str) -> None:
    """Raise ValueError unless the quality ``q`` rises strictly with the rate ``r`` (both sorted by rate, then
    quality), naming the curve and the first place where it does not: a fall, a flat step or two points at one rate."""
    steps = np.flatnonzero((np.diff(r) <= 0) | (np.diff(q) <= 0))
    if not steps.size:
        return
    i = int(steps[0])
    what, unit = _quality_name(quality)
    (r0, r1), (q0, q1) = _apart(r[i], r[i + 1]), _apart(q[i], q[i + 1])
    if r[i] == r[i + 1]:
        where = f"two points at {r0} bpp ({q0}{unit} and {q1}{unit})"
    elif q[i] == q[i + 1]:
        where = f"{what} stays at {q0}{unit} as bpp rises from {r0} to {r1}"
    else:
        where = f"{what} falls from {q0}{unit} to {q1}{unit} as bpp rises from {r0} to {r1}"
    raise ValueError(f"{name}: {where}; BD needs {what} to rise strictly with bpp")


def _curve(
    bpp: Sequence[float] | np.ndarray,
    psnr: Sequence[float] | np.ndarray,
    prefix: str,
    name: str,
    quality: str,
    min_points: int,
    method: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Check one RD curve and return it as float64 arrays ``(bpp, psnr)`` sorted by bpp, pairs kept together.

    What was passed (numbers, 1-D, equal lengths, finite) is checked under the argument names
    ``<prefix>_bpp`` / ``<prefix>_psnr``; the curve's points (enough for ``method``, positive bpp,
    quality rising strictly with rate) under the curve's ``name`` and the ``quality`` label, as the
    user sees them. Each failure raises ValueError.
    """
    arrays = []
    for arg, values in ((f"{prefix}_bpp", bpp), (f"{prefix}_psnr", psnr)):
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{arg} must be a 1-D sequence of numbers") from None
        if arr.ndim != 1:
            raise ValueError(f"{arg} must be a 1-D sequence of numbers, got an array of shape {arr.shape}")
        arrays.append(arr)
    r, q = arrays
    if len(r) != len(q):
        raise ValueError(f"{prefix}_bpp and {prefix}_psnr differ in length: {len(r)} and {len(q)} (one bpp per PSNR)")
    for arg, arr in ((f"{prefix}_bpp", r), (f"{prefix}_psnr", q)):
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(f"{arg} holds NaN or inf (at index {int(bad[0])}): every point must be finite")
    bad = np.flatnonzero(r <= 0)
    if bad.size:
        raise ValueError(f"{name} has a point at {r[bad[0]]:g} bpp: BD takes the rate on a log scale, so every bpp must be positive")
    if len(r) < min_points:
        raise ValueError(
            f"{name} has {len(r)} point{'' if len(r) == 1 else 's'}; method {method!r} needs at least {min_points} points per curve"
        )
    order = np.lexsort((q, r))
    r, q = r[order], q[order]
    _check_rising(r, q, name, quality)
    return r, q


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str) -> float:
    """Integral over ``[lo, hi]`` of the curve through the points ``(x, y)`` (``x`` sorted, distinct)."""
    if method == "cubic":
        # Least-squares cubic, as in VCEG-M33. Fitted in t = (x - c) / s, which is the same
        # polynomial of x (least squares is invariant under an affine change of the variable),
        # but keeps the Vandermonde matrix well conditioned for PSNRs around 30-40 dB.
        c = 0.5 * (x[0] + x[-1])
        s = 0.5 * (x[-1] - x[0])
        antiderivative = np.polyint(np.polyfit((x - c) / s, y, 3))
        return float(s * (np.polyval(antiderivative, (hi - c) / s) - np.polyval(antiderivative, (lo - c) / s)))
    # Exact integral of the piecewise cubic; [lo, hi] lies inside [x[0], x[-1]], so no extrapolation.
    return float(PchipInterpolator(x, y, extrapolate=False).integrate(lo, hi))


def _mean_difference(anchor: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], method: str) -> float:
    """Mean of ``test - anchor`` (curves given as sorted ``(x, y)``) over the overlap of their ``x`` ranges."""
    lo = max(anchor[0][0], test[0][0])
    hi = min(anchor[0][-1], test[0][-1])
    return (_integral(*test, lo, hi, method) - _integral(*anchor, lo, hi, method)) / (hi - lo)


def _check_method(method: str) -> int:
    """The fewest points per curve that ``method`` needs; an unknown method raises ValueError."""
    if not isinstance(method, str) or method not in BD_METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {sorted(BD_METHODS)}")
    return BD_METHODS[method]


def _check_overlap(a: np.ndarray, t: np.ndarray, what: str, unit: str, names: tuple[str, str]) -> None:
    """Raise ValueError unless the sorted ranges ``a`` and ``t`` overlap in an interval of positive length."""
    if min(a[-1], t[-1]) <= max(a[0], t[0]):
        raise ValueError(
            f"the {what} ranges of the two curves do not overlap: {names[0]} spans [{a[0]:.6g}, {a[-1]:.6g}]{unit}, "
            f"{names[1]} spans [{t[0]:.6g}, {t[-1]:.6g}]{unit}"
        )


def _bd_curves(
    anchor: tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray],
    test: tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray],
    method: str,
    names: tuple[str, str],
    quality: str,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The checks :func:`bd_rate` and :func:`bd_psnr` share: the method, then each curve (:func:`_curve`).

    Returns:
        ``((anchor_bpp, anchor_psnr), (test_bpp, test_psnr))`` as float64 arrays sorted by bpp, which
        also sorts them by PSNR (each curve's PSNR rises strictly with its bpp).
    """
    min_points = _check_method(method)
    a_name, t_name = names
    return (
        _curve(*anchor, "anchor", a_name, quality, min_points, method),
        _curve(*test, "test", t_name, quality, min_points, method),
    )


def bd_rate(
    anchor_bpp: Sequence[float] | np.ndarray,
    anchor_psnr: Sequence[float] | np.ndarray,
    test_bpp: Sequence[float] | np.ndarray,
    test_psnr: Sequence[float] | np.ndarray,
    method: str = "cubic",
    *,
    names: tuple[str, str] = _BD_NAMES,
    quality: str = "PSNR (dB)",
) -> float:
    """Bjøntegaard delta rate (BD-rate) of a test RD curve against an anchor, in percent.

    The average rate difference at equal quality (G. Bjøntegaard, Calculation of average PSNR
    differences between RD-curves, VCEG-M33, 2001): each curve's natural-log rate ``ln(bpp)`` is
    interpolated as a function of PSNR, both are integrated over the PSNR interval where the
    curves overlap, and ``BD-rate = (exp(mean(ln R_test - ln R_anchor)) - 1) * 100``.

    Sign: negative means the test codec needs fewer bits than the anchor at the same quality
    (-10.0 = 10% fewer bits); positive means more.

    Each curve's PSNR must rise strictly with its bpp, as BD assumes: a curve whose PSNR falls or
    stays as its bpp rises, or with two points at one bpp, raises ValueError naming the curve and
    the first such step (``"the test curve: PSNR falls from 30.10 dB to 29.80 dB as bpp rises from
    0.40 to 0.60; ..."``); every point is checked, as every point enters the fit.

    Args:
        anchor_bpp, anchor_psnr: the anchor's RD points, one bpp per PSNR (dB). Any order: the
            points are sorted by bpp with their pairs kept together.
        test_bpp, test_psnr: the test codec's RD points, likewise. Any quality in dB works in
            place of PSNR (e.g. :func:`ms_ssim_db`).
        method: ``"cubic"`` (default): VCEG-M33's least-squares cubic polynomial (``numpy.polyfit``,
            degree 3), integrated exactly; needs at least 4 points per curve (with fewer the cubic
            is not determined). ``"pchip"``: piecewise cubic Hermite interpolation through the
            points (``scipy.interpolate.PchipInterpolator``, the variant used by later
            Bjøntegaard tools), integrated exactly; needs at least 2 points per curve, because
            it interpolates rather than fits: with two points it is the straight line between
            them, the only curve two points determine, and it never overshoots the data.
        names: how messages name the anchor and the test curve (default ``("the anchor", "the
            test curve")``), e.g. the labels a table shows: ``("the anchor JPEG", "kodak-bad")``.
        quality: how messages name the quality and its unit, as ``"NAME (unit)"`` or ``"NAME"``
            (default ``"PSNR (dB)"``), e.g. ``"MS-SSIM (dB)"``.

    Returns:
        The BD-rate in percent, as a Python float.

    Raises:
        ValueError: a curve's lists are not numbers, differ in length or hold NaN/inf (named by the
            argument); a curve has a non-positive bpp, too few points for ``method``, or PSNR not
            rising strictly with bpp (named by ``names``); an unknown ``method``; or PSNR ranges
            that do not overlap.
    """
    (ar, aq), (tr, tq) = _bd_curves((anchor_bpp, anchor_psnr), (test_bpp, test_psnr), method, names, quality)
    _check_overlap(aq, tq, *_quality_name(quality), names)
    return float((math.exp(_mean_difference((aq, np.log(ar)), (tq, np.log(tr)), method)) - 1.0) * 100.0)


def bd_psnr(
    anchor_bpp: Sequence[float] | np.ndarray,
    anchor_psnr: Sequence[float] | np.ndarray,
    test_bpp: Sequence[float] | np.ndarray,
    test_psnr: Sequence[float] | np.ndarray,
    method: str = "cubic",
    *,
    names: tuple[str, str] = _BD_NAMES,
    quality: str = "PSNR (dB)",
) -> float:
    """Bjøntegaard delta PSNR (BD-PSNR) of a test RD curve against an anchor, in dB.

    The average quality difference at equal rate (G. Bjøntegaard, Calculation of average PSNR
    differences between RD-curves, VCEG-M33, 2001): each curve's PSNR is interpolated as a
    function of the natural-log rate ``ln(bpp)``, both are integrated over the log-rate interval
    where the curves overlap, and ``BD-PSNR = mean(PSNR_test - PSNR_anchor)`` over it.

    Sign: positive means the test codec is better (higher PSNR at the same rate).

    Each curve's PSNR must rise strictly with its bpp, as for :func:`bd_rate` (ValueError otherwise).

    Args:
        anchor_bpp, anchor_psnr: the anchor's RD points, one bpp per PSNR (dB). Any order: the
            points are sorted by rate with their pairs kept together.
        test_bpp, test_psnr: the test codec's RD points, likewise.
        method: ``"cubic"`` (default, at least 4 points per curve) or ``"pchip"`` (at least 2);
            see :func:`bd_rate`.
        names, quality: how messages name the two curves and the quality; see :func:`bd_rate`.

    Returns:
        The BD-PSNR in the quality's unit (dB for PSNR), as a Python float.

    Raises:
        ValueError: as :func:`bd_rate`, with log-rate ranges that do not overlap in place of PSNR ranges.
    """
    (ar, aq), (tr, tq) = _bd_curves((anchor_bpp, anchor_psnr), (test_bpp, test_psnr), method, names, quality)
    _check_overlap(ar, tr, "log-rate", " bpp", names)
    return _mean_difference((np.log(ar), aq), (np.log(tr), tq), method)
