"""WACNN (Zou et al., CVPR 2022): CNN codec with window attention and a channel-wise entropy model."""

from __future__ import annotations

from typing import Any

import torch.nn as nn
from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from torch import Tensor

from gabic.layers import GatedAttentionBlock, SwinWindowAttention
from gabic.models.channel_context import ChannelContextCodec

__all__ = ["WACNN"]


class WACNN(ChannelContextCodec):
    """The WACNN codec; its backbone is shared with GABIC.

    ``g_a``: conv(3,N,2), GDN, conv(N,N,2), GDN, ATTN(N, ws 8), conv(N,N,2), GDN, conv(N,M,2),
    ATTN(M, ws 4); ``g_s`` mirrors it with transposed convolutions and inverse GDN.
    Images ``(B, 3, H, W)`` with H, W multiples of 64; ``y`` is ``(B, M, H/16, W/16)``.

    Args:
        N: channels of the transforms and of z (paper 192).
        M: channels of y (paper 320); must be divisible by ``num_slices``.
        num_slices: slices of the channel-wise context (paper 10).
    """

    name = "wacnn"

    def __init__(self, N: int = 192, M: int = 320, num_slices: int = 10):
        super().__init__(latent_channels=M, hyper_channels=N, num_slices=num_slices)
        self.N, self.M = N, M
        self.g_a = nn.Sequential(
            conv(3, N, kernel_size=5, stride=2),
            GDN(N),
            conv(N, N, kernel_size=5, stride=2),
            GDN(N),
            self.attention_block(N, 8),
            conv(N, N, kernel_size=5, stride=2),
            GDN(N),
            conv(N, M, kernel_size=5, stride=2),
            self.attention_block(M, 4),
        )
        self.g_s = nn.Sequential(
            self.attention_block(M, 4),
            deconv(M, N, kernel_size=5, stride=2),
            GDN(N, inverse=True),
            deconv(N, N, kernel_size=5, stride=2),
            GDN(N, inverse=True),
            self.attention_block(N, 8),
            deconv(N, N, kernel_size=5, stride=2),
            GDN(N, inverse=True),
            deconv(N, 3, kernel_size=5, stride=2),
        )

    def attention_block(self, dim: int, window_size: int) -> GatedAttentionBlock:
        """Gated block with 8-head window attention, shifted by half a window."""
        return GatedAttentionBlock(dim, SwinWindowAttention(dim, 8, window_size, window_size // 2))

    @property
    def config(self) -> dict[str, Any]:
        """Architecture and hyper-parameters, enough to rebuild the model."""
        return {"model": self.name, "N": self.N, "M": self.M, "num_slices": self.num_slices}

    def analysis(self, x: Tensor) -> Tensor:
        return self.g_a(x)

    def synthesis(self, y_hat: Tensor) -> Tensor:
        return self.g_s(y_hat)
