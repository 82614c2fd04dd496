"""Statistics of the captured graphs and attention: neighbour distances, adjacency, entropy, in-degree,
and how much attention leaves each node's spatial neighbourhood (:func:`nonlocal_share`)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gabic.viz.capture import BlockCapture
from gabic.viz.geometry import node_map, valid_nodes

__all__ = [
    "LOCAL_NEIGHBOURS",
    "attention_entropy",
    "block_statistics",
    "graph_statistics",
    "node_entropy",
    "node_grid",
    "nonlocal_share",
    "spatial_neighbourhood",
    "weighted_distance",
]

#: The size of the local neighbourhood a window-attention block (WACNN) is measured against by
#: :func:`nonlocal_share`: the 8 nodes around a node, those a 3x3 convolution reaches.
LOCAL_NEIGHBOURS = 8


def graph_statistics(idx: Tensor, window_size: int, weights: Tensor | None = None, valid: Tensor | None = None) -> dict[str, Any]:
    """Statistics of kNN window graphs.

    Args:
        idx: neighbours ``(nW, n, k)`` with ``n = window_size**2``.
        window_size: window side ``ws``; node i sits at ``divmod(i, ws)`` in its window.
        weights: attention ``(nW, heads, n, k)`` or None.
        valid: ``(nW, n)`` bool, the centre nodes to count (default all); neighbours are counted
            whatever they are.

    Returns:
        ``mean_distance``: mean Euclidean distance (in node-grid units) from a node to its neighbours;
        ``adjacent_share``: share of neighbours that are 8-adjacent (Chebyshev distance 1: the 8
        surrounding nodes); ``entropy``: ``(heads,)`` attention entropy in nats, mean over nodes
        (None without weights; ``log k`` is the uniform maximum); ``frequency``: ``(ws, ws)`` mean
        number of times each window position is chosen as a neighbour (by counted centres, per window);
        ``in_degree``: ``(nW, n)`` times each node is chosen by a counted centre.
    """
    nW, n, k = idx.shape
    if n != window_size**2:
        raise ValueError(f"idx has {n} nodes per window, window_size={window_size} needs {window_size**2}")
    valid = torch.ones(nW, n, dtype=torch.bool) if valid is None else valid.to(torch.bool).cpu()
    idx = idx.cpu()
    pos = node_grid(window_size).float()
    delta = pos[idx] - pos[:, None, :].expand(nW, n, k, 2)  # (nW, n, k, 2)
    dist = delta.norm(dim=-1)
    adjacent = delta.abs().amax(-1) == 1
    sel = valid[..., None].expand(nW, n, k)
    count = int(sel.sum())
    in_degree = torch.zeros(nW, n).scatter_add_(1, idx.reshape(nW, n * k), sel.reshape(nW, n * k).float())
    out: dict[str, Any] = {
        "mean_distance": float(dist[sel].mean()) if count else math.nan,
        "adjacent_share": float(adjacent[sel].float().mean()) if count else math.nan,
        "entropy": None,
        "frequency": in_degree.mean(0).reshape(window_size, window_size),
        "in_degree": in_degree,
    }
    if weights is not None:
        out["entropy"] = attention_entropy(weights, valid)
    return out


def node_entropy(weights: Tensor) -> Tensor:
    """Per-node attention entropy in nats, ``-sum_j w_ij log w_ij`` (``0 log 0 = 0``), float64 on the CPU.

    Args:
        weights: attention ``(..., k)``: ``(nW, heads, n, k)`` of a graph block or ``(nW, heads, n, n)``
            of a window block, each row summing to 1.

    Returns:
        ``(...)``, e.g. ``(nW, heads, n)``; ``log k`` (``log n``) for uniform rows.
    """
    w = weights.detach().double().cpu()
    return -(w * torch.log(w.clamp_min(1e-300))).sum(-1)


def node_grid(window_size: int) -> Tensor:
    """``(n, 2)`` int64: ``(row, col)`` of each node of a ``window_size``-sided window (node ``r * ws + c``)."""
    r, c = torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
    return torch.stack((r, c), -1).reshape(-1, 2)


def _node_distances(ws: int) -> Tensor:
    """``(n, n)`` Euclidean distances between the nodes of a ``ws x ws`` window, in node units."""
    pos = node_grid(ws).double()
    return torch.cdist(pos, pos)


def weighted_distance(block: BlockCapture) -> Tensor:
    """Attention-weighted spatial distance ``sum_j A_ij ||pos_i - pos_j||`` ``(nW, heads, n)`` float64.

    Positions are on the window's node grid (node ``r * ws + c`` at ``(r, c)``; in a WACNN shifted
    window, on the shifted grid), distances in node units (one node = ``block.scale`` pixels).
    Window attention sums over all n nodes of the window, graph attention over its k neighbours
    ``idx``.
    """
    D = _node_distances(block.window_size)
    w = block.weights.detach().double().cpu()
    if block.kind == "graph":
        idx = block.idx.cpu()
        Dg = D[torch.arange(block.n)[:, None], idx]  # (nW, n, k)
        return (w * Dg[:, None]).sum(-1)
    return (w * D).sum(-1)


def spatial_neighbourhood(window_size: int, k: int) -> Tensor:
    """Which nodes are spatially local to each node of a window: ``(n, n)`` bool, ``[i, j]`` True
    when node j is node i itself or one of the ``k`` nodes nearest to i on the window's node grid
    (Euclidean distance in node units), every node exactly as near as the k-th of them included (so
    no tie is broken by the node order).

    It is the neighbourhood a local operator with as many neighbours would use (``k = 8``: the 8
    nodes around an interior node), for every position of the window alike: a corner's neighbourhood
    reaches farther than a centre node's, so the positions are compared each with its own.

    Args:
        window_size: the window side ``ws`` (``n = ws**2`` nodes, node ``r * ws + c`` at ``(r, c)``).
        k: neighbours per node, ``1 <= k``; capped at ``n - 1`` (the whole window).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    D = _node_distances(window_size)
    n = D.shape[0]
    others = D + torch.diag(torch.full((n,), math.inf, dtype=D.dtype))
    kth = others.sort(-1).values[:, min(k, n - 1) - 1]  # (n,) distance of the k-th nearest other node
    return D <= kth[:, None] + 1e-9


