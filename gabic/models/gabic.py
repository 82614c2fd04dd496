"""GABIC (ICIP 2024): WACNN with kNN graph attention inside windows instead of window self-attention."""

from __future__ import annotations

from functools import partial
from typing import Any

from torch import Tensor

from gabic.layers import BACKENDS, KNN_RULES, Backend, GatedAttentionBlock, KnnRule, WindowGraphAttention, check_knn
from gabic.models.base import Option
from gabic.models.registry import register
from gabic.models.wacnn import SIZE_OPTIONS, WINDOW_SIZES, AttentionCNN

#: Nodes in the smallest window: every block's k must fit it.
SMALLEST_WINDOW_NODES = min(WINDOW_SIZES) ** 2

__all__ = ["GABIC", "LEGACY_KNN_RULE"]

#: Paper defaults (ICIP 2024): k = 9 neighbours, 8 heads, edge attribute on.
PAPER_KNN, PAPER_HEADS = 9, 8

#: The graph rule of gabic's models and checkpoints before the rule was an option: a
#: configuration without ``knn_rule`` means it (see :meth:`GABIC.upgrade_config`).
LEGACY_KNN_RULE = "self-excluded"


def graph_attention_block(dim: int, window_size: int, **graph: Any) -> GatedAttentionBlock:
    """GABIC's block: :class:`~gabic.layers.WindowGraphAttention` (``graph``: its arguments) in the gated shell."""
    return GatedAttentionBlock(dim, WindowGraphAttention(dim, window_size, **graph))


@register
class GABIC(AttentionCNN):
    """The GABIC codec: WACNN's backbone and entropy model with graph-based attention blocks.

    Each of the four attention blocks (``g_a.4``, ``g_a.8``, ``g_s.0``, ``g_s.5``) is a
    :class:`~gabic.layers.WindowGraphAttention` inside the gated residual shell; the blocks check
    their own arguments (k against the smallest window first, so the message gives the model's
    range). The configuration is read off the blocks, so it always says what the model computes.

    Args:
        N, M, num_slices: as :class:`~gabic.models.wacnn.WACNN` (paper 192, 320, 10).
        knn: neighbours per node (paper 9; 1..15 fits every window); changeable with :meth:`set_knn`.
        heads: attention heads (paper 8).
        use_edge_attr: per-head bias from the in-window offset (released models: True).
        dissimilarity: attend to the k farthest nodes instead of the nearest.
        backend: ``"dense"`` (default, masked attention per window) or ``"pyg"``
            (PyTorch Geometric message passing, as published); same parameters.
        knn_rule: ``"published"`` (default: the released code's graph, ``torch.topk`` of k + 1
            with the first dropped) or ``"self-excluded"`` (never the node itself, stable
            tie-break); see :func:`gabic.layers.knn_window_graph`.
    """

    name = "gabic"
    label = "GABIC"
    OPTIONS = (
        *SIZE_OPTIONS,
        Option(
            "knn", int, f"k, the number of neighbours per node (paper {PAPER_KNN}; 1..{SMALLEST_WINDOW_NODES - 1})", inference=True
        ),
        Option("heads", int, f"attention heads (paper {PAPER_HEADS})"),
        Option("backend", str, "attention backend: dense (default) or pyg; same numbers", choices=BACKENDS, inference=True),
        Option(
            "knn_rule",
            str,
            "graph: published (the released code's torch.topk; default) or self-excluded",
            choices=KNN_RULES,
            inference=True,
        ),
    )
    SIGNATURE = "g_a.4.conv_b.0.conv.qkv.weight"
    UNHASHED = frozenset({"backend"})  # both backends compute the same numbers up to float rounding

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
        knn_rule: KnnRule = "published",
    ):
        check_knn(knn, SMALLEST_WINDOW_NODES)  # the model's range (1..15), before a block says its own
        block = partial(
            graph_attention_block,
            knn=knn,
            heads=heads,
            use_edge_attr=use_edge_attr,
            dissimilarity=dissimilarity,
            backend=backend,
            knn_rule=knn_rule,
        )
        super().__init__(N, M, num_slices, block)

    @classmethod
    def recognise(cls, state_dict: dict[str, Tensor]) -> dict[str, Any] | None:
        """As :meth:`AttentionCNN.recognise`, and ``use_edge_attr`` from the edge projection's presence
        (k, heads and the graph rule are not in the keys: the paper's values)."""
        config = super().recognise(state_dict)
        if config is not None:
            config["use_edge_attr"] = "g_a.4.conv_b.0.conv.lin_edge.weight" in state_dict
        return config

    def graph_attentions(self) -> dict[str, WindowGraphAttention]:
        """The four graph attention modules by state_dict prefix (e.g. ``"g_a.4.conv_b.0"``)."""
        return {n: m for n, m in self.named_modules() if isinstance(m, WindowGraphAttention)}

    def set_knn(self, knn: int) -> None:
        """Use ``knn`` neighbours in every block from now on (same weights).

        ``knn`` must fit the smallest window (1..15 with the 4x4 windows of the paper); a
        refused value leaves every block as it was.
        """
        blocks = self.graph_attentions().values()
        check_knn(knn, SMALLEST_WINDOW_NODES)
        for m in blocks:
            m.knn = knn

    def set_backend(self, backend: Backend) -> None:
        """Switch every block to the ``"dense"`` or ``"pyg"`` backend."""
        for m in self.graph_attentions().values():
            m.backend = backend

    def set_knn_rule(self, rule: KnnRule) -> None:
        """Build every block's graph by ``rule`` from now on (``"published"`` or ``"self-excluded"``)."""
        for m in self.graph_attentions().values():
            m.knn_rule = rule

    @property
    def config(self) -> dict[str, Any]:
        """``{"model": "gabic", N, M, num_slices, knn, heads, use_edge_attr, dissimilarity, backend, knn_rule}``.

        Raises ValueError when the blocks were given different settings one by one (a model with
        several k has no single configuration).
        """
        blocks = list(self.graph_attentions().values())
        first = blocks[0]
        graph = {
            "knn": first.knn,
            "heads": first.conv.heads,
            "use_edge_attr": first.conv.lin_edge is not None,
            "dissimilarity": first.dissimilarity,
            "backend": first.backend,
            "knn_rule": first.knn_rule,
        }
        for m in blocks[1:]:
            other = (m.knn, m.conv.heads, m.conv.lin_edge is not None, m.dissimilarity, m.backend, m.knn_rule)
            if other != tuple(graph.values()):
                raise ValueError(f"the attention blocks differ in their settings ({graph} and {other}): no single configuration")
        return {"model": self.name, "N": self.N, "M": self.M, "num_slices": self.num_slices, **graph}

    @classmethod
    def _identity_entries(cls, config: dict[str, Any]) -> dict[str, Any]:
        """As the base class, and ``knn_rule`` left out when it is :data:`LEGACY_KNN_RULE`: files and
        runs written before the rule was an option keep their identity."""
        entries = super()._identity_entries(config)
        if entries.get("knn_rule") == LEGACY_KNN_RULE:
            del entries["knn_rule"]
        return entries

    @classmethod
    def upgrade_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """A gabic checkpoint's configuration; one written before ``knn_rule`` existed gets
        :data:`LEGACY_KNN_RULE`, the graph it was trained and evaluated with."""
        config = dict(config)
        config.setdefault("knn_rule", LEGACY_KNN_RULE)
        return config
