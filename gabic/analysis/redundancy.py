"""How redundant are the features a window holds, before and after its attention block?

Two measures of a set of tokens (a window's node features):

- :func:`mean_pairwise_cosine`: the mean cosine similarity over ordered pairs of distinct tokens
  (1: all tokens point the same way; 0: mutually orthogonal on average);
- :func:`effective_rank`: ``exp`` of the Shannon entropy of the normalised singular values of the
  token matrix (Roy & Vetterli, "The effective rank: a measure of effective dimensionality",
  EUSIPCO 2007): 1 for tokens that are all multiples of one vector, ``n`` for ``n`` orthogonal
  tokens of equal norm.

:func:`window_tokens` splits a block's feature map into that block's own windows (padding, cyclic
shift), node order as :func:`gabic.viz.geometry.feature_position`; :func:`block_redundancy` and
:func:`redundancy_table` measure every window of captured blocks (:func:`gabic.viz.capture`) on
the block's input and output, counting only :func:`gabic.viz.geometry.valid_nodes`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gabic.layers import window_partition
from gabic.viz.capture import AttentionCapture, BlockCapture
from gabic.viz.geometry import valid_nodes

__all__ = ["REDUNDANCY_MEASURES", "block_redundancy", "effective_rank", "mean_pairwise_cosine", "redundancy_table", "window_tokens"]

#: The per-window measures of :func:`block_redundancy`, in order.
REDUNDANCY_MEASURES = ("cosine_in", "cosine_out", "rank_in", "rank_out")


def _mask(tokens: Tensor, mask: Tensor | None) -> Tensor:
    """``(..., n)`` bool mask, all True when None; checked against ``tokens`` ``(..., n, C)``."""
    if tokens.dim() < 2:
        raise ValueError(f"tokens must be (..., n, C), got shape {tuple(tokens.shape)}")
    if mask is None:
        return torch.ones(tokens.shape[:-1], dtype=torch.bool)
    if tuple(mask.shape) != tuple(tokens.shape[:-1]):
        raise ValueError(f"mask must be (..., n) = {tuple(tokens.shape[:-1])} like tokens (..., n, C), got {tuple(mask.shape)}")
    return mask.to(torch.bool).cpu()


def mean_pairwise_cosine(tokens: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean cosine similarity over ordered pairs ``i != j`` of the valid tokens.

    Args:
        tokens: ``(..., n, C)``.
        mask: ``(..., n)`` bool, the tokens to count; default None: all.

    Returns:
        ``(...)`` float64: ``sum_{i != j valid} cos(t_i, t_j) / (m (m - 1))`` with ``m`` valid tokens.
        A zero token has cosine 0 with every other token (it still counts as a token); fewer than
        2 valid tokens give NaN.
    """
    valid = _mask(tokens, mask)
    u = F.normalize(tokens.detach().double().cpu(), dim=-1) * valid[..., None]  # zero vectors stay zero
    s = u.sum(-2)  # (..., C)
    total = (s * s).sum(-1) - (u * u).sum((-2, -1))  # sum over i != j of u_i . u_j
    m = valid.sum(-1).double()
    return torch.where(m >= 2, total / (m * (m - 1)).clamp_min(1), torch.full_like(total, math.nan))


def effective_rank(tokens: Tensor, mask: Tensor | None = None) -> Tensor:
    """Effective rank (Roy & Vetterli, 2007) of the matrix of valid tokens, without centring.

    With singular values ``s`` of the ``(m, C)`` matrix of the ``m`` valid tokens and
    ``p = s / sum(s)``: ``exp(-sum p log p)`` (``0 log 0 = 0``), between 1 and ``min(m, C)``.

    Args:
        tokens: ``(..., n, C)``.
        mask: ``(..., n)`` bool, the tokens to count; default None: all. Masked tokens are zeroed,
            which only adds zero singular values.

    Returns:
        ``(...)`` float64; NaN where the valid tokens are all zero (or there are none).
    """
    valid = _mask(tokens, mask)
    x = tokens.detach().double().cpu() * valid[..., None]
    s = torch.linalg.svdvals(x)  # (..., min(n, C))
    total = s.sum(-1, keepdim=True)
    p = s / total.clamp_min(1e-300)
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)
    return torch.where(total[..., 0] > 0, entropy.exp(), torch.full_like(entropy, math.nan))


