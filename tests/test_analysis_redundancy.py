"""Feature redundancy: pairwise cosine, effective rank, the block's own windows."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from gabic import viz
from gabic.analysis import block_redundancy, effective_rank, mean_pairwise_cosine, redundancy_table, window_tokens
from tests.conftest import synthetic_block


# --------------------------------------------------------------------------- the measures
def test_orthonormal_tokens():
    for n in (2, 5, 16):
        tokens = torch.cat([torch.eye(n), torch.zeros(n, 3)], dim=1)  # (n, n + 3)
        assert float(effective_rank(tokens)) == pytest.approx(n, abs=1e-5)
        assert float(mean_pairwise_cosine(tokens)) == pytest.approx(0.0, abs=1e-12)


def test_repeated_tokens():
    v = torch.tensor([0.3, -1.2, 2.0, 0.5])
    tokens = torch.stack([v, v, 2 * v, 0.5 * v, v])
    assert float(effective_rank(tokens)) == pytest.approx(1.0, abs=1e-6)
    assert float(mean_pairwise_cosine(tokens)) == pytest.approx(1.0, abs=1e-12)


def test_two_tokens_by_hand():
    """a = (1, 0), b = (1, 1): cos = 1/sqrt(2); the singular values of [[1, 0], [1, 1]] are the golden
    ratio phi and 1/phi (A^T A has eigenvalues (3 +- sqrt 5) / 2), summing to sqrt 5."""
    tokens = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert float(mean_pairwise_cosine(tokens)) == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    phi = (1 + math.sqrt(5)) / 2
    p = [phi / math.sqrt(5), 1 / phi / math.sqrt(5)]
    assert float(effective_rank(tokens)) == pytest.approx(math.exp(-sum(q * math.log(q) for q in p)), abs=1e-9)


def test_zero_tokens_and_too_few():
    a, b, zero = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), torch.zeros(2)
    # 6 ordered pairs, of which (a, b) and (b, a) have cosine 1/sqrt(2); the zero token has cosine 0
    assert float(mean_pairwise_cosine(torch.stack([a, zero, b]))) == pytest.approx(2 / math.sqrt(2) / 6, abs=1e-12)
    assert math.isnan(float(mean_pairwise_cosine(a[None])))
    assert math.isnan(float(effective_rank(torch.zeros(4, 3))))
    assert math.isnan(float(mean_pairwise_cosine(torch.stack([a, b]), torch.tensor([True, False]))))


def test_mask_excludes_tokens():
    torch.manual_seed(0)
    tokens = torch.randn(3, 6, 5)  # three sets of 6 tokens
    mask = torch.tensor([[True, True, False, True, False, True]] * 3)
    mask[2] = True
    keep = [0, 1, 3, 5]
    for fn in (mean_pairwise_cosine, effective_rank):
        got = fn(tokens, mask)
        assert got.shape == (3,)
        for s in range(2):
            torch.testing.assert_close(got[s], fn(tokens[s, keep]))
        torch.testing.assert_close(got[2], fn(tokens[2]))
    # independently: the mean of the cosine matrix off its diagonal
    u = F.normalize(tokens[0, keep].double(), dim=-1)
    cos = u @ u.T
    torch.testing.assert_close(mean_pairwise_cosine(tokens, mask)[0], (cos.sum() - cos.trace()) / 12)
    with pytest.raises(ValueError, match="mask"):
        mean_pairwise_cosine(tokens, mask[:, :4])


# --------------------------------------------------------------------------- the block's windows
def _coordinate_map(H: int, W: int) -> torch.Tensor:
    """``(1, 2, H, W)``: channel 0 holds row + 1, channel 1 col + 1 (0 stays free for padding)."""
    r, c = torch.meshgrid(torch.arange(H) + 1.0, torch.arange(W) + 1.0, indexing="ij")
    return torch.stack([r, c])[None]


def _check_node_order(block: viz.BlockCapture) -> None:
    H, W = block.resolution
    tokens = window_tokens(_coordinate_map(H, W), block)
    assert tokens.shape == (block.num_windows, block.n, 2)
    for w in range(block.num_windows):
        for i in range(block.n):
            row, col = viz.feature_position(block, w, i)
            expected = [row + 1.0, col + 1.0] if row < H and col < W else [0.0, 0.0]
            assert tokens[w, i].tolist() == expected, (block.name, w, i)


def test_window_tokens_follow_feature_position(gabic_cap, wacnn_cap):
    for cap in (gabic_cap, wacnn_cap):
        for block in cap.values():
            _check_node_order(block)
    assert {b.shift for b in wacnn_cap.values()} == {2, 4}
    # blocks with only their geometry set (window padding and shift together: no model has both)
    _check_node_order(synthetic_block("graph", 4, resolution=(5, 7)))  # padded to 8x8
    _check_node_order(synthetic_block("window", 4, shift=2, resolution=(8, 12)))
    _check_node_order(synthetic_block("window", 4, shift=1, resolution=(6, 10)))  # padding and shift


def test_window_tokens_checks_the_map(gabic_cap):
    with pytest.raises(ValueError, match="feature_map"):
        window_tokens(torch.zeros(1, 2, 5, 5), gabic_cap["g_a.4"])


# --------------------------------------------------------------------------- per block
def test_block_redundancy_counts_valid_nodes(gabic_cap):
    """g_a.4 (scale 4, 32x32 map, 8x8 windows) on an image of 36x36 pixels at offset (0, 0): valid
    rows and columns 0..8, so window 0 has 64 valid nodes, windows 1 and 4 have 8 (a column, a
    row), window 5 one (NaN), the others none (NaN)."""
    block = dataclasses.replace(gabic_cap["g_a.4"], image_size=(36, 36), offset=(0, 0))
    r = block_redundancy(block)
    count = torch.zeros(16, dtype=torch.long)
    count[[0, 1, 4, 5]] = torch.tensor([64, 8, 8, 1])
    assert torch.equal(r["count"], count)
    assert (r["name"], r["kind"]) == ("g_a.4.conv_b.0", "graph")
    x, y = block.input[0], block.output[0]  # (C, 32, 32)
    windows = {0: (slice(0, 8), slice(0, 8)), 1: (slice(0, 8), slice(8, 9)), 4: (slice(8, 9), slice(0, 8))}
    for w, (rows, cols) in windows.items():
        tin = x[:, rows, cols].reshape(x.shape[0], -1).T
        tout = y[:, rows, cols].reshape(y.shape[0], -1).T
        torch.testing.assert_close(r["cosine_in"][w], mean_pairwise_cosine(tin))
        torch.testing.assert_close(r["cosine_out"][w], mean_pairwise_cosine(tout))
        torch.testing.assert_close(r["rank_in"][w], effective_rank(tin))
        torch.testing.assert_close(r["rank_out"][w], effective_rank(tout))
    others = [w for w in range(16) if w not in windows]
    for key in ("cosine_in", "cosine_out", "rank_in", "rank_out"):
        assert r[key].shape == (16,)
        assert bool(r[key][others].isnan().all())
        assert not bool(r[key][list(windows)].isnan().any())

    cap = viz.AttentionCapture("gabic", {block.name: block}, gabic_cap.image, gabic_cap.x_hat, gabic_cap.bpp)
    (row,) = redundancy_table(cap)
    assert (row["name"], row["kind"], row["windows"]) == (block.name, "graph", 3)
    values = sorted(float(r["rank_in"][w]) for w in windows)
    assert row["rank_in_mean"] == pytest.approx(sum(values) / 3, rel=1e-12)
    assert row["rank_in_median"] == pytest.approx(values[1], rel=1e-12)


def test_redundancy_table_of_both_models(gabic_cap, wacnn_cap):
    for cap, kind in ((gabic_cap, "graph"), (wacnn_cap, "window")):
        rows = redundancy_table(cap)
        assert [r["name"] for r in rows] == cap.names()
        for row, block in zip(rows, cap.values(), strict=True):
            assert row["kind"] == kind and row["windows"] == block.num_windows  # 128x128: every window valid
            assert -1 <= row["cosine_in_mean"] <= 1 and -1 <= row["cosine_out_mean"] <= 1
            C = block.input.shape[1]
            assert 1 <= row["rank_in_mean"] <= min(block.n, C) and 1 <= row["rank_out_mean"] <= min(block.n, C)
