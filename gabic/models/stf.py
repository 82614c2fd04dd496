"""STF, the SymmetricalTransFormer (Zou et al., CVPR 2022): a Swin-transformer codec."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from gabic.layers import DropPath, WindowAttention
from gabic.models.base import Option
from gabic.models.channel_context import ChannelContextCodec, _widths
from gabic.models.registry import register

__all__ = ["STF"]

#: Hidden widths of STF's context transforms at embed_dim 48 (scaled with embed_dim).
STF_CC_HIDDEN = (224, 176, 128, 64)


class Mlp(nn.Module):
    """fc1, GELU, fc2 on ``(..., C)``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    """Pre-norm Swin block on tokens ``(B, H*W, C)``: (shifted) window attention, then MLP.

    The map is zero-padded to multiples of the window inside the block and cropped back.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, shift_size: int, mlp_ratio: float, drop_path: float):
        super().__init__()
        self.window_size, self.shift_size = window_size, shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, H: int, W: int) -> Tensor:
        B, L, C = x.shape
        ws = self.window_size
        t = F.pad(self.norm1(x).view(B, H, W, C), (0, 0, 0, (-W) % ws, 0, (-H) % ws))
        t = self.attn.on_map(t, self.shift_size)
        x = x + self.drop_path(t[:, :H, :W].reshape(B, L, C))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """``(B, H*W, C) -> (B, ceil(H/2)*ceil(W/2), 2C)``: concatenate 2x2 neighbours, norm, linear."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor, H: int, W: int) -> tuple[Tensor, int, int]:
        B, L, C = x.shape
        t = F.pad(x.view(B, H, W, C), (0, 0, 0, W % 2, 0, H % 2))
        t = torch.cat([t[:, 0::2, 0::2], t[:, 1::2, 0::2], t[:, 0::2, 1::2], t[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(t.reshape(B, -1, 4 * C))), (H + 1) // 2, (W + 1) // 2


class PatchSplit(nn.Module):
    """``(B, H*W, C) -> (B, 4*H*W, C/2)``: norm, linear to 2C, pixel shuffle by 2."""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(dim)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: Tensor, H: int, W: int) -> tuple[Tensor, int, int]:
        B, L, C = x.shape
        t = self.reduction(self.norm(x)).transpose(1, 2).reshape(B, 2 * C, H, W)
        t = self.shuffle(t)
        return t.flatten(2).transpose(1, 2), 2 * H, 2 * W


class SwinStage(nn.Module):
    """``depth`` Swin blocks (every second one shifted by half a window), then an optional
    patch merging (analysis) or patch split (synthesis)."""

    def __init__(self, dim, depth, num_heads, window_size, mlp_ratio, drop_path: Sequence[float], resample=None):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, mlp_ratio, drop_path[i])
            for i in range(depth)
        )
        self.downsample = resample(dim) if resample is not None else None

    def forward(self, x: Tensor, H: int, W: int) -> tuple[Tensor, int, int]:
        for blk in self.blocks:
            x = blk(x, H, W)
        if self.downsample is not None:
            return self.downsample(x, H, W)
        return x, H, W


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding with LayerNorm: ``(B, 3, H, W) -> (B, E, H/p, W/p)``."""

    def __init__(self, patch_size: int, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch_size
        x = self.proj(F.pad(x, (0, (-x.shape[-1]) % p, 0, (-x.shape[-2]) % p)))
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


@register
class STF(ChannelContextCodec):
    """SymmetricalTransFormer with the channel-wise entropy model (12 slices, 6 of support).

    Args:
        embed_dim: channels after the patch embedding (48); y has ``8 * embed_dim`` channels
            and z ``4 * embed_dim``.
        depths, num_heads: per stage (2, 2, 6, 2) and (3, 6, 12, 24); the synthesis mirrors them.
        window_size: Swin window (4). patch_size: patch embedding (2). mlp_ratio: 4.
        drop_path_rate: stochastic depth, rising linearly to this value (0.2; training only).
        num_slices: slices of y (12).
    """

    name = "stf"
    label = "STF"
    OPTIONS = (
        Option("embed_dim", int, "channels after the patch embedding (paper 48; y has 8x, z 4x)"),
        Option("num_slices", int, "slices of the channel-wise context (paper 12)"),
    )
    UNHASHED = frozenset({"drop_path_rate"})  # stochastic depth acts in training only
    ENCODER_ONLY = ("patch_embed.", "layers.", "h_a.")

    def __init__(
        self,
        embed_dim: int = 48,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int = 4,
        patch_size: int = 2,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.2,
        num_slices: int = 12,
    ):
        if len(depths) != 4 or len(num_heads) != 4:
            raise ValueError("STF has 4 stages: depths and num_heads need 4 values each")
        M, Nz = embed_dim * 8, embed_dim * 4
        super().__init__(
            latent_channels=M,
            hyper_channels=Nz,
            num_slices=num_slices,
            h_s_widths=[*_widths(Nz, M, 4), M],
            cc_hidden=[round(w * embed_dim / 48) for w in STF_CC_HIDDEN],
        )
        self._config = {
            "model": self.name,
            "embed_dim": embed_dim,
            "depths": list(depths),
            "num_heads": list(num_heads),
            "window_size": window_size,
            "patch_size": patch_size,
            "mlp_ratio": mlp_ratio,
            "drop_path_rate": drop_path_rate,
            "num_slices": num_slices,
        }
        self.embed_dim, self.patch_size = embed_dim, patch_size
        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        starts = [sum(depths[:i]) for i in range(4)]
        self.layers = nn.ModuleList(
            SwinStage(
                embed_dim * 2**i,
                depths[i],
                num_heads[i],
                window_size,
                mlp_ratio,
                dpr[starts[i] : starts[i] + depths[i]],
                PatchMerging if i < 3 else None,
            )
            for i in range(4)
        )
        rdepths, rheads = list(depths)[::-1], list(num_heads)[::-1]
        rstarts = [sum(rdepths[:i]) for i in range(4)]  # the published code slices dpr this way
        self.syn_layers = nn.ModuleList(
            SwinStage(
                embed_dim * 2 ** (3 - i),
                rdepths[i],
                rheads[i],
                window_size,
                mlp_ratio,
                dpr[rstarts[i] : rstarts[i] + rdepths[i]],
                PatchSplit if i < 3 else None,
            )
            for i in range(4)
        )
        self.end_conv = nn.Sequential(
            nn.Conv2d(embed_dim, embed_dim * patch_size**2, kernel_size=5, padding=2),
            nn.PixelShuffle(patch_size),
            nn.Conv2d(embed_dim, 3, kernel_size=3, padding=1),
        )

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    @classmethod
    def recognise(cls, state_dict: dict[str, Tensor]) -> dict[str, Any] | None:
        """Every hyper-parameter but the drop-path rate (training only: the paper's) from the keys and
        shapes of a state dict with a patch embedding and Swin stages, else None."""
        sd = state_dict
        if "patch_embed.proj.weight" not in sd or "layers.0.blocks.0.attn.relative_position_index" not in sd:
            return None
        embed = sd["patch_embed.proj.weight"].shape[0]
        depths = [len({k.split(".")[3] for k in sd if k.startswith(f"layers.{i}.blocks.")}) for i in range(4)]
        heads = [sd[f"layers.{i}.blocks.0.attn.relative_position_bias_table"].shape[1] for i in range(4)]
        n_rel = sd["layers.0.blocks.0.attn.relative_position_index"].shape[0]
        hidden = sd["layers.0.blocks.0.mlp.fc1.weight"].shape[0]
        return {
            "model": cls.name,
            "embed_dim": embed,
            "depths": depths,
            "num_heads": heads,
            "window_size": round(n_rel**0.5),
            "patch_size": sd["patch_embed.proj.weight"].shape[-1],
            "mlp_ratio": hidden / embed,
            "num_slices": cls.count_slices(sd),
        }

    def analysis(self, x: Tensor) -> Tensor:
        t = self.patch_embed(x)
        H, W = t.shape[-2:]
        t = t.flatten(2).transpose(1, 2)
        for layer in self.layers:
            t, H, W = layer(t, H, W)
        return t.transpose(1, 2).reshape(t.shape[0], -1, H, W)

    def synthesis(self, y_hat: Tensor) -> Tensor:
        H, W = y_hat.shape[-2:]
        t = y_hat.flatten(2).transpose(1, 2)
        for layer in self.syn_layers:
            t, H, W = layer(t, H, W)
        return self.end_conv(t.transpose(1, 2).reshape(t.shape[0], -1, H, W))
