"""Where the bits go: the latent, its Gaussian parameters, its bits per position and its residuals.

:func:`latent_capture` runs the forward pass of a learned codec on one image (padded to 64 as
:func:`gabic.measurement.forward_padded` pads it, the same numbers) through
:meth:`gabic.models.LearnedCodec.forward_entropy` and keeps, per latent element, the
coded symbol ``y_hat``, the mean and scale the Gaussian conditional used and the bits
``-log2 p``; per hyper-latent element the bits of the factorized model. The rate estimate of
the capture is ``LatentCapture.bpp``, equal to ``forward_padded``'s.

:func:`residual_correlation` measures how much spatial structure the entropy model leaves in
the standardised residual ``(y_hat - mean) / scale``: the latent-correlation figures of Ballé
et al. 2018 ("Variational image compression with a scale hyperprior", fig. 2) and Minnen et al.
2018 ("Joint autoregressive and hierarchical priors", fig. 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gabic.checks import check_int, is_int
from gabic.images import ImageLike, as_image_tensor, pad_offset
from gabic.measurement import forward_padded
from gabic.models import LearnedCodec

__all__ = ["LATENT_STRIDE", "HYPER_STRIDE", "LatentCapture", "check_tile", "latent_capture", "residual_correlation"]

#: Image pixels per latent (y) position along each side: the analysis transform downsamples by 16.
LATENT_STRIDE = 16
#: Image pixels per hyper-latent (z) position along each side: h_a downsamples y by 4 more.
HYPER_STRIDE = 64


@dataclass
class LatentCapture:
    """The latent of one image and what the entropy model did with it (batch dimension dropped, CPU).

    Attributes:
        model_name: ``"gabic"``, ``"wacnn"``, ``"stf"``.
        image_size: ``(H, W)`` of the original image.
        padded_size: ``(Hp, Wp)`` of the image padded to multiples of 64.
        offset: ``(top, left)`` of the original image inside the padded one (as
            :class:`gabic.viz.BlockCapture`).
        num_slices: slices of the channel-wise context; slice i holds channels
            ``i*M/num_slices .. (i+1)*M/num_slices - 1``.
        y: the analysis output ``(M, h, w)`` with ``h, w = Hp/16, Wp/16`` (float32).
        y_hat: the coded symbols ``round(y - means) + means`` ``(M, h, w)``, before the latent
            residual prediction (float32).
        means, scales: the Gaussian parameters ``(M, h, w)``; scales after the Gaussian's lower bound,
            as the likelihood used them (float32).
        y_bits: ``-log2`` of each element's likelihood ``(M, h, w)`` (float64).
        z_bits: ``-log2`` of each hyper-latent element's likelihood ``(Nz, hz, wz)``, ``hz = Hp/64`` (float64).
        x_hat: the reconstruction cropped to ``(1, 3, H, W)`` and clamped to [0, 1].
        likelihood_bpp: :func:`gabic.metrics.bpp_from_likelihoods` of the pass over the ``H * W``
            original pixels (what :func:`gabic.measurement.forward_padded` reports).
    """

    model_name: str
    image_size: tuple[int, int]
    padded_size: tuple[int, int]
    offset: tuple[int, int]
    num_slices: int
    y: Tensor = field(repr=False)
    y_hat: Tensor = field(repr=False)
    means: Tensor = field(repr=False)
    scales: Tensor = field(repr=False)
    y_bits: Tensor = field(repr=False)
    z_bits: Tensor = field(repr=False)
    x_hat: Tensor = field(repr=False)
    likelihood_bpp: float

    @property
    def bits_map(self) -> Tensor:
        """``(h, w)`` bits of y per latent position, summed over the M channels (float64)."""
        return self.y_bits.sum(0)

    @property
    def slice_bits(self) -> Tensor:
        """``(num_slices, h, w)`` bits of y per slice and position (float64); sums over slices to :attr:`bits_map`."""
        M, h, w = self.y_bits.shape
        return self.y_bits.reshape(self.num_slices, M // self.num_slices, h, w).sum(1)

    @property
    def z_map(self) -> Tensor:
        """``(hz, wz)`` bits of z per hyper-latent position, summed over its channels (float64)."""
        return self.z_bits.sum(0)

    @property
    def y_total(self) -> float:
        """Bits of y over the whole (padded) latent."""
        return float(self.y_bits.sum())

    @property
    def z_total(self) -> float:
        """Bits of z over the whole (padded) hyper-latent."""
        return float(self.z_bits.sum())

    @property
    def total_bits(self) -> float:
        """Bits of y and z together: the likelihood estimate of the payload."""
        return self.y_total + self.z_total

    @property
    def bpp(self) -> float:
        """:attr:`total_bits` per original pixel ``H * W``; equals :attr:`likelihood_bpp` to float precision."""
        return self.total_bits / (self.image_size[0] * self.image_size[1])

    @property
    def residual(self) -> Tensor:
        """``(M, h, w)`` standardised residual ``(y_hat - means) / scales``: integers over the scale (float32)."""
        return (self.y_hat - self.means) / self.scales

    @property
    def slice_channels(self) -> int:
        """Channels per slice, ``M / num_slices``."""
        return self.y_hat.shape[0] // self.num_slices

    def extent(self, level: str = "y") -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` in original-image pixels of the whole ``level`` map.

        ``level`` is ``"y"`` (16 pixels per position) or ``"z"`` (64 pixels per position).
        Position ``(r, c)`` covers the pixels ``[r*s - top, (r+1)*s - top) x [c*s - left,
        (c+1)*s - left)`` of the original image (pixel ``(y, x)`` of the original sits at
        ``(y + top, x + left)`` in the padded one, as :mod:`gabic.viz.geometry`); the map starts
        at ``(-top, -left)``, before the image where it is padded. For ``imshow``:
        ``extent=(left, right, bottom, top)`` of this tuple.
        """
        stride = {"y": LATENT_STRIDE, "z": HYPER_STRIDE}.get(level)
        if stride is None:
            raise ValueError(f"level must be 'y' or 'z', got {level!r}")
        h, w = (self.y_bits if level == "y" else self.z_bits).shape[-2:]
        top, left = self.offset
        return -top, -left, h * stride - top, w * stride - left

    def tile_bits(self, tile: int) -> Tensor:
        """``(nTh, nTw)`` bits of y and z per square tile of ``tile`` pixels (float64).

        Tiles are aligned to the padded image (tile ``(i, j)`` covers padded pixels
        ``[i*tile, (i+1)*tile) x [j*tile, (j+1)*tile)``, i.e. original pixels shifted by the
        :attr:`offset`); ``nTh = ceil(Hp / tile)``, ``nTw = ceil(Wp / tile)``, and tiles of the
        last row and column are cut at the padded image's edge. Each y position counts in the
        tile holding its 16x16 cell, each z position in the tile holding its 64x64 cell, so the
        tiles sum to :attr:`total_bits`.

        Args:
            tile: side in pixels, a positive multiple of 64.
        """
        check_tile(tile)
        Hp, Wp = self.padded_size
        shape = (math.ceil(Hp / tile), math.ceil(Wp / tile))
        return _sum_tiles(self.bits_map, tile // LATENT_STRIDE, shape) + _sum_tiles(self.z_map, tile // HYPER_STRIDE, shape)

    def summary(self) -> str:
        """One line: model, image size, bpp, and the share of z."""
        H, W = self.image_size
        return (
            f"{self.model_name}: {W}x{H} image, {self.bpp:.4f} bpp "
            f"(y {self.y_total:.0f} bits, z {self.z_total:.0f} bits, {100 * self.z_total / max(self.total_bits, 1e-12):.1f}% z)"
        )


def check_tile(tile: Any) -> int:
    """``tile`` when it is a tile side the bits can be summed over: a positive multiple of
    :data:`HYPER_STRIDE` (64) pixels, whole hyper-latent positions; else ValueError naming it."""
    if not is_int(tile) or tile < HYPER_STRIDE or tile % HYPER_STRIDE:
        raise ValueError(f"tile must be a multiple of {HYPER_STRIDE} pixels (whole hyper-latent positions), got {tile!r}")
    return int(tile)


def _sum_tiles(bits: Tensor, cells: int, shape: tuple[int, int]) -> Tensor:
    """Sum a ``(h, w)`` map over ``cells x cells`` blocks (zero-padded to ``shape * cells``) -> ``shape``."""
    h, w = bits.shape
    bits = F.pad(bits, (0, shape[1] * cells - w, 0, shape[0] * cells - h))
    return bits.reshape(shape[0], cells, shape[1], cells).sum((1, 3))


@torch.no_grad()
def latent_capture(model: LearnedCodec, image: ImageLike) -> LatentCapture:
    """Run ``model`` on one image and keep its latent, Gaussian parameters and bits.

    The image is zero-padded to a multiple of 64, centred, exactly as
    :func:`gabic.measurement.forward_padded` pads it, and goes through
    :meth:`~gabic.models.LearnedCodec.forward_entropy` (the model's forward pass;
    eval mode recommended: in training mode the likelihoods are of noisy, not rounded, latents).

    Args:
        model: a learned codec of gabic (any :class:`~gabic.models.LearnedCodec`).
        image: a path, a PIL image or a tensor ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1]
            (:data:`gabic.images.ImageLike`, read by :func:`gabic.images.as_image_tensor`).

    Returns:
        A :class:`LatentCapture` on the CPU.
    """
    if not isinstance(model, LearnedCodec):
        raise ValueError(f"model must be a gabic learned codec (gabic.models.LearnedCodec), got {type(model).__name__}")
    x = as_image_tensor(image)
    out, x_hat, bpp = forward_padded(model, x, parameters=True)
    H, W = x.shape[-2:]
    lik = out["likelihoods"]
    return LatentCapture(
        model_name=getattr(model, "name", type(model).__name__),
        image_size=(H, W),
        padded_size=tuple(out["x_hat"].shape[-2:]),
        offset=pad_offset(H, W),
        num_slices=model.num_slices,
        y=out["y"][0].float().cpu(),
        y_hat=out["y_hat"][0].float().cpu(),
        means=out["means"][0].float().cpu(),
        scales=out["scales"][0].float().cpu(),
        y_bits=-torch.log2(lik["y"][0].detach().double().cpu()),
        z_bits=-torch.log2(lik["z"][0].detach().double().cpu()),
        x_hat=x_hat.cpu(),
        likelihood_bpp=bpp,
    )


def residual_correlation(residual: Tensor, max_offset: int = 2) -> Tensor:
    """Spatial autocorrelation of a latent field, pooled over channels: ``(2m+1, 2m+1)``, ``m = max_offset``.

    Each channel of ``residual`` ``(C, h, w)`` is standardised over all its positions (mean 0,
    population standard deviation 1); entry ``[m + dy, m + dx]`` is the mean of
    ``z[c, i, j] * z[c, i + dy, j + dx]`` over every position pair that overlaps, of every channel
    (all channels pooled, each pair counted once). The centre is 1; the matrix is symmetric under
    ``(dy, dx) -> (-dy, -dx)``. For a well-fitted entropy model the standardised residual
    ``(y_hat - mean) / scale`` is nearly white: off-centre values near 0 (Ballé et al. 2018,
    Minnen et al. 2018).

    Channels with zero variance (constant) carry no correlation and are left out; with none left
    the result is all NaN. Computed in float64.

    Args:
        residual: ``(C, h, w)`` (e.g. :attr:`LatentCapture.residual`).
        max_offset: largest ``|dy|``, ``|dx|``; must be below ``h`` and ``w``. Default 2.

    Returns:
        ``(2 * max_offset + 1, 2 * max_offset + 1)`` float64.
    """
    if residual.dim() != 3:
        raise ValueError(f"residual must be (C, h, w), got shape {tuple(residual.shape)}")
    C, h, w = residual.shape
    max_offset = check_int(max_offset, "max_offset", 0, min(h, w) - 1, detail=f" for a {h}x{w} field")
    x = residual.detach().double().cpu()
    x = x - x.mean((1, 2), keepdim=True)
    std = x.pow(2).mean((1, 2), keepdim=True).sqrt()
    keep = std.reshape(C) > 0
    m = max_offset
    out = torch.full((2 * m + 1, 2 * m + 1), math.nan, dtype=torch.float64)
    if not bool(keep.any()):
        return out
    z = x[keep] / std[keep]
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            a = z[:, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
            b = z[:, max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
            out[m + dy, m + dx] = (a * b).mean()
    return out
