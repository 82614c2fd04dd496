"""The kNN graph attention: the published vectors, the two backends, the graph itself."""

from __future__ import annotations

import math

import pytest
import torch

from gabic.layers import (
    WindowGraphAttention,
    edge_attribute_matrix,
    knn_edge_index,
    knn_window_graph,
    window_merge,
    window_partition,
)
from tests.conftest import DATA

VECTORS = ["knn_attention_dim192_ws8", "knn_attention_dim320_ws4"]


def _layer(config: dict, backend: str) -> WindowGraphAttention:
    return WindowGraphAttention(
        config["dim"],
        config["window_size"],
        config["knn"],
        config["heads"],
        config["use_edge_attr"],
        config["dissimilarity"],
        backend=backend,
    )


@pytest.fixture(scope="module", params=VECTORS)
def vector(request):
    return torch.load(DATA / f"{request.param}.pt", weights_only=True)


@pytest.mark.parametrize("backend", ["dense", "pyg"])
def test_published_vectors(vector, backend):
    layer = _layer(vector["config"], backend)
    layer.load_state_dict(vector["state_dict"])
    with torch.no_grad():
        out = layer(vector["input"])
    assert out.shape == vector["output"].shape
    torch.testing.assert_close(out, vector["output"], atol=1e-5, rtol=0)


def test_published_neighbour_sets(vector):
    layer = _layer(vector["config"], "dense")
    windows, _, _ = layer.to_windows(vector["input"])
    edge_index = knn_edge_index(layer.graph(windows))
    ref = vector["edge_index"]
    ours = sorted(map(tuple, edge_index.t().tolist()))
    theirs = sorted(map(tuple, ref.t().tolist()))
    assert ours == theirs


def _brute_force_graph(nodes: torch.Tensor, k: int, far: bool) -> torch.Tensor:
    """Independent reference: per node, sort the others by (distance, index) in Python."""
    Bw, n, _ = nodes.shape
    xn = torch.nn.functional.normalize(nodes.double(), dim=-1)
    out = torch.empty(Bw, n, k, dtype=torch.long)
    for w in range(Bw):
        for i in range(n):
            d = [(float(((xn[w, i] - xn[w, j]) ** 2).sum()), j) for j in range(n) if j != i]
            d.sort(key=lambda t: (-t[0] if far else t[0], t[1]))
            out[w, i] = torch.tensor([j for _, j in d[:k]])
    return out


def _exact_tie_nodes(seed: int) -> torch.Tensor:
    """Windows whose distances are exact in float32, so ties are real ties.

    Each node has exactly four entries of +-1 (norm 2, normalised entries +-0.5), so every
    distance is a small multiple of 0.25 and many are equal; some nodes are all zero, as
    the zero padding of a window is.
    """
    g = torch.Generator().manual_seed(seed)
    nodes = torch.zeros(4, 16, 8)
    for w in range(4):
        for i in range(16):
            pos = torch.randperm(8, generator=g)[:4]
            nodes[w, i, pos] = torch.randint(0, 2, (4,), generator=g).float() * 2 - 1
    nodes[1, 10:] = 0.0  # a padded window
    nodes[3] = 0.0  # a window entirely in the padding
    return nodes


@pytest.mark.parametrize("far", [False, True])
def test_self_excluded_graph_is_k_nearest_with_index_tie_break(far):
    nodes = _exact_tie_nodes(0)
    for k in (1, 4, 9, 15):
        assert torch.equal(knn_window_graph(nodes, k, far, rule="self-excluded"), _brute_force_graph(nodes, k, far)), k


@pytest.mark.parametrize("rule", ["published", "self-excluded"])
def test_graph_on_random_features_is_k_nearest(rule):
    """Without ties both rules give the k nearest other nodes."""
    torch.manual_seed(1)
    nodes = torch.randn(3, 16, 8)
    assert torch.equal(knn_window_graph(nodes, 5, rule=rule), _brute_force_graph(nodes, 5, False))


def test_self_excluded_graph_never_contains_self_even_for_all_zero_windows():
    idx = knn_window_graph(torch.zeros(2, 64, 4), 9, rule="self-excluded")
    centres = torch.arange(64).view(1, 64, 1)
    assert not (idx == centres).any()
    assert idx[0, 0].tolist() == list(range(1, 10))  # all tied: lower index first


# -- the published rule, against a restatement of the released code --------------------------------


def _released_window_partition(x: torch.Tensor, ws: int) -> torch.Tensor:
    """The released code's window split: ``(B, C, H, W)`` -> ``(B*nW, C, ws, ws)`` through the same
    transposes and views (gcn_lib/torch_local.py), so the memory layout is the original's."""
    x = x.transpose(1, 2).transpose(2, 3)
    B, H, W, C = x.shape
    w = x.view(B, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, C)
    return w.transpose(2, 3).transpose(1, 2)


