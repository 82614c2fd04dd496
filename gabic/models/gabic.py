"""GABIC (ICIP 2024): WACNN with kNN graph attention inside windows instead of window self-attention."""

from __future__ import annotations

from typing import Any

from gabic.layers import Backend, GatedAttentionBlock, WindowGraphAttention
from gabic.models.wacnn import WACNN

__all__ = ["GABIC"]

#: Paper defaults (ICIP 2024): k = 9 neighbours, 8 heads, edge attribute on.
PAPER_KNN, PAPER_HEADS = 9, 8


def _check_knn(knn: int, nodes: int) -> None:
    if not isinstance(knn, int) or isinstance(knn, bool) or not 1 <= knn <= nodes - 1:
        raise ValueError(f"knn must be an integer in 1..{nodes - 1} (the smallest window has {nodes} nodes), got {knn!r}")


class GABIC(WACNN):
    """The GABIC codec: WACNN's backbone and entropy model with graph-based attention blocks.

    Each of the four attention blocks (``g_a.4``, ``g_a.8``, ``g_s.0``, ``g_s.5``) is a
    :class:`~gabic.layers.WindowGraphAttention` inside the gated residual shell.

    Args:
        N, M, num_slices: as :class:`~gabic.models.wacnn.WACNN` (paper 192, 320, 10).
        knn: neighbours per node (paper 9); changeable later with :meth:`set_knn`.
        heads: attention heads (paper 8).
        use_edge_attr: per-head bias from the in-window offset (released models: True).
        dissimilarity: attend to the k farthest nodes instead of the nearest.
        backend: ``"dense"`` (default, masked attention per window) or ``"pyg"``
            (PyTorch Geometric message passing, as published); same parameters.
    """

    name = "gabic"

    def __init__(
        self,
        N: int = 192,
        M: int = 320,
        num_slices: int = 10,
        knn: int = PAPER_KNN,
        heads: int = PAPER_HEADS,
        use_edge_attr: bool = True,
        dissimilarity: bool = False,
        backend: Backend = "dense",
    ):
        _check_knn(knn, 4 * 4)
        self._graph_kwargs = dict(knn=knn, heads=heads, use_edge_attr=use_edge_attr, dissimilarity=dissimilarity, backend=backend)
        super().__init__(N=N, M=M, num_slices=num_slices)

    def attention_block(self, dim: int, window_size: int) -> GatedAttentionBlock:
        return GatedAttentionBlock(dim, WindowGraphAttention(dim, window_size, **self._graph_kwargs))

    def graph_attentions(self) -> dict[str, WindowGraphAttention]:
        """The four graph attention modules by state_dict prefix (e.g. ``"g_a.4.conv_b.0"``)."""
        return {n: m for n, m in self.named_modules() if isinstance(m, WindowGraphAttention)}

    def set_knn(self, knn: int) -> None:
        """Use ``knn`` neighbours in every block from now on (same weights).

        ``knn`` must fit the smallest window (1..15 with the 4x4 windows of the paper); a
        refused value leaves every block as it was.
        """
        blocks = self.graph_attentions().values()
        _check_knn(knn, min(m.window_size**2 for m in blocks))
        for m in blocks:
            m.knn = knn
        self._graph_kwargs["knn"] = knn

    def set_backend(self, backend: Backend) -> None:
        """Switch every block to the ``"dense"`` or ``"pyg"`` backend."""
        for m in self.graph_attentions().values():
            m.backend = backend
        self._graph_kwargs["backend"] = backend

    @property
    def config(self) -> dict[str, Any]:
        cfg = super().config
        cfg.update(self._graph_kwargs)
        return cfg
