"""What the graph buys: GABIC and WACNN compared on the same images, by the rate, the features and the attention.

- :mod:`gabic.analysis.latent`: :func:`latent_capture` (the latent, its Gaussian means and scales,
  bits per element of y and z, for one image) and :func:`residual_correlation` (spatial
  correlation left in the standardised residual);
- :mod:`gabic.analysis.redundancy`: mean pairwise cosine and effective rank of the tokens of
  each window, before and after an attention block (:func:`block_redundancy`,
  :func:`redundancy_table`);
- :mod:`gabic.analysis.attention`: GABIC's graph attention and WACNN's window attention measured
  the same way: share of attention on the kNN neighbours, attention-weighted distance, entropy
  (:func:`attention_comparison`);
- :mod:`gabic.analysis.compare`: two models on one image, tile by tile (:func:`compare_models`);
- :mod:`gabic.analysis.report`: all of it over a folder for two sets of checkpoints, with the
  BD-rate (:func:`compare_report`, :func:`save_report`, :func:`load_report`; ``gabic compare``);
- :mod:`gabic.analysis.drawing`: the figures (matplotlib, each with its data as CSV).
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
from gabic.analysis.compare import ModelComparison, compare_models, gradient_energy, pair_names
from gabic.analysis.latent import HYPER_STRIDE, LATENT_STRIDE, LatentCapture, latent_capture, residual_correlation
from gabic.analysis.redundancy import (
    REDUNDANCY_MEASURES,
    block_redundancy,
    effective_rank,
    mean_pairwise_cosine,
    redundancy_table,
    window_tokens,
)
from gabic.analysis.report import ImageAnalysis, analyse_image, compare_report, load_report, save_report

__all__ = [
    "ImageAnalysis",
    "ModelComparison",
    "analyse_image",
    "compare_models",
    "compare_report",
    "gradient_energy",
    "load_report",
    "pair_names",
    "save_report",
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
