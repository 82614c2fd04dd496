"""The PyTorch Geometric backend of the kNN graph attention.

Not imported lazily: :mod:`gabic.layers` imports it at the top, so ``import gabic`` (through
:mod:`gabic.models`) imports ``torch_geometric``, a required dependency. Only the
:class:`GraphAttentionPropagation` of a layer is built lazily, on its first ``"pyg"`` forward pass
(:meth:`gabic.layers.KNNGraphAttention._forward_pyg`).
"""

from __future__ import annotations

from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.utils import softmax


class GraphAttentionPropagation(MessagePassing):
    """Sparse multi-head attention along ``edge_index`` (source = neighbour j, target = centre i).

    Holds no parameters: :class:`gabic.layers.KNNGraphAttention` owns them and passes the
    projected ``query`` (already scaled by 1/sqrt(D)), ``key`` and ``value``, each
    ``(num_nodes, heads, D)``, and optionally ``edge_bias`` ``(num_edges, heads, D)``
    (``lin_edge(e)``). For each edge ``score = sum_d (q_i * k_j + edge_bias)``; the scores
    are soft-maxed over the edges entering each centre and the values summed.

    Returns the aggregated values ``(num_nodes, heads, D)`` and the weights
    ``(num_edges, heads)`` in edge order.
    """

    def __init__(self):
        super().__init__(aggr="add", node_dim=0, flow="source_to_target")
        self._alpha: Tensor | None = None

    def forward(self, query: Tensor, key: Tensor, value: Tensor, edge_index: Tensor, edge_bias: Tensor | None):
        out = self.propagate(edge_index, query=query, key=key, value=value, edge_bias=edge_bias, size=None)
        alpha, self._alpha = self._alpha, None
        return out, alpha

    def message(
        self,
        query_i: Tensor,
        key_j: Tensor,
        value_j: Tensor,
        edge_bias: Tensor | None,
        index: Tensor,
        ptr: Tensor | None,
        size_i: int | None,
    ) -> Tensor:
        score = query_i * key_j
        if edge_bias is not None:
            score = score + edge_bias
        alpha = softmax(score.sum(-1), index, ptr, size_i)  # (E, heads)
        self._alpha = alpha
        return value_j * alpha.unsqueeze(-1)


__all__ = ["GraphAttentionPropagation"]
