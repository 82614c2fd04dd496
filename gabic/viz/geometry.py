"""From windows and nodes to the image, and back.

The image ``(H, W)`` is zero-padded, centred, to multiples of 64 (:func:`gabic.images.pad`) at
offset ``(top, left)``. A block at scale ``s`` (4 for ``g_a.4``/``g_s.5``, 16 for
``g_a.8``/``g_s.0``) sees a map of ``padded / s`` positions, pads it right and bottom to multiples
of its window side ``ws`` and splits it into windows in row-major order, nodes in row-major order
inside a window (node ``r * ws + c``). Node ``(window, node)`` sits at feature position
``(w_r * ws + r, w_c * ws + c)`` (plus the cyclic shift, modulo the map, for WACNN's shifted
windows) and covers the image patch ``[row * s - top, (row + 1) * s - top) x [col * s - left,
(col + 1) * s - left)`` (its stride cell, not its receptive field). :func:`node_patch` and
:func:`pixel_to_node` map both ways; :func:`node_map` puts per-node values back on the feature map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gabic.viz.capture import BlockCapture

__all__ = ["feature_position", "node_map", "node_patch", "pixel_to_node", "valid_nodes", "window_box", "window_pixels"]


def _check_window_node(block: BlockCapture, window: int, node: int) -> None:
    if not 0 <= window < block.num_windows:
        raise ValueError(f"window must be in 0..{block.num_windows - 1} for block {block.name}, got {window}")
    if not 0 <= node < block.n:
        raise ValueError(f"node must be in 0..{block.n - 1} for block {block.name}, got {node}")


def feature_position(block: BlockCapture, window: int, node: int) -> tuple[int, int]:
    """``(row, col)`` of node ``(window, node)`` on the block's (padded) feature map."""
    _check_window_node(block, window, node)
    ws, (Hp, Wp) = block.window_size, block.padded_size
    wr, wc = divmod(window, block.grid[1])
    r, c = divmod(node, ws)
    return (wr * ws + r + block.shift) % Hp, (wc * ws + c + block.shift) % Wp


def node_patch(block: BlockCapture, window: int, node: int) -> tuple[int, int, int, int]:
    """The image patch ``(top, left, bottom, right)`` (pixels of the original image, bottom/right
    excluded) covered by node ``(window, node)``: its ``scale x scale`` stride cell. Nodes on the
    padding give boxes partly or wholly outside ``0..H, 0..W``."""
    row, col = feature_position(block, window, node)
    s, (top, left) = block.scale, block.offset
    return row * s - top, col * s - left, (row + 1) * s - top, (col + 1) * s - left


def pixel_to_node(block: BlockCapture, y: int, x: int) -> tuple[int, int]:
    """``(window, node)`` whose patch holds pixel ``(y, x)`` of the original image (the inverse of
    :func:`node_patch`); pixels of the padding around the image are accepted."""
    s, (top, left) = block.scale, block.offset
    Hpad, Wpad = block.image.shape[-2:]
    if not (-top <= y < Hpad - top and -left <= x < Wpad - left):
        raise ValueError(
            f"pixel (y={y}, x={x}) is outside the padded image (y in {-top}..{Hpad - top - 1}, x in {-left}..{Wpad - left - 1})"
        )
    ws, (Hp, Wp) = block.window_size, block.padded_size
    row = ((y + top) // s - block.shift) % Hp
    col = ((x + left) // s - block.shift) % Wp
    (wr, r), (wc, c) = divmod(row, ws), divmod(col, ws)
    return wr * block.grid[1] + wc, r * ws + c


def window_box(block: BlockCapture, window: int) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` in original-image pixels of a window (of its top-left node's
    unwrapped extent: a shifted window at the map's edge wraps around modulo the padded size)."""
    top, left, _, _ = node_patch(block, window, 0)
    side = block.window_size * block.scale
    return top, left, top + side, left + side


def valid_nodes(block: BlockCapture) -> Tensor:
    """``(nW, n)`` bool: True for nodes on the block's feature map (not its own padding to the
    window size) whose patch overlaps the original image (not only the image's padding)."""
    ws, (H, W), s = block.window_size, block.resolution, block.scale
    (top, left), (Hi, Wi) = block.offset, block.image_size
    nWh, nWw = block.grid
    rows = (torch.arange(nWh)[:, None] * ws + torch.arange(ws)[None, :] + block.shift) % block.padded_size[0]  # (nWh, ws)
    cols = (torch.arange(nWw)[:, None] * ws + torch.arange(ws)[None, :] + block.shift) % block.padded_size[1]

    def ok(p, size, off, img):
        return (p < size) & ((p + 1) * s - off > 0) & (p * s - off < img)

    vr, vc = ok(rows, H, top, Hi), ok(cols, W, left, Wi)  # (nWh, ws), (nWw, ws)
    valid = vr[:, None, :, None] & vc[None, :, None, :]  # (nWh, nWw, ws, ws)
    return valid.reshape(nWh * nWw, ws * ws)


def window_pixels(block: BlockCapture, window: int) -> Tensor:
    """The pixels ``(3, ws*scale, ws*scale)`` of the padded input covered by a window's nodes, in
    node order (a shifted window at the map's edge is assembled across the wrap)."""
    feature_position(block, window, 0)  # checks the window
    s, ws = block.scale, block.window_size
    Hp, Wp = block.padded_size
    img = block.image[0]
    img = F.pad(img, (0, max(0, Wp * s - img.shape[-1]), 0, max(0, Hp * s - img.shape[-2])))[:, : Hp * s, : Wp * s]
    if block.shift:
        img = torch.roll(img, shifts=(-block.shift * s, -block.shift * s), dims=(1, 2))
    wr, wc = divmod(window, block.grid[1])
    side = ws * s
    return img[:, wr * side : (wr + 1) * side, wc * side : (wc + 1) * side]


def node_map(block: BlockCapture, values: Tensor) -> Tensor:
    """Per-node values put back on the block's feature map: ``(nW, n, *rest) -> (H, W, *rest)``.

    Node ``(window, node)`` lands at its :func:`feature_position` (the cyclic shift undone); the
    block's own padding to the window side is cropped, so ``(H, W)`` is :attr:`BlockCapture.resolution`.
    The inverse of splitting a map into the block's windows (e.g. ``window_tokens`` of
    :mod:`gabic.analysis.redundancy`), for the nodes that lie on the map.
    """
    nW, n = block.num_windows, block.n
    if values.dim() < 2 or tuple(values.shape[:2]) != (nW, n):
        raise ValueError(f"values must be (nW, n, ...) = ({nW}, {n}, ...) for block {block.name}, got shape {tuple(values.shape)}")
    ws, (Hp, Wp), (nWh, nWw) = block.window_size, block.padded_size, block.grid
    rest = tuple(values.shape[2:])
    fmap = values.reshape(nWh, nWw, ws, ws, *rest).transpose(1, 2).reshape(Hp, Wp, *rest)
    if block.shift:
        fmap = torch.roll(fmap, shifts=(block.shift, block.shift), dims=(0, 1))
    return fmap[: block.resolution[0], : block.resolution[1]]
