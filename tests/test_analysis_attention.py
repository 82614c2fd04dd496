"""Graph and window attention measured the same way: kNN share, weighted distance, entropy; node_map."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gabic import viz
from gabic.analysis import (
    attention_comparison,
    dense_weights,
    entropy_per_node,
    knn_graph_of,
    knn_share,
    weighted_distance,
    window_tokens,
)
from gabic.layers import knn_window_graph
from tests.conftest import synthetic_block

BLOCKS = ["g_a.4.conv_b.0", "g_a.8.conv_b.0", "g_s.0.conv_b.0", "g_s.5.conv_b.0"]


# --------------------------------------------------------------------------- knn_share
def test_uniform_rows_give_k_over_n_minus_1():
    torch.manual_seed(0)
    nW, heads, n, k = 3, 2, 16, 5
    idx = knn_window_graph(torch.randn(nW, n, 8), k, rule="self-excluded")
    share = knn_share(torch.full((nW, heads, n, n), 1 / n), idx)
    assert share.shape == (nW, heads, n)
    torch.testing.assert_close(share, torch.full_like(share, k / (n - 1)), atol=1e-12, rtol=0)


def test_mass_on_one_node():
    n = 4
    idx = torch.tensor([[[1, 2], [0, 3], [3, 0], [2, 1]]])  # (1, 4, 2)
    A = torch.zeros(1, 1, n, n)
    A[0, 0, 0, 2] = 1.0  # node 0: all on neighbour 2
    A[0, 0, 1, 2] = 1.0  # node 1: all on 2, not a neighbour
    A[0, 0, 2, 2], A[0, 0, 2, 0] = 0.7, 0.3  # node 2: self and neighbour 0 -> self left out
    A[0, 0, 3, 3] = 1.0  # node 3: all on itself -> nothing on others
    share = knn_share(A, idx)[0, 0]
    assert share[:3].tolist() == [1.0, 0.0, 1.0]
    assert math.isnan(float(share[3]))


def test_self_in_idx_is_left_out():
    """The published rule may keep a node among its own neighbours: with idx (self, j1, j2) a uniform
    row puts 2 of its n - 1 shares on the neighbours."""
    n = 9
    idx = torch.stack([torch.tensor([i, (i + 1) % n, (i + 2) % n]) for i in range(n)])[None]
    share = knn_share(torch.full((1, 1, n, n), 1 / n), idx)
    torch.testing.assert_close(share, torch.full_like(share, 2 / (n - 1)), atol=1e-12, rtol=0)


def test_knn_share_checks_shapes():
    with pytest.raises(ValueError, match="dense"):
        knn_share(torch.zeros(1, 1, 4, 2), torch.zeros(1, 4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="idx"):
        knn_share(torch.zeros(1, 1, 4, 4), torch.zeros(2, 4, 2, dtype=torch.long))


# --------------------------------------------------------------------------- distance and entropy
def test_weighted_distance_by_hand():
    """A 2x2 window: nodes 0 (0,0), 1 (0,1), 2 (1,0), 3 (1,1)."""
    A = torch.zeros(1, 1, 4, 4)
    A[0, 0, 0, 0], A[0, 0, 0, 3] = 0.5, 0.5  # 0.5 * 0 + 0.5 * sqrt 2
    A[0, 0, 1, 0], A[0, 0, 1, 2] = 0.5, 0.5  # 0.5 * 1 + 0.5 * sqrt 2
    A[0, 0, 2, :] = 0.25  # 0.25 * (1 + 0 + 1 + sqrt 2)
    A[0, 0, 3, 3] = 1.0  # 0
    d = weighted_distance(synthetic_block("window", 2, A))
    r2 = math.sqrt(2)
    torch.testing.assert_close(d[0, 0], torch.tensor([0.5 * r2, 0.5 + 0.5 * r2, 0.25 * (2 + r2), 0.0], dtype=torch.float64))

    idx = torch.tensor([[[3, 1], [0, 2], [3, 1], [0, 2]]])
    w = torch.tensor([[[[0.25, 0.75], [1.0, 0.0], [0.5, 0.5], [0.1, 0.9]]]])  # (1, 1, 4, 2)
    g = synthetic_block("graph", 2, w, idx)
    expected = [0.25 * r2 + 0.75, 1.0, 0.5 * 1 + 0.5 * r2, 0.1 * r2 + 0.9 * 1]
    torch.testing.assert_close(weighted_distance(g)[0, 0], torch.tensor(expected, dtype=torch.float64))
    # the graph's weights scattered to a dense map give the same distances as a window block
    dense = dense_weights(g)
    assert dense[0, 0, 0].tolist() == [0.0, 0.75, 0.0, 0.25]
    torch.testing.assert_close(weighted_distance(synthetic_block("window", 2, dense)), weighted_distance(g))


def test_entropy_of_uniform_rows():
    n, k = 16, 5
    ent = entropy_per_node(synthetic_block("window", 4, torch.full((2, 3, n, n), 1 / n)))
    assert ent.shape == (2, 3, n)
    torch.testing.assert_close(ent, torch.full_like(ent, math.log(n)))
    idx = knn_window_graph(torch.randn(2, n, 8), k, rule="self-excluded")
    ent = entropy_per_node(synthetic_block("graph", 4, torch.full((2, 3, n, k), 1 / k), idx))
    torch.testing.assert_close(ent, torch.full_like(ent, math.log(k)))
    one_hot = torch.zeros(1, 1, n, n)
    one_hot[..., 0] = 1
    assert float(entropy_per_node(synthetic_block("window", 4, one_hot)).abs().max()) == 0.0


# --------------------------------------------------------------------------- node_map
def _check_round_trip(block: viz.BlockCapture) -> None:
    H, W = block.resolution
    torch.manual_seed(0)
    fmap = torch.randn(1, 3, H, W)
    tokens = window_tokens(fmap, block)  # (nW, n, 3)
    torch.testing.assert_close(viz.node_map(block, tokens), fmap[0].permute(1, 2, 0), rtol=0, atol=0)
    torch.testing.assert_close(viz.node_map(block, tokens[..., 1]), fmap[0, 1], rtol=0, atol=0)


def test_node_map_inverts_window_tokens(gabic_cap, wacnn_cap):
    for cap in (gabic_cap, wacnn_cap):
        for block in cap.values():
            _check_round_trip(block)
    w = torch.zeros(0)
    _check_round_trip(synthetic_block("graph", 4, w, resolution=(5, 7)))  # padded to 8x8
    _check_round_trip(synthetic_block("window", 4, w, shift=2, resolution=(8, 12)))
    _check_round_trip(synthetic_block("window", 4, w, shift=1, resolution=(6, 10)))
    with pytest.raises(ValueError, match="values"):
        viz.node_map(gabic_cap["g_a.4"], torch.zeros(3, 64))


def test_frequency_map_is_unchanged(gabic_cap):
    """block_statistics' frequency map, against the inline reshape it used before node_map."""
    for b in gabic_cap.values():
        stats = viz.block_statistics(b)
        ws, (Hp, Wp), (nWh, nWw) = b.window_size, b.padded_size, b.grid
        old = stats["in_degree"].view(nWh, nWw, ws, ws).permute(0, 2, 1, 3).reshape(Hp, Wp)[: b.resolution[0], : b.resolution[1]]
        assert torch.equal(stats["frequency_map"], old)


