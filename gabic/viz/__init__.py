"""Look inside the attention: capture the kNN graphs and attention weights, map them to the image,
measure and draw them.

- :mod:`gabic.viz.capture`: :func:`capture` (every attention block of a model on one image) and
  :func:`rebuild` (one block again with another k);
- :mod:`gabic.viz.geometry`: windows and nodes to image pixels and back;
- :mod:`gabic.viz.statistics`: neighbour distances, adjacency, attention entropy, in-degree;
- :mod:`gabic.viz.drawing`: matplotlib figures of all of it (and of a k sweep,
  :func:`gabic.k_sweep.k_sweep`).

The widget is :func:`gabic.widgets.attention.attention_explorer`.
"""

from __future__ import annotations

from gabic.images import ImageLike, as_image_tensor
from gabic.viz.capture import AttentionCapture, BlockCapture, attention_modules, capture, rebuild
from gabic.viz.drawing import (
    attention_matrix,
    draw_attention_matrix,
    draw_statistics,
    draw_window,
    draw_window_grid,
    informative_node,
    plot_k_sweep,
)
from gabic.viz.geometry import feature_position, node_map, node_patch, pixel_to_node, valid_nodes, window_box, window_pixels
from gabic.viz.statistics import attention_entropy, block_statistics, graph_statistics, node_entropy

__all__ = [
    "AttentionCapture",
    "BlockCapture",
    "ImageLike",
    "as_image_tensor",
    "attention_entropy",
    "attention_matrix",
    "attention_modules",
    "block_statistics",
    "capture",
    "draw_attention_matrix",
    "draw_statistics",
    "draw_window",
    "draw_window_grid",
    "feature_position",
    "graph_statistics",
    "informative_node",
    "node_entropy",
    "node_map",
    "node_patch",
    "pixel_to_node",
    "plot_k_sweep",
    "rebuild",
    "valid_nodes",
    "window_box",
    "window_pixels",
]
