"""WACNN's and STF's shifted-window attention against a per-pixel hand computation."""

from __future__ import annotations

import math

import torch

from gabic.layers import SwinWindowAttention, shifted_window_mask


def _region(i: int, size: int, ws: int, shift: int) -> int:
    """Region label of row/column i of the shifted map (the Swin slices)."""
    if i < size - ws:
        return 0
    return 1 if i < size - shift else 2


def _reference(block: SwinWindowAttention, x: torch.Tensor, row: int, col: int) -> torch.Tensor:
    """Output at pixel (row, col) of the shifted map, written out pixel by pixel."""
    attn = block.attn
    ws, s, h = block.window_size, block.shift_size, attn.num_heads
    _, C, H, W = x.shape
    t = torch.roll(x[0].permute(1, 2, 0), shifts=(-s, -s), dims=(0, 1))  # (H, W, C)
    r0, c0 = row - row % ws, col - col % ws
    members = [(r0 + a, c0 + b) for a in range(ws) for b in range(ws)]
    qkv = attn.qkv(t[row, col])
    D = C // h
    out = []
    for head in range(h):
        q = qkv[head * D : (head + 1) * D]
        scores, values = [], []
        for r, c in members:
            kv = attn.qkv(t[r, c])
            k, v = kv[C + head * D : C + (head + 1) * D], kv[2 * C + head * D : 2 * C + (head + 1) * D]
            idx = (row - r + ws - 1) * (2 * ws - 1) + (col - c + ws - 1)
            score = q @ k / math.sqrt(D) + attn.relative_position_bias_table[idx, head]
            same = (_region(row, H, ws, s), _region(col, W, ws, s)) == (_region(r, H, ws, s), _region(c, W, ws, s))
            scores.append(score + (0.0 if (same or not s) else -100.0))
            values.append(v)
        a = torch.stack(scores).softmax(0)
        out.append(sum(a[j] * values[j] for j in range(len(values))))
    return attn.proj(torch.cat(out))


def test_shifted_window_attention_matches_hand_computation():
    torch.manual_seed(0)
    block = SwinWindowAttention(16, num_heads=4, window_size=4, shift_size=2)
    torch.nn.init.normal_(block.attn.relative_position_bias_table)
    x = torch.randn(1, 16, 8, 12)
    with torch.no_grad():
        out = block(x)
        for row, col in [(0, 0), (3, 5), (6, 10), (7, 11), (5, 2)]:
            expected = _reference(block, x, row, col)
            # undo the roll: shifted-map pixel (row, col) lands at (row + s, col + s)
            r, c = (row + 2) % 8, (col + 2) % 12
            torch.testing.assert_close(out[0, :, r, c] - x[0, :, r, c], expected, atol=1e-5, rtol=1e-5)


def test_shift_mask_values():
    mask = shifted_window_mask(8, 8, 4, 2, torch.device("cpu"))
    assert mask.shape == (4, 16, 16)
    assert torch.all(mask[0] == 0)  # the first window holds one region only
    assert set(mask[3].unique().tolist()) == {0.0, -100.0}