def window_tokens(feature_map: Tensor, block: BlockCapture) -> Tensor:
    """Split a feature map into the windows of ``block``: ``(1, C, H, W) -> (nW, n, C)``.

    The map is zero-padded right and bottom to the block's ``padded_size`` (GABIC's padding to
    the window side), cyclically shifted by ``-shift`` along both axes (WACNN's shifted windows)
    and split into windows in row-major order, nodes row-major inside a window: token
    ``[w, i]`` is the map at :func:`gabic.viz.geometry.feature_position` ``(block, w, i)`` (zero
    for padding nodes). :func:`gabic.viz.geometry.node_map` is the inverse.

    Args:
        feature_map: ``(1, C, H, W)`` with ``(H, W)`` the block's ``resolution`` (e.g. its
            captured ``input`` or ``output``).
        block: a :class:`gabic.viz.BlockCapture`.
    """
    if feature_map.dim() != 4 or feature_map.shape[0] != 1 or tuple(feature_map.shape[-2:]) != tuple(block.resolution):
        raise ValueError(
            f"feature_map must be (1, C, {block.resolution[0]}, {block.resolution[1]}) for block {block.name}, "
            f"got shape {tuple(feature_map.shape)}"
        )
    (H, W), (Hp, Wp), s = block.resolution, block.padded_size, block.shift
    x = F.pad(feature_map.detach().cpu(), (0, Wp - W, 0, Hp - H)).permute(0, 2, 3, 1)  # (1, Hp, Wp, C)
    if s:
        x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
    return window_partition(x, block.window_size)


def block_redundancy(block: BlockCapture) -> dict[str, Any]:
    """Redundancy of every window of a captured block, on its input and its output.

    Returns:
        ``name``, ``kind``; ``valid`` ``(nW, n)`` bool (:func:`gabic.viz.geometry.valid_nodes`);
        ``count`` ``(nW,)`` valid nodes per window; and ``(nW,)`` float64 per window over its
        valid nodes: ``cosine_in``, ``cosine_out`` (:func:`mean_pairwise_cosine`), ``rank_in``,
        ``rank_out`` (:func:`effective_rank`) of the block's input and output tokens. Windows with
        fewer than 2 valid nodes get NaN in all four.
    """
    valid = valid_nodes(block)
    count = valid.sum(-1)
    enough = count >= 2
    out: dict[str, Any] = {"name": block.name, "kind": block.kind, "valid": valid, "count": count}
    for side, fmap in (("in", block.input), ("out", block.output)):
        tokens = window_tokens(fmap, block)
        for measure, fn in (("cosine", mean_pairwise_cosine), ("rank", effective_rank)):
            values = fn(tokens, valid)
            out[f"{measure}_{side}"] = torch.where(enough, values, torch.full_like(values, math.nan))
    return out


def redundancy_table(capture: AttentionCapture) -> list[dict[str, Any]]:
    """One row per block of a capture: ``name``, ``kind``, ``windows`` (windows with at least 2
    valid nodes) and, for each of :data:`REDUNDANCY_MEASURES`, ``<measure>_mean`` and
    ``<measure>_median`` over those windows (floats; NaN when there are none)."""
    rows = []
    for block in capture.values():
        r = block_redundancy(block)
        row: dict[str, Any] = {"name": r["name"], "kind": r["kind"], "windows": int((r["count"] >= 2).sum())}
        for measure in REDUNDANCY_MEASURES:
            v = r[measure][~torch.isnan(r[measure])]
            row[f"{measure}_mean"] = float(v.mean()) if v.numel() else math.nan
            row[f"{measure}_median"] = float(v.quantile(0.5)) if v.numel() else math.nan
        rows.append(row)
    return rows