def nonlocal_share(block: BlockCapture) -> Tensor:
    """Share of each node's attention that leaves its spatial neighbourhood: ``(nW, heads, n)`` float64,

        share_i = sum_j w_ij [j not in S(i)] [j covers the image],

    over the node's neighbours j (graph blocks: its k graph neighbours; window blocks: every node of
    the window) with ``S(i)`` = :func:`spatial_neighbourhood` ``(ws, k)`` (``k = block.knn``; for
    window-attention blocks :data:`LOCAL_NEIGHBOURS`) and "covers the image" as
    :func:`~gabic.viz.geometry.valid_nodes` (attention to the zero padding is not counted). 0: the
    node attends only where a local window of k neighbours would; 1: all its attention goes
    beyond, to parts of the image that kNN attention reaches and a local one does not. Linear in
    the weights, so the mean over heads is the share of the mean attention.
    """
    k = block.knn if block.kind == "graph" else LOCAL_NEIGHBOURS
    local = spatial_neighbourhood(block.window_size, k)  # (n, n)
    valid = valid_nodes(block)  # (nW, n)
    w = block.weights.detach().double().cpu()
    if block.kind == "graph":
        idx = block.idx.cpu()
        counted = ~local[torch.arange(block.n)[:, None], idx] & valid.gather(1, idx.reshape(block.num_windows, -1)).view_as(idx)
    else:
        counted = ~local[None] & valid[:, None, :]  # (nW, n, n)
    return (w * counted[:, None].double()).sum(-1)


def attention_entropy(weights: Tensor, valid: Tensor | None = None) -> Tensor:
    """``(heads,)`` entropy in nats (:func:`node_entropy`) of weights ``(nW, heads, n, k)``, mean
    over the nodes where ``valid`` ``(nW, n)`` is True (default all)."""
    ent = node_entropy(weights)  # (nW, heads, n)
    if valid is None:
        return ent.mean((0, 2)).float()
    m = valid.cpu()[:, None, :].expand_as(ent).double()
    return ((ent * m).sum((0, 2)) / m.sum((0, 2)).clamp_min(1)).float()


def block_statistics(block: BlockCapture) -> dict[str, Any]:
    """:func:`graph_statistics` of a captured block, counting only its :func:`valid_nodes` as centres.

    Adds ``frequency_map``: ``(H, W)`` times each position of the feature map is chosen as a
    neighbour, and ``padded_neighbour_share``: share of the neighbours of counted centres that are
    padding nodes. Window-attention blocks (WACNN) get ``entropy`` only (over all n nodes).
    """
    valid = valid_nodes(block)
    if block.kind != "graph":
        return {"name": block.name, "entropy": attention_entropy(block.weights, valid)}
    stats = graph_statistics(block.idx, block.window_size, block.weights, valid)
    stats["frequency_map"] = node_map(block, stats["in_degree"])
    chosen_valid = valid.gather(1, block.idx.reshape(block.num_windows, -1)).reshape_as(block.idx)
    sel = valid[..., None].expand_as(block.idx)
    stats["padded_neighbour_share"] = float((~chosen_valid[sel]).float().mean()) if bool(sel.any()) else math.nan
    stats["name"] = block.name
    return stats
