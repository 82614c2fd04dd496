"""WACNN (Zou et al., CVPR 2022): CNN codec with window attention and a channel-wise entropy model.

The backbone (:class:`AttentionCNN`) is shared with GABIC, which puts kNN graph attention where
WACNN has window attention; the attention block is the constructor's only difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn
from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from torch import Tensor

from gabic.layers import GatedAttentionBlock, SwinWindowAttention
from gabic.models.base import Option
from gabic.models.channel_context import ChannelContextCodec
from gabic.models.registry import register

__all__ = ["SIZE_OPTIONS", "WACNN", "WINDOW_SIZES", "AttentionCNN", "window_attention_block"]

#: Window sides of the attention blocks: 8 at 1/4 resolution (g_a.4, g_s.5), 4 at 1/16 (g_a.8, g_s.0).
WINDOW_SIZES = (8, 4)

#: The sizes of WACNN and GABIC a user may set.
SIZE_OPTIONS = (
    Option("N", int, "transform channels (paper 192)"),
    Option("M", int, "latent channels (paper 320)"),
    Option("num_slices", int, "slices of the channel-wise context (paper 10)"),
)

#: Builds the gated attention block of ``dim`` channels with windows of side ``window_size``.
BlockFactory = Callable[[int, int], nn.Module]


def window_attention_block(dim: int, window_size: int) -> GatedAttentionBlock:
    """WACNN's block: 8-head window attention, shifted by half a window, in the gated shell."""
    return GatedAttentionBlock(dim, SwinWindowAttention(dim, 8, window_size, window_size // 2))


class AttentionCNN(ChannelContextCodec):
    """The backbone of WACNN and GABIC around the channel-wise entropy model.

    ``g_a``: conv(3,N,2), GDN, conv(N,N,2), GDN, ATTN(N, ws 8), conv(N,N,2), GDN, conv(N,M,2),
    ATTN(M, ws 4); ``g_s`` mirrors it with transposed convolutions and inverse GDN. ``block``
    builds each ATTN. Images ``(B, 3, H, W)`` with H, W multiples of 64; ``y`` is
    ``(B, M, H/16, W/16)``.

    Args:
        N: channels of the transforms and of z (paper 192).
        M: channels of y (paper 320); must be divisible by ``num_slices``.
        num_slices: slices of the channel-wise context (paper 10).
        block: ``block(dim, window_size)`` -> the gated attention block.
    """

    ENCODER_ONLY = ("g_a.", "h_a.")

    def __init__(self, N: int, M: int, num_slices: int, block: BlockFactory):
        super().__init__(latent_channels=M, hyper_channels=N, num_slices=num_slices)
        self.N, self.M = N, M
        self.g_a = nn.Sequential(
            conv(3, N, kernel_size=5, stride=2),
            GDN(N),
            conv(N, N, kernel_size=5, stride=2),
            GDN(N),
            block(N, WINDOW_SIZES[0]),
            conv(N, N, kernel_size=5, stride=2),
            GDN(N),
            conv(N, M, kernel_size=5, stride=2),
            block(M, WINDOW_SIZES[1]),
        )
        self.g_s = nn.Sequential(
            block(M, WINDOW_SIZES[1]),
            deconv(M, N, kernel_size=5, stride=2),
            GDN(N, inverse=True),
            deconv(N, N, kernel_size=5, stride=2),
            GDN(N, inverse=True),
            block(N, WINDOW_SIZES[0]),
            deconv(N, N, kernel_size=5, stride=2),
            GDN(N, inverse=True),
            deconv(N, 3, kernel_size=5, stride=2),
        )

    #: A key only this architecture's state dicts have (the first attention block's), set by subclasses.
    SIGNATURE = ""

    @classmethod
    def recognise(cls, state_dict: dict[str, Tensor]) -> dict[str, Any] | None:
        """``{"model", "N", "M", "num_slices"}`` read off the transforms' shapes when :attr:`SIGNATURE`
        is a key of ``state_dict``, else None."""
        if not cls.SIGNATURE or cls.SIGNATURE not in state_dict or "g_a.7.weight" not in state_dict:
            return None
        sd = state_dict
        return {
            "model": cls.name,
            "N": sd["g_a.0.weight"].shape[0],
            "M": sd["g_a.7.weight"].shape[0],
            "num_slices": cls.count_slices(sd),
        }

    def analysis(self, x: Tensor) -> Tensor:
        return self.g_a(x)

    def synthesis(self, y_hat: Tensor) -> Tensor:
        return self.g_s(y_hat)


@register
class WACNN(AttentionCNN):
    """The WACNN codec (window attention in the four blocks of :class:`AttentionCNN`).

    Args:
        N: channels of the transforms and of z (paper 192).
        M: channels of y (paper 320); must be divisible by ``num_slices``.
        num_slices: slices of the channel-wise context (paper 10).
    """

    name = "wacnn"
    label = "WACNN"
    OPTIONS = SIZE_OPTIONS
    SIGNATURE = "g_a.4.conv_b.0.attn.qkv.weight"

    def __init__(self, N: int = 192, M: int = 320, num_slices: int = 10):
        super().__init__(N, M, num_slices, window_attention_block)

    @property
    def config(self) -> dict[str, Any]:
        """Architecture and hyper-parameters, enough to rebuild the model."""
        return {"model": self.name, "N": self.N, "M": self.M, "num_slices": self.num_slices}