def _released_graph(x: torch.Tensor, ws: int, k: int, far: bool) -> torch.Tensor:
    """The released graph of a feature map ``(B, C, H, W)``, ``(B*nW, n, k)``: zero padding right and
    bottom, the window split above, then SparseKnnGraph with loop=False (gcn_lib/torch_edge_sparse.py):
    reshape to (B, C, n, 1), L2-normalise over channels, |a|^2 + (-2 a.b) + |b|^2, then topk(dist, k)
    for dissimilarity or topk(-dist, k + 1) with the first dropped."""
    H, W = x.shape[-2:]
    if W % ws:
        x = torch.nn.functional.pad(x, (0, ws - W % ws))
    if H % ws:
        x = torch.nn.functional.pad(x, (0, 0, 0, ws - H % ws))
    w = _released_window_partition(x, ws)
    B, C = w.shape[:2]
    w = torch.nn.functional.normalize(w.reshape(B, C, -1, 1).contiguous(), p=2.0, dim=1)
    pts = w.transpose(2, 1).squeeze(-1)
    x_inner = -2 * torch.matmul(pts, pts.transpose(2, 1))
    x_square = torch.sum(torch.mul(pts, pts), dim=-1, keepdim=True)
    dist = x_square + x_inner + x_square.transpose(2, 1)
    if far:
        return torch.topk(dist, k=k)[1]
    return torch.topk(-dist, k=k + 1)[1][:, :, 1:]