# --------------------------------------------------------------------------- on real captures
def test_knn_graph_of_a_shifted_window_block(wacnn_cap):
    """The k nearest other nodes by the normalised distance, in windows of the map rolled by -shift
    (built here independently of gabic.layers and window_tokens)."""
    for block in wacnn_cap.values():
        k = 5
        idx = knn_graph_of(block, k)
        ws, s = block.window_size, block.shift
        x = torch.roll(block.input[0], shifts=(-s, -s), dims=(1, 2))  # (C, H, W)
        C, H, W = x.shape
        win = x.view(C, H // ws, ws, W // ws, ws).permute(1, 3, 2, 4, 0).reshape(-1, ws * ws, C)
        xn = F.normalize(win.double(), dim=-1)
        d = torch.cdist(xn, xn) ** 2
        d.diagonal(dim1=1, dim2=2).fill_(math.inf)
        assert not bool((idx == torch.arange(block.n)[None, :, None]).any())
        torch.testing.assert_close(d.gather(-1, idx).sort(-1).values, d.sort(-1).values[..., :k], atol=1e-6, rtol=0)


def test_attention_comparison_on_both_models(gabic_cap, wacnn_cap):
    for name in BLOCKS:
        g, w = gabic_cap[name], wacnn_cap[name]
        res = attention_comparison(g, w)
        assert res["k"] == 9
        for side, block in (("graph", g), ("window", w)):
            r = res[side]
            V = int(viz.valid_nodes(block).sum())
            assert r["name"] == name and r["kind"] == block.kind
            for measure in ("knn_share", "weighted_distance", "entropy"):
                assert r[measure].shape == (block.heads, V)
                assert r["per_node"][measure].shape == (block.num_windows, block.heads, block.n)
                assert not bool(r[measure].isnan().any())
            assert float(r["entropy"].max()) <= r["entropy_max"] + 1e-9
        gs, ws_ = res["graph"]["knn_share"], res["window"]["knn_share"]
        torch.testing.assert_close(gs, torch.ones_like(gs), atol=1e-6, rtol=0)
        assert 0 <= float(ws_.min()) and float(ws_.max()) <= 1
        assert res["window"]["knn_idx"].shape == (w.num_windows, w.n, 9)
        assert res["window"]["uniform_share"] == pytest.approx(9 / (w.n - 1))
        assert res["graph"]["entropy_max"] == pytest.approx(math.log(9))
        assert res["window"]["entropy_max"] == pytest.approx(math.log(w.n))
        swapped = attention_comparison(w, g)
        torch.testing.assert_close(swapped["window"]["knn_share"], ws_)
    other_k = attention_comparison(gabic_cap["g_a.4"], wacnn_cap["g_a.4"], k=4)
    assert other_k["graph"]["knn_idx"].shape[-1] == 4
    assert float(other_k["graph"]["knn_share"].max()) <= 1


def test_attention_comparison_refuses_mismatched_blocks(gabic_cap, wacnn_cap):
    with pytest.raises(ValueError, match="one graph block and one window block"):
        attention_comparison(gabic_cap["g_a.4"], gabic_cap["g_s.5"])
    with pytest.raises(ValueError, match="not at the same place"):
        attention_comparison(gabic_cap["g_a.4"], wacnn_cap["g_a.8"])
    with pytest.raises(ValueError, match="knn must be"):
        knn_graph_of(wacnn_cap["g_a.8"], 16)
