"""GABIC's kNN graph attention and WACNN's window attention, measured the same way.

For a node ``i`` of a window with attention row ``A_i`` (over the window's nodes, or over the
node's graph neighbours):

- :func:`knn_share`: the share of the attention ``i`` pays to *other* nodes that falls on its k
  feature-space nearest neighbours, ``sum_{j in kNN(i), j != i} A_ij / sum_{j != i} A_ij``. A
  uniform window row gives ``k / (n - 1)``; GABIC's own graph gives 1 by construction. Does dense
  window attention concentrate where GABIC's graph would have put its edges?
- :func:`weighted_distance`: ``sum_j A_ij ||pos_i - pos_j||``, the attention-weighted spatial
  distance in node units (positions on the window's node grid);
- :func:`entropy_per_node`: ``-sum_j A_ij log A_ij`` in nats (:func:`gabic.viz.statistics.node_entropy`);
  its maximum is ``log k`` for a graph block and ``log n`` for a window block.

:func:`knn_graph_of` builds the kNN graph GABIC would build from a block's input in that block's
own (for WACNN: shifted) windows; :func:`attention_comparison` puts a GABIC and a WACNN block at
the same place side by side.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from gabic.analysis.redundancy import window_tokens
from gabic.layers import check_knn, knn_window_graph
from gabic.viz.capture import BlockCapture
from gabic.viz.geometry import valid_nodes
from gabic.viz.statistics import node_entropy, weighted_distance

__all__ = [
    "ATTENTION_MEASURES",
    "attention_comparison",
    "dense_weights",
    "entropy_per_node",
    "knn_graph_of",
    "knn_share",
    "weighted_distance",
]

#: The per-node measures of :func:`attention_comparison`, in order.
ATTENTION_MEASURES = ("knn_share", "weighted_distance", "entropy")


def knn_graph_of(block: BlockCapture, k: int, dissimilarity: bool = False) -> Tensor:
    """The kNN graph ``(nW, n, k)`` int64 of a block's input, in the block's own windows.

    :func:`gabic.layers.knn_window_graph` (which L2-normalises the features itself) with
    ``rule="self-excluded"`` on :func:`~gabic.analysis.redundancy.window_tokens` of
    ``block.input``: the graph GABIC would build from that input, in that block's windows (for
    WACNN: the shifted windows, whose regions from opposite edges of the map share a window;
    window attention masks those pairs, the graph does not). Padding nodes (zero features) are
    candidates like any other node, as in GABIC.

    Args:
        block: a captured block (graph or window).
        k: k, the number of neighbours per node, ``1 <= k <= n - 1``.
        dissimilarity: the k farthest nodes instead of the nearest; default False.
    """
    try:
        check_knn(k, block.n)
    except ValueError as err:
        raise ValueError(f"block {block.name}: {err}") from None
    return knn_window_graph(window_tokens(block.input, block), k, dissimilarity, rule="self-excluded")


def dense_weights(block: BlockCapture) -> Tensor:
    """The block's attention as full window maps ``(nW, heads, n, n)`` float64: a window block's
    weights as they are, a graph block's ``(nW, heads, n, k)`` scattered to the columns of ``idx``
    (0 elsewhere)."""
    w = block.weights.detach().double().cpu()
    if block.kind != "graph":
        return w
    nW, heads, n, k = w.shape
    idx = block.idx.cpu()[:, None].expand(nW, heads, n, k)
    return torch.zeros(nW, heads, n, n, dtype=torch.float64).scatter_add_(-1, idx, w)


def knn_share(weights: Tensor, idx: Tensor) -> Tensor:
    """Share of each node's attention on other nodes that falls on its kNN neighbours.

    ``sum_{j in idx[w, i], j != i} A[w, h, i, j] / sum_{j != i} A[w, h, i, j]``: the node itself
    is left out of both sums (it may appear in ``idx`` under the published graph rule), so a
    uniform row gives exactly ``k / (n - 1)`` with ``k`` other nodes in ``idx``.

    Args:
        weights: dense attention ``(nW, heads, n, n)`` (rows sum to 1; e.g. :func:`dense_weights`).
        idx: neighbours ``(nW, n, k)`` (e.g. :func:`knn_graph_of` or a graph block's ``idx``).

    Returns:
        ``(nW, heads, n)`` float64 in [0, 1]; NaN for a row with no mass on other nodes.
    """
    if weights.dim() != 4 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"weights must be dense window attention (nW, heads, n, n), got shape {tuple(weights.shape)}")
    nW, _, n, _ = weights.shape
    if idx.dim() != 3 or tuple(idx.shape[:2]) != (nW, n):
        raise ValueError(f"idx must be (nW, n, k) = ({nW}, {n}, k) to match weights, got shape {tuple(idx.shape)}")
    A = weights.detach().double().cpu()
    member = torch.zeros(nW, n, n, dtype=torch.bool).scatter_(-1, idx.cpu(), True)
    others = ~torch.eye(n, dtype=torch.bool)
    num = (A * (member & others)[:, None]).sum(-1)
    den = (A * others).sum(-1)
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.full_like(num, math.nan))


def entropy_per_node(block: BlockCapture) -> Tensor:
    """``(nW, heads, n)`` attention entropy of each node in nats, float64
    (:func:`gabic.viz.statistics.node_entropy`); at most ``log k`` (graph) or ``log n`` (window)."""
    return node_entropy(block.weights)


def _measures(block: BlockCapture, idx: Tensor, k: int) -> dict[str, Any]:
    valid = valid_nodes(block)
    per_node = {
        "knn_share": knn_share(dense_weights(block), idx),
        "weighted_distance": weighted_distance(block),
        "entropy": entropy_per_node(block),
    }
    out: dict[str, Any] = {
        "name": block.name,
        "kind": block.kind,
        "heads": block.heads,
        "window_size": block.window_size,
        "shift": block.shift,
        "knn_idx": idx,
        "valid": valid,
        "entropy_max": math.log(block.knn if block.kind == "graph" else block.n),
        "uniform_share": k / (block.n - 1),
        "per_node": per_node,
    }
    for name, values in per_node.items():
        out[name] = values.permute(1, 0, 2)[:, valid]  # (heads, V): over the valid nodes, window by window
    return out


def attention_comparison(block_a: BlockCapture, block_b: BlockCapture, k: int | None = None) -> dict[str, Any]:
    """Measure a GABIC graph block and a WACNN window block at the same place the same way.

    Args:
        block_a, block_b: one ``kind == "graph"`` and one ``kind == "window"`` block, either order,
            with the same feature-map resolution and image.
        k: k, the number of neighbours per node in the kNN sets of :func:`knn_share`; default None:
            the graph block's ``knn``.

    Returns:
        ``{"k": k, "graph": {...}, "window": {...}}``; each block's dict holds ``name``, ``kind``,
        ``heads``, ``window_size``, ``shift``, ``valid`` ``(nW, n)`` (:func:`gabic.viz.valid_nodes`),
        ``knn_idx`` ``(nW, n, k)`` (the kNN sets used), ``entropy_max`` (``log k`` or ``log n``),
        ``uniform_share`` (``k / (n - 1)``, the share of a uniform row), ``per_node``
        ``{measure: (nW, heads, n)}`` and, for each of :data:`ATTENTION_MEASURES`, its values over
        the valid nodes ``(heads, V)`` (float64, window-major order; NaN where a row has no mass
        on other nodes).

        The kNN sets: for the window block, :func:`knn_graph_of` its input; for the graph block,
        its own ``idx`` when ``k`` is its ``knn`` (so its share is 1 up to rounding), else
        :func:`knn_graph_of` its input with ``k``.
    """
    kinds = {block_a.kind, block_b.kind}
    if kinds != {"graph", "window"}:
        raise ValueError(f"attention_comparison needs one graph block and one window block, got {block_a.kind!r} and {block_b.kind!r}")
    graph, window = (block_a, block_b) if block_a.kind == "graph" else (block_b, block_a)
    if graph.resolution != window.resolution or graph.image_size != window.image_size:
        raise ValueError(
            f"blocks {graph.name} (map {graph.resolution}, image {graph.image_size}) and "
            f"{window.name} (map {window.resolution}, image {window.image_size}) are not at the same place"
        )
    k = graph.knn if k is None else k
    graph_idx = graph.idx.cpu() if k == graph.knn else knn_graph_of(graph, k)
    return {"k": k, "graph": _measures(graph, graph_idx, k), "window": _measures(window, knn_graph_of(window, k), k)}