def _planted_duplicates(seed: int, C: int = 16, H: int = 13, W: int = 11) -> torch.Tensor:
    """A feature map whose windows hold repeated feature vectors (a flat region, copied vectors, a
    whole window of one vector) and zero padding (13x11 is not a multiple of 4 or 8)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, C, H, W, generator=g)
    x[0, :, 0:4, 0:4] = x[0, :, 0:1, 0:1]  # one window of a single vector
    x[0, :, 4:6, 4:8] = x[0, :, 5:6, 6:7]  # half a window
    x[1, :, 1, 1] = x[1, :, 2, 3]  # pairs
    x[1, :, 0, 2] = x[1, :, 3, 0]
    x[1, :, 8:12, 0:4] = 0.0  # an all-zero window (as the quantised latent often is)
    return x


@pytest.mark.parametrize("backend", ["dense", "pyg"])
@pytest.mark.parametrize("ws,k,far", [(4, 9, False), (4, 3, False), (8, 9, False), (4, 5, True), (8, 9, True)])
def test_published_rule_reproduces_the_released_graph(backend, ws, k, far):
    x = _planted_duplicates(0)
    layer = WindowGraphAttention(16, ws, k, 4, dissimilarity=far, backend=backend)
    assert layer.knn_rule == "published"  # the default
    with torch.no_grad():
        _, info = layer(x, return_attention=True)
    expected = _released_graph(x, ws, k, far)
    assert torch.equal(info["idx"], expected)
    if not far:  # the planted ties make some node its own neighbour, as in the released code
        centres = torch.arange(ws * ws).view(1, -1, 1)
        assert (info["idx"] == centres).any()


@pytest.mark.parametrize("backend", ["dense", "pyg"])
def test_rules_agree_without_ties_and_differ_with_them(backend):
    torch.manual_seed(2)
    published = WindowGraphAttention(16, 4, 5, 4, backend=backend)
    excluded = WindowGraphAttention(16, 4, 5, 4, backend=backend, knn_rule="self-excluded")
    excluded.load_state_dict(published.state_dict())
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(published(x), excluded(x), atol=0, rtol=0)
        tied = _planted_duplicates(1)
        _, a = published(tied, return_attention=True)
        _, b = excluded(tied, return_attention=True)
    assert not torch.equal(a["idx"], b["idx"])
    assert not (b["idx"] == torch.arange(16).view(1, 16, 1)).any()


def test_knn_rule_is_checked_where_it_is_defined():
    with pytest.raises(ValueError, match="knn_rule must be one of 'published', 'self-excluded'"):
        WindowGraphAttention(8, 4, 3, knn_rule="topk")
    layer = WindowGraphAttention(8, 4, 3)
    with pytest.raises(ValueError, match="knn_rule"):
        layer.knn_rule = "nearest"
    assert layer.knn_rule == "published"
    with pytest.raises(ValueError, match="backend must be one of 'dense', 'pyg'"):
        layer.backend = "sparse"


@pytest.mark.parametrize("k", [0, 16, -1, 2.5, True])
def test_k_outside_range_is_refused(k):
    with pytest.raises(ValueError, match=r"1\.\.15 \(windows of 16 nodes\)"):
        WindowGraphAttention(8, window_size=4, knn=k)
    with pytest.raises(ValueError, match=r"1\.\.15"):
        knn_window_graph(torch.randn(1, 16, 8), k)


def test_edge_attribute_is_the_released_formula():
    e = edge_attribute_matrix(4)
    # node 1 = (0, 1), node 4 = (1, 0): offsets cancel -> 0; node 0 vs node 15 = (3, 3): 36
    assert e[1, 4] == 0 and e[0, 15] == 36 and e[15, 0] == 36 and e[0, 1] == 1
    for i in range(16):
        for j in range(16):
            ri, ci, rj, cj = i // 4, i % 4, j // 4, j % 4
            assert e[i, j] == ((ri - rj) + (ci - cj)) ** 2


@pytest.mark.parametrize(
    "shape,ws,k,heads,edge",
    [((2, 16, 13, 11), 4, 5, 4, True), ((1, 24, 20, 19), 8, 9, 8, True), ((2, 16, 9, 7), 4, 3, 2, False)],
)
def test_dense_equals_pyg_with_padding(shape, ws, k, heads, edge):
    torch.manual_seed(0)
    dense = WindowGraphAttention(shape[1], ws, k, heads, use_edge_attr=edge, backend="dense")
    pyg = WindowGraphAttention(shape[1], ws, k, heads, use_edge_attr=edge, backend="pyg")
    pyg.load_state_dict(dense.state_dict())
    if edge:
        torch.nn.init.normal_(dense.conv.lin_edge.weight, std=0.3)
        pyg.conv.lin_edge.weight.data.copy_(dense.conv.lin_edge.weight)
    x = torch.randn(shape)
    xd, xp = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_d, out_p = dense(xd), pyg(xp)
    torch.testing.assert_close(out_d, out_p, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out_d)
    (out_d * g).sum().backward()
    (out_p * g).sum().backward()
    torch.testing.assert_close(xd.grad, xp.grad, atol=1e-4, rtol=1e-4)
    for (name, p_d), (_, p_p) in zip(dense.named_parameters(), pyg.named_parameters(), strict=True):
        torch.testing.assert_close(p_d.grad, p_p.grad, atol=1e-4, rtol=1e-4, msg=name)


@pytest.mark.parametrize("backend", ["dense", "pyg"])
def test_return_attention_weights(backend):
    torch.manual_seed(0)
    layer = WindowGraphAttention(16, 4, 5, 4, backend=backend)
    x = torch.randn(1, 16, 8, 12)
    out, info = layer(x, return_attention=True)
    torch.testing.assert_close(out, layer(x))
    w = info["weights"]
    assert w.shape == (6, 4, 16, 5)
    torch.testing.assert_close(w.sum(-1), torch.ones(6, 4, 16))


def test_both_backends_give_the_same_attention_weights():
    torch.manual_seed(0)
    dense = WindowGraphAttention(16, 4, 5, 4, backend="dense")
    pyg = WindowGraphAttention(16, 4, 5, 4, backend="pyg")
    pyg.load_state_dict(dense.state_dict())
    x = torch.randn(2, 16, 8, 8)
    (_, a), (_, b) = dense(x, return_attention=True), pyg(x, return_attention=True)
    assert torch.equal(a["idx"], b["idx"])
    torch.testing.assert_close(a["weights"], b["weights"], atol=1e-6, rtol=1e-5)


def test_attention_matches_hand_computation():
    """One node, written out from the formula in the docstring."""
    torch.manual_seed(3)
    layer = WindowGraphAttention(8, 2, 2, 2, backend="dense")
    torch.nn.init.normal_(layer.conv.lin_edge.weight)
    x = torch.randn(1, 8, 2, 2)
    out = layer(x)
    nodes = x.permute(0, 2, 3, 1).reshape(4, 8)
    conv = layer.conv
    q, k, v = conv.qkv(nodes).split(8, dim=-1)
    idx = knn_window_graph(nodes[None], 2)[0]
    e = edge_attribute_matrix(2)
    beta = conv.lin_edge.weight.view(2, 4).sum(-1)
    i = 3
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        s = torch.stack([q[i, sl] @ k[j, sl] / math.sqrt(4) + beta[h] * e[i, j] for j in idx[i]])
        a = s.softmax(0)
        heads.append(sum(a[t] * v[j, sl] for t, j in enumerate(idx[i])))
    expected = conv.proj(torch.cat(heads)) + nodes[i]
    torch.testing.assert_close(out[0, :, 1, 1], expected, atol=1e-5, rtol=1e-5)


def test_window_partition_round_trip():
    x = torch.arange(2 * 8 * 12 * 3, dtype=torch.float).view(2, 8, 12, 3)
    w = window_partition(x, 4)
    assert w.shape == (12, 16, 3)
    assert torch.equal(w[1, 0], x[0, 0, 4])  # second window starts at column 4
    assert torch.equal(window_merge(w, 4, 8, 12), x)
