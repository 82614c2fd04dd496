"""Measure what the attention does to the latent and the rate (issue 13), on captured blocks and latents.

- :mod:`gabic.analysis.latent`: :func:`latent_capture` (the latent, its Gaussian means and scales,
  bits per element of y and z, for one image) and :func:`residual_correlation` (spatial
  correlation left in the standardised residual);
- :mod:`gabic.analysis.redundancy`: mean pairwise cosine and effective rank of the tokens of
  each window, before and after an attention block (:func:`block_redundancy`,
  :func:`redundancy_table`);
- :mod:`gabic.analysis.attention`: GABIC's graph attention and WACNN's window attention measured
  the same way: share of attention on the kNN neighbours, attention-weighted distance, entropy
  (:func:`attention_comparison`).
"""

from __future__ import annotations

from gabic.analysis.attention import (
    ATTENTION_MEASURES,
    attention_comparison,
    dense_weights,
    entropy_per_node,
    knn_graph_of,
    knn_share,
    weighted_distance,
)
from gabic.analysis.latent import HYPER_STRIDE, LATENT_STRIDE, LatentCapture, latent_capture, residual_correlation
from gabic.analysis.redundancy import (
    REDUNDANCY_MEASURES,
    block_redundancy,
    effective_rank,
    mean_pairwise_cosine,
    redundancy_table,
    window_tokens,
)

__all__ = [
    "ATTENTION_MEASURES",
    "HYPER_STRIDE",
    "LATENT_STRIDE",
    "REDUNDANCY_MEASURES",
    "LatentCapture",
    "attention_comparison",
    "block_redundancy",
    "dense_weights",
    "effective_rank",
    "entropy_per_node",
    "knn_graph_of",
    "knn_share",
    "latent_capture",
    "mean_pairwise_cosine",
    "redundancy_table",
    "residual_correlation",
    "weighted_distance",
    "window_tokens",
]
