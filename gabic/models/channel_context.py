"""The hyperprior with a channel-wise autoregressive context (Minnen & Singh, ICIP 2020).

Shared by WACNN, GABIC and STF: the latent ``y`` ``(B, M, h, w)`` is split into
``num_slices`` slices; slice i is coded with a Gaussian whose mean and scale come from
the hyper-synthesis output and the first ``min(i, max_support)`` decoded slices, and a
latent residual prediction (LRP) refines each decoded slice. ``z = h_a(y)`` goes through
a factorized entropy bottleneck. Subclasses provide ``analysis(x) -> y`` and
``synthesis(y_hat) -> x_hat``.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from compressai.ans import BufferedRansEncoder, RansDecoder
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import conv3x3, subpel_conv3x3
from compressai.ops import quantize_ste as ste_round
from torch import Tensor

from gabic.models.base import LearnedCodec

__all__ = ["ChannelContextCodec"]


def _widths(start: int, end: int, steps: int) -> list[int]:
    """``steps + 1`` evenly spaced integer widths from ``start`` to ``end`` (both included).

    For WACNN (320 -> 192 in 4 steps) this gives the published 320, 288, 256, 224, 192.
    """
    return [round(start + (end - start) * i / steps) for i in range(steps + 1)]


def _gelu_stack(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        if i:
            layers.append(nn.GELU())
        layers.append(conv3x3(a, b))
    return nn.Sequential(*layers)


#: Hidden widths of the context transforms relative to M (320 -> 224, 176, 128, 64).
_CC_FRACTIONS = (0.7, 0.55, 0.4, 0.2)


class ChannelContextCodec(LearnedCodec):
    """Hyperprior + channel-wise context + LRP entropy model around an analysis/synthesis pair.

    Args:
        latent_channels: channels of y (M).
        hyper_channels: channels of z (N for WACNN/GABIC, 4*embed for STF).
        num_slices: slices of y (10 for WACNN/GABIC, 12 for STF); must divide M.
        max_support_slices: decoded slices used as context (num_slices // 2 by default).
        h_a_widths: the six widths of ``h_a`` (M ... hyper_channels); default
            ``[M] + 5 widths evenly spaced from M to hyper_channels`` (the published
            320, 320, 288, 256, 224, 192 for WACNN).
        h_s_widths: the six widths of ``h_mean_s``/``h_scale_s`` (hyper_channels ... M);
            default ``[hyper_channels] + 5 evenly spaced to M`` (WACNN's 192, 192, 224,
            256, 288, 320). STF uses ``5 evenly spaced + [M]``.
        cc_hidden: the four hidden widths of the context and LRP transforms; default
            ``M * (0.7, 0.55, 0.4, 0.2)`` (224, 176, 128, 64 for M = 320).
    """

    def __init__(
        self,
        latent_channels: int,
        hyper_channels: int,
        num_slices: int,
        max_support_slices: int | None = None,
        h_a_widths: list[int] | None = None,
        h_s_widths: list[int] | None = None,
        cc_hidden: list[int] | None = None,
    ):
        super().__init__()
        M = latent_channels
        if M % num_slices:
            raise ValueError(f"M={M} latent channels cannot be split into num_slices={num_slices} equal slices")
        self.num_slices = num_slices
        self.max_support_slices = num_slices // 2 if max_support_slices is None else max_support_slices
        self.slice_channels = sc = M // num_slices
        ha = h_a_widths or [M, *_widths(M, hyper_channels, 4)]
        hs = h_s_widths or [hyper_channels, *_widths(hyper_channels, M, 4)]
        if ha[0] != M or ha[-1] != hyper_channels or hs[0] != hyper_channels or hs[-1] != M:
            raise ValueError(f"hyper widths must run M={M} <-> {hyper_channels}: got h_a {ha}, h_s {hs}")
        self.h_a = nn.Sequential(
            conv3x3(ha[0], ha[1]),
            nn.GELU(),
            conv3x3(ha[1], ha[2]),
            nn.GELU(),
            conv3x3(ha[2], ha[3], stride=2),
            nn.GELU(),
            conv3x3(ha[3], ha[4]),
            nn.GELU(),
            conv3x3(ha[4], ha[5], stride=2),
        )
        self.h_mean_s = self._hyper_synthesis(hs)
        self.h_scale_s = self._hyper_synthesis(hs)
        hidden = list(cc_hidden or [round(M * f) for f in _CC_FRACTIONS])
        ms = self.max_support_slices
        self.cc_mean_transforms = nn.ModuleList(_gelu_stack([M + sc * min(i, ms), *hidden, sc]) for i in range(num_slices))
        self.cc_scale_transforms = nn.ModuleList(_gelu_stack([M + sc * min(i, ms), *hidden, sc]) for i in range(num_slices))
        self.lrp_transforms = nn.ModuleList(_gelu_stack([M + sc * min(i + 1, ms + 1), *hidden, sc]) for i in range(num_slices))
        self.entropy_bottleneck = EntropyBottleneck(hyper_channels)
        self.gaussian_conditional = GaussianConditional(None)

    @staticmethod
    def _hyper_synthesis(w: list[int]) -> nn.Sequential:
        """conv, sub-pixel x2, conv, sub-pixel x2, conv through the six widths ``w``."""
        return nn.Sequential(
            conv3x3(w[0], w[1]),
            nn.GELU(),
            subpel_conv3x3(w[1], w[2], 2),
            nn.GELU(),
            conv3x3(w[2], w[3]),
            nn.GELU(),
            subpel_conv3x3(w[3], w[4], 2),
            nn.GELU(),
            conv3x3(w[4], w[5]),
        )

    # ------------------------------------------------------------------ to implement
    def analysis(self, x: Tensor) -> Tensor:
        """``(B, 3, H, W) -> y (B, M, H/16, W/16)``."""
        raise NotImplementedError

    def synthesis(self, y_hat: Tensor) -> Tensor:
        """``y_hat (B, M, h, w) -> x_hat (B, 3, 16h, 16w)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ shared parts
    def _slice_params(self, slice_index: int, means: Tensor, scales: Tensor, decoded: list[Tensor], shape):
        support = decoded[: self.max_support_slices]
        mean_support = torch.cat([means, *support], dim=1)
        mu = self.cc_mean_transforms[slice_index](mean_support)[:, :, : shape[0], : shape[1]]
        scale = self.cc_scale_transforms[slice_index](torch.cat([scales, *support], dim=1))
        return mean_support, mu, scale[:, :, : shape[0], : shape[1]]

    def _refine(self, slice_index: int, mean_support: Tensor, y_hat_slice: Tensor) -> Tensor:
        lrp = self.lrp_transforms[slice_index](torch.cat([mean_support, y_hat_slice], dim=1))
        return y_hat_slice + 0.5 * torch.tanh(lrp)

    def _run(self, x: Tensor, keep_parameters: bool) -> dict[str, Any]:
        """The forward pass of :meth:`forward` and :meth:`forward_entropy` (one slice loop for both).

        With ``keep_parameters`` the per-slice means, scales (after the Gaussian's lower bound)
        and rounded slices are kept and concatenated over channels as well.
        """
        y = self.analysis(x)
        shape = y.shape[2:]
        z = self.h_a(y)
        _, z_likelihoods = self.entropy_bottleneck(z)
        z_offset = self.entropy_bottleneck._get_medians()
        z_hat = ste_round(z - z_offset) + z_offset
        scales, means = self.h_scale_s(z_hat), self.h_mean_s(z_hat)
        decoded: list[Tensor] = []
        likelihoods = []
        kept: dict[str, list[Tensor]] = {"y_hat": [], "means": [], "scales": []}
        for i, y_slice in enumerate(y.chunk(self.num_slices, 1)):
            mean_support, mu, scale = self._slice_params(i, means, scales, decoded, shape)
            _, lik = self.gaussian_conditional(y_slice, scale, mu)
            likelihoods.append(lik)
            y_hat_slice = ste_round(y_slice - mu) + mu
            decoded.append(self._refine(i, mean_support, y_hat_slice))
            if keep_parameters:
                kept["y_hat"].append(y_hat_slice)
                kept["means"].append(mu)
                kept["scales"].append(self.gaussian_conditional.lower_bound_scale(scale))
        x_hat = self.synthesis(torch.cat(decoded, dim=1))
        out: dict[str, Any] = {"x_hat": x_hat, "likelihoods": {"y": torch.cat(likelihoods, dim=1), "z": z_likelihoods}}
        if keep_parameters:
            out |= {"y": y, "z_hat": z_hat} | {key: torch.cat(parts, dim=1) for key, parts in kept.items()}
        return out

    def forward(self, x: Tensor) -> dict[str, Any]:
        """Training / evaluation pass with straight-through rounding.

        Returns ``{"x_hat": (B, 3, H, W), "likelihoods": {"y": (B, M, h, w), "z": (B, Nz, h/4, w/4)}}``.
        """
        return self._run(x, keep_parameters=False)

    def forward_entropy(self, x: Tensor) -> dict[str, Any]:
        """:meth:`forward` (the same pass, the same numbers) plus what the entropy model used on the way.

        Args:
            x: images ``(B, 3, H, W)``, H and W multiples of 64.

        Returns:
            ``{"x_hat", "likelihoods"}`` as :meth:`forward`, and, all ``(B, M, h, w)`` with
            ``h, w = H/16, W/16``:

            - ``"y"``: the analysis output (unrounded latent);
            - ``"y_hat"``: the symbols the coder codes, ``round(y - means) + means`` (straight-through
              rounding), *before* the latent residual prediction refines them;
            - ``"means"``: the Gaussian means of the channel-wise context, slice by slice;
            - ``"scales"``: the Gaussian scales as the likelihood uses them, i.e. after
              ``GaussianConditional.lower_bound_scale``;

            and ``"z_hat"`` ``(B, Nz, h/4, w/4)``, the rounded hyper-latent. In eval mode the
            y likelihood is the Gaussian ``N(means, scales)`` integrated over ``y_hat +- 1/2``
            (bounded below by the likelihood bound).
        """
        return self._run(x, keep_parameters=True)

    #: The name :meth:`forward_entropy` had before it was part of the contract.
    entropy_parameters = forward_entropy

    @staticmethod
    def count_slices(state_dict: dict[str, Tensor]) -> int:
        """The number of slices a state dict of a channel-context codec holds (its mean transforms)."""
        return len({k.split(".")[1] for k in state_dict if k.startswith("cc_mean_transforms.")})

    def _cdf_tables(self):
        gc = self.gaussian_conditional
        return (
            gc.quantized_cdf.tolist(),
            gc.cdf_length.reshape(-1).int().tolist(),
            gc.offset.reshape(-1).int().tolist(),
        )

    @torch.no_grad()
    def compress(self, x: Tensor) -> dict[str, Any]:
        """Entropy-code ``x`` ``(1, 3, H, W)`` (H, W multiples of 64).

        Returns ``{"strings": [[y_string], [z_string]], "shape": (h_z, w_z), "symbols_crc": int}``;
        y is one rANS stream of all slices, z goes through the factorized model; ``symbols_crc``
        is the CRC-32 of the latent's symbols as coded (int32, slice after slice), which
        :meth:`decompress` returns for the symbols it decoded.
        """
        if x.shape[0] != 1:
            raise ValueError(f"compress codes one image at a time, got a batch of {x.shape[0]}")
        y = self.analysis(x)
        shape = y.shape[2:]
        z = self.h_a(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        scales, means = self.h_scale_s(z_hat), self.h_mean_s(z_hat)
        cdf, cdf_lengths, offsets = self._cdf_tables()
        symbols: list[int] = []
        indexes: list[int] = []
        decoded: list[Tensor] = []
        for i, y_slice in enumerate(y.chunk(self.num_slices, 1)):
            mean_support, mu, scale = self._slice_params(i, means, scales, decoded, shape)
            index = self.gaussian_conditional.build_indexes(scale)
            y_q = self.gaussian_conditional.quantize(y_slice, "symbols", mu)
            symbols.extend(y_q.reshape(-1).tolist())
            indexes.extend(index.reshape(-1).tolist())
            decoded.append(self._refine(i, mean_support, y_q + mu))
        encoder = BufferedRansEncoder()
        encoder.encode_with_indexes(symbols, indexes, cdf, cdf_lengths, offsets)
        crc = zlib.crc32(np.asarray(symbols, dtype=np.int32).tobytes())
        return {"strings": [[encoder.flush()], z_strings], "shape": tuple(z.shape[-2:]), "symbols_crc": crc}

    @torch.no_grad()
    def decompress(self, strings: list[list[bytes]], shape) -> dict[str, Tensor]:
        """Decode what :meth:`compress` wrote: ``{"x_hat": (1, 3, 64*h_z, 64*w_z)}`` in [0, 1] and
        ``"symbols_crc"``, the CRC-32 of the symbols decoded (equal to the encoder's when the entropy
        parameters of both sides agree, see :meth:`compress`)."""
        z_hat = self.entropy_bottleneck.decompress(strings[1], shape)
        scales, means = self.h_scale_s(z_hat), self.h_mean_s(z_hat)
        y_shape = (z_hat.shape[2] * 4, z_hat.shape[3] * 4)
        cdf, cdf_lengths, offsets = self._cdf_tables()
        decoder = RansDecoder()
        decoder.set_stream(strings[0][0])
        decoded: list[Tensor] = []
        crc = 0
        for i in range(self.num_slices):
            mean_support, mu, scale = self._slice_params(i, means, scales, decoded, y_shape)
            index = self.gaussian_conditional.build_indexes(scale)
            rv = decoder.decode_stream(index.reshape(-1).tolist(), cdf, cdf_lengths, offsets)
            crc = zlib.crc32(np.asarray(rv, dtype=np.int32).tobytes(), crc)
            rv = torch.tensor(rv, dtype=mu.dtype, device=mu.device).reshape(mu.shape)
            decoded.append(self._refine(i, mean_support, self.gaussian_conditional.dequantize(rv, mu)))
        x_hat = self.synthesis(torch.cat(decoded, dim=1)).clamp_(0, 1)
        return {"x_hat": x_hat, "symbols_crc": crc}
