"""Look inside the attention: capture the kNN graphs and attention weights, map them to the image, measure them.

:func:`capture` runs a GABIC (or WACNN) model on one image with forward hooks on its attention
modules and returns, per block, the block's input and output and what the block's own
``return_attention`` path gives: for GABIC's :class:`~gabic.layers.WindowGraphAttention` the
neighbour indices ``idx`` ``(nW, n, k)``, the weights ``(nW, heads, n, k)`` and the edge bias;
for WACNN's :class:`~gabic.layers.SwinWindowAttention` the full window maps ``(nW, heads, n, n)``.
Nothing is re-implemented here: the weights come from the layers.

Geometry. The image ``(H, W)`` is zero-padded, centred, to multiples of 64 (:func:`gabic.images.pad`)
at offset ``(top, left)``. A block at scale ``s`` (4 for ``g_a.4``/``g_s.5``, 16 for ``g_a.8``/``g_s.0``)
sees a map of ``padded / s`` positions, pads it right and bottom to multiples of its window side ``ws``
and splits it into windows in row-major order, nodes in row-major order inside a window (node
``r * ws + c``). Node ``(window, node)`` sits at feature position ``(w_r * ws + r, w_c * ws + c)``
(plus the cyclic shift, modulo the map, for WACNN's shifted windows) and covers the image patch
``[row * s - top, (row + 1) * s - top) x [col * s - left, (col + 1) * s - left)`` (its stride cell,
not its receptive field). :func:`node_patch` and :func:`pixel_to_node` map both ways.

Drawings (matplotlib Figures) are in :mod:`gabic._viz_draw` and re-exported here; the widget is
:func:`gabic.widgets.attention.attention_explorer`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from PIL import Image
from torch import Tensor

from gabic._viz_draw import (
    attention_matrix,
    draw_attention_matrix,
    draw_statistics,
    draw_window,
    draw_window_grid,
    plot_k_sweep,
    window_pixels,
)
from gabic.images import crop, image_to_tensor, load_image, pad, tensor_to_image, to_rgb
from gabic.layers import SwinWindowAttention, WindowGraphAttention

__all__ = [
    "AttentionCapture",
    "BlockCapture",
    "attention_entropy",
    "attention_matrix",
    "attention_modules",
    "block_statistics",
    "capture",
    "center_crop",
    "draw_attention_matrix",
    "draw_statistics",
    "draw_window",
    "draw_window_grid",
    "feature_position",
    "graph_statistics",
    "k_sweep",
    "node_patch",
    "pixel_to_node",
    "plot_k_sweep",
    "rebuild",
    "valid_nodes",
    "window_box",
    "window_pixels",
]

log = logging.getLogger(__name__)

ImageLike = str | os.PathLike | Image.Image | Tensor


# --------------------------------------------------------------------------- captures
@dataclass
class BlockCapture:
    """What one attention block saw and did on one image (batch of one, tensors on the CPU).

    Attributes:
        name: module name, e.g. ``"g_a.4.conv_b.0"``.
        kind: ``"graph"`` (GABIC kNN graph attention) or ``"window"`` (WACNN window attention).
        scale: the block works at 1/scale of the padded input (4 or 16).
        resolution: ``(H, W)`` of the block's feature map.
        padded_size: ``(Hp, Wp)`` after the block's own padding to its window side.
        window_size: window side ``ws``; ``n = ws * ws`` nodes per window.
        knn: neighbours per node (None for window attention).
        heads: attention heads.
        input, output: the block's input and output feature maps ``(1, C, H, W)`` (hook-recorded).
        idx: neighbours ``(nW, n, k)`` int64 (None for window attention).
        weights: ``(nW, heads, n, k)`` in the order of ``idx`` (graph) or ``(nW, heads, n, n)`` (window);
            each node's weights sum to 1 per head.
        edge_bias: the additive edge bias ``beta_h * e(i, j)`` ``(nW, heads, n, k)``, or None.
        shift: cyclic shift of the windows (WACNN; 0 for GABIC).
        image: the padded input image ``(1, 3, Hpad, Wpad)`` in [0, 1] (shared between blocks).
        image_size: ``(H, W)`` of the original image.
        offset: ``(top, left)`` of the original image inside the padded one.
        dissimilarity: the graph holds the k farthest nodes instead of the nearest.
    """

    name: str
    kind: str
    scale: int
    resolution: tuple[int, int]
    padded_size: tuple[int, int]
    window_size: int
    knn: int | None
    heads: int
    input: Tensor = field(repr=False)
    output: Tensor = field(repr=False)
    idx: Tensor | None = field(repr=False)
    weights: Tensor = field(repr=False)
    edge_bias: Tensor | None = field(repr=False)
    shift: int = 0
    image: Tensor = field(default_factory=lambda: torch.zeros(1, 3, 0, 0), repr=False)
    image_size: tuple[int, int] = (0, 0)
    offset: tuple[int, int] = (0, 0)
    dissimilarity: bool = False

    @property
    def n(self) -> int:
        """Nodes per window."""
        return self.window_size**2

    @property
    def grid(self) -> tuple[int, int]:
        """Windows per column and per row ``(nWh, nWw)``."""
        return self.padded_size[0] // self.window_size, self.padded_size[1] // self.window_size

    @property
    def num_windows(self) -> int:
        return self.grid[0] * self.grid[1]

    def summary(self) -> str:
        """One line: name, scale, map size, windows, k and heads."""
        k = f"k={self.knn}" if self.knn is not None else "full window"
        return (
            f"{self.name}: 1/{self.scale} of the padded input, {self.resolution[0]}x{self.resolution[1]} positions, "
            f"{self.grid[0]}x{self.grid[1]} windows of {self.window_size}x{self.window_size}, {k}, {self.heads} heads"
        )


@dataclass
class AttentionCapture:
    """The blocks captured by :func:`capture`, by name (also reachable by short name, ``cap["g_a.4"]``).

    Attributes:
        model_name: ``"gabic"`` or ``"wacnn"``.
        blocks: ``{name: BlockCapture}`` in forward order.
        image: the original image ``(1, 3, H, W)`` in [0, 1].
        x_hat: the reconstruction of the forward pass, cropped ``(1, 3, H, W)``, clamped to [0, 1].
        bpp: the likelihood estimate of the rate of the forward pass.
    """

    model_name: str
    blocks: dict[str, BlockCapture]
    image: Tensor
    x_hat: Tensor
    bpp: float

    def __getitem__(self, name: str) -> BlockCapture:
        return self.blocks[_resolve_name(name, self.blocks)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.blocks)

    def __len__(self) -> int:
        return len(self.blocks)

    def names(self) -> list[str]:
        return list(self.blocks)

    def values(self):
        return self.blocks.values()

    def items(self):
        return self.blocks.items()


def _resolve_name(name: str, names) -> str:
    if name in names:
        return name
    hits = [m for m in names if m.startswith(name + ".")]
    if len(hits) != 1:
        raise KeyError(f"no attention block {name!r}; blocks: {', '.join(names)}")
    return hits[0]


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The attention modules of a GABIC or WACNN model: ``{name: WindowGraphAttention | SwinWindowAttention}``."""
    mods = {n: m for n, m in model.named_modules() if isinstance(m, WindowGraphAttention | SwinWindowAttention)}
    if not mods:
        raise ValueError(f"model must be a GABIC or WACNN model (with kNN graph or window attention), got {type(model).__name__}")
    return mods


def _as_image_tensor(image: ImageLike) -> Tensor:
    """A path, PIL image or ``(1, 3, H, W)`` tensor in [0, 1] -> ``(1, 3, H, W)`` float tensor on the CPU."""
    if isinstance(image, str | os.PathLike):
        img, notes = load_image(image)
        if notes:
            log.info("%s: %s", image, "; ".join(notes))
        return image_to_tensor(img)
    if isinstance(image, Image.Image):
        return image_to_tensor(to_rgb(image)[0])
    if isinstance(image, Tensor):
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be a (1, 3, H, W) tensor, got shape {tuple(image.shape)}")
        if image.shape[0] != 1:
            raise ValueError(f"image must be one image (batch of 1), got a batch of {image.shape[0]}")
        return image.detach().float().cpu()
    raise ValueError(f"image must be a path, a PIL image or a (1, 3, H, W) tensor, got {type(image).__name__}")


def _image_name(image: ImageLike, i: int) -> str:
    if isinstance(image, str | os.PathLike):
        return Path(image).name
    return f"image{i}"


def center_crop(image: ImageLike, size: int | tuple[int, int] | None) -> Image.Image:
    """The centre ``size`` (side, or ``(height, width)``; None: the whole image) of an image as a
    PIL image; sides longer than the image are left at the image's size."""
    x = _as_image_tensor(image)
    if size is None:
        return tensor_to_image(x)
    h, w = (size, size) if isinstance(size, int) else size
    if min(h, w) < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    H, W = x.shape[-2:]
    h, w = min(h, H), min(w, W)
    top, left = (H - h) // 2, (W - w) // 2
    return tensor_to_image(x[..., top : top + h, left : left + w])


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _edge_bias(module: WindowGraphAttention, idx: Tensor) -> Tensor | None:
    """``(nW, heads, n, k)`` edge bias from the layer's own :meth:`~gabic.layers.KNNGraphAttention.attention_bias`."""
    conv = module.conv
    if conv.lin_edge is None:
        return None
    bias = conv.attention_bias(idx, module.window_size, torch.float32)
    return bias.gather(-1, idx.unsqueeze(1).expand(-1, conv.heads, -1, -1))


def _block_from(name: str, module: nn.Module, inp: Tensor, out: Tensor, image: Tensor, offset, image_size) -> BlockCapture:
    """Run the block's own ``return_attention`` path on its recorded input; pack a :class:`BlockCapture`."""
    _, info = module.forward(inp, return_attention=True)  # .forward: the hooks stay out of it
    H, W = inp.shape[-2:]
    scale = image.shape[-2] // H
    common = dict(name=name, scale=scale, resolution=(H, W), padded_size=tuple(info["padded_size"]), input=inp.cpu(), output=out.cpu())
    common |= dict(image=image, image_size=image_size, offset=offset)
    if isinstance(module, WindowGraphAttention):
        idx = info["idx"]
        return BlockCapture(
            kind="graph",
            window_size=module.window_size,
            knn=idx.shape[-1],
            heads=module.conv.heads,
            idx=idx.cpu(),
            weights=info["weights"].float().cpu(),
            edge_bias=None if (eb := _edge_bias(module, idx)) is None else eb.cpu(),
            dissimilarity=module.dissimilarity,
            **common,
        )
    return BlockCapture(
        kind="window",
        window_size=module.window_size,
        knn=None,
        heads=module.attn.num_heads,
        idx=None,
        weights=info["weights"].float().cpu(),
        edge_bias=None,
        shift=info["shift"],
        **common,
    )


@torch.no_grad()
def capture(model: nn.Module, image: ImageLike, backend: str | None = None) -> AttentionCapture:
    """Capture every attention block of ``model`` on one image.

    The image is padded (:func:`gabic.images.pad`) and run through the model's forward pass
    (analysis, quantised ``y_hat``, synthesis), so the synthesis blocks see the decoded latent.
    Forward hooks record each attention module's input and output; the graph and weights come
    from the block's own ``forward(x, return_attention=True)`` on that input.

    Args:
        model: a GABIC or WACNN model (eval mode is recommended; it is not changed).
        image: a path, a PIL image or a ``(1, 3, H, W)`` tensor in [0, 1].
        backend: GABIC only: ``"dense"`` or ``"pyg"`` for this capture (restored afterwards);
            default None: the model's.

    Returns:
        An :class:`AttentionCapture` with one :class:`BlockCapture` per block, on the CPU.
    """
    modules = attention_modules(model)
    x = _as_image_tensor(image)
    xp, unpad = pad(x)
    offset = (-unpad[2], -unpad[0])
    image_size = (x.shape[-2], x.shape[-1])
    records: dict[str, tuple[Tensor, Tensor]] = {}

    def hook(name):
        def record(module, args, output):
            records[name] = (args[0].detach(), output.detach())

        return record

    saved = {n: m.backend for n, m in modules.items() if isinstance(m, WindowGraphAttention)}
    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    try:
        if backend is not None:
            for n in saved:
                modules[n].backend = backend
        out = model(xp.to(_model_device(model)))
        blocks = {n: _block_from(n, modules[n], *records[n], xp, offset, image_size) for n in modules if n in records}
    finally:
        for h in handles:
            h.remove()
        for n, b in saved.items():
            modules[n].backend = b
    from gabic.metrics import bpp_from_likelihoods

    bpp = bpp_from_likelihoods(out["likelihoods"], image_size[0] * image_size[1])
    x_hat = crop(out["x_hat"].clamp(0, 1), unpad).cpu()
    return AttentionCapture(getattr(model, "name", type(model).__name__), blocks, x, x_hat, bpp)


def _check_k(block: BlockCapture, k: Any) -> int:
    n, ws = block.n, block.window_size
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n - 1:
        raise ValueError(f"k must be an integer in 1..{n - 1} for block {block.name} (windows of {ws}x{ws} = {n} nodes), got k={k!r}")
    return k


@torch.no_grad()
def rebuild(block: BlockCapture, model: nn.Module, k: int) -> BlockCapture:
    """The same block on the same input with ``k`` neighbours per node (same weights).

    The block's module in ``model`` runs its ``return_attention`` path on the captured input
    with its ``knn`` set to ``k``; its ``knn`` is restored afterwards, even on error. Only this
    block changes: its input is the one captured with the model's own k.

    Raises:
        ValueError: ``k`` outside ``1..n-1``, or ``block`` is not a kNN graph block.
    """
    if block.kind != "graph":
        raise ValueError(f"block {block.name} is a window attention block: it has no k to change")
    _check_k(block, k)
    module = dict(model.named_modules()).get(block.name)
    if not isinstance(module, WindowGraphAttention):
        raise ValueError(f"model has no kNN graph attention module named {block.name!r}")
    old = module.knn
    try:
        module.knn = k
        inp = block.input.to(_model_device(model))
        y, info = module.forward(inp, return_attention=True)
        idx = info["idx"]
        eb = _edge_bias(module, idx)
    finally:
        module.knn = old
    return dataclasses.replace(
        block,
        knn=k,
        output=y.cpu(),
        idx=idx.cpu(),
        weights=info["weights"].float().cpu(),
        edge_bias=None if eb is None else eb.cpu(),
    )


# --------------------------------------------------------------------------- coordinates
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


# --------------------------------------------------------------------------- statistics
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
    pos = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"), -1).reshape(n, 2).float()
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


def attention_entropy(weights: Tensor, valid: Tensor | None = None) -> Tensor:
    """``(heads,)`` entropy in nats ``-sum_j w_ij log w_ij`` of weights ``(nW, heads, n, k)``, mean
    over the nodes where ``valid`` ``(nW, n)`` is True (default all)."""
    w = weights.detach().double().cpu()
    ent = -(w * torch.log(w.clamp_min(1e-300))).sum(-1)  # (nW, heads, n)
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
    ws, (Hp, Wp) = block.window_size, block.padded_size
    nWh, nWw = block.grid
    fmap = stats["in_degree"].view(nWh, nWw, ws, ws).permute(0, 2, 1, 3).reshape(Hp, Wp)
    stats["frequency_map"] = fmap[: block.resolution[0], : block.resolution[1]]
    chosen_valid = valid.gather(1, block.idx.reshape(block.num_windows, -1)).reshape_as(block.idx)
    sel = valid[..., None].expand_as(block.idx)
    stats["padded_neighbour_share"] = float((~chosen_valid[sel]).float().mean()) if bool(sel.any()) else math.nan
    stats["name"] = block.name
    return stats


# --------------------------------------------------------------------------- k sweep
def _check_ks(model: nn.Module, ks: Sequence[int]) -> list[int]:
    if not hasattr(model, "set_knn"):
        raise ValueError(f"k_sweep needs a GABIC model (with set_knn), got {type(model).__name__}")
    if isinstance(ks, int) or not isinstance(ks, Sequence) or not ks:
        raise ValueError(f"ks must be a non-empty list of integers, got {ks!r}")
    n = min(m.window_size**2 for m in model.graph_attentions().values())
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n - 1:
            raise ValueError(f"every k in ks must be an integer in 1..{n - 1} (the smallest window has {n} nodes), got k={k!r}")
    if len(set(ks)) != len(ks):
        raise ValueError(f"ks has repeated values: {list(ks)}")
    return list(ks)


@torch.no_grad()
def _measure(model: nn.Module, x: Tensor, real_coding: bool) -> tuple[float, float]:
    from gabic.metrics import bpp_from_likelihoods, psnr

    original = tensor_to_image(x)
    if real_coding:
        from gabic.bitstream import round_trip

        r = round_trip(model, original)
        return r["bpp"], r["psnr"]
    xp, unpad = pad(x)
    out = model(xp.to(_model_device(model)))
    bpp = bpp_from_likelihoods(out["likelihoods"], x.shape[-2] * x.shape[-1])
    return bpp, psnr(original, tensor_to_image(crop(out["x_hat"], unpad)))


def k_sweep(
    model: nn.Module,
    images: ImageLike | Sequence[ImageLike],
    ks: Sequence[int],
    real_coding: bool = False,
    name: str | None = None,
    dataset: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Rate and quality of a GABIC model when every block's k is changed at inference (same weights).

    For every k (:meth:`GABIC.set_knn`) and every image: bpp and PSNR (8-bit RGB, on the image cropped
    back from the padding), the mean over images per k. The model's k of every block is restored
    afterwards, even on error.

    Args:
        model: a GABIC model.
        images: one image or a list (paths, PIL images or ``(1, 3, H, W)`` tensors in [0, 1]).
        ks: the k values, each in ``1..n-1`` of the smallest window (1..15 for 4x4 windows).
        real_coding: False: bpp estimated from the likelihoods of the forward pass; True: real
            coding with :func:`gabic.bitstream.round_trip` (bpp of the .gabic file).
        name: the result's name (default ``"<model> k sweep"``).
        dataset: ``meta["dataset"]`` (default: the image names joined).
        progress: show a tqdm bar.

    Returns:
        A dict in the results schema (:func:`gabic.results.validate`): ``results`` ``{"bpp", "psnr-rgb"}``
        with one point per k in the order of ``ks``, ``meta`` ``{"knn", "trained_knn", "images",
        "dataset", "estimate" ("likelihoods" or "bitstream"), "model", "source"}`` and ``per_image``
        ``{name: {"bpp", "psnr-rgb"}}``. Save it with :func:`gabic.results.save`.
    """
    from tqdm.auto import tqdm

    from gabic import __version__

    ks = _check_ks(model, ks)
    items = list(images) if isinstance(images, list | tuple) else [images]
    if not items:
        raise ValueError("images is empty: give at least one image")
    tensors = [_as_image_tensor(im) for im in items]
    names = [_image_name(im, i) for i, im in enumerate(items)]
    blocks = model.graph_attentions()
    original = {n: m.knn for n, m in blocks.items()}
    values: dict[tuple[int, int], tuple[float, float]] = {}
    try:
        with tqdm(total=len(ks) * len(tensors), desc="k sweep", unit="image", disable=not progress) as bar:
            for j, k in enumerate(ks):
                model.set_knn(k)
                for i, x in enumerate(tensors):
                    values[i, j] = _measure(model, x, real_coding)
                    bar.update(1)
    finally:
        trained = sorted(set(original.values()))
        if len(trained) == 1:
            model.set_knn(trained[0])
        else:  # blocks with different k: put each back
            for n, m in blocks.items():
                m.knn = original[n]
    per_image = {
        names[i]: {"bpp": [values[i, j][0] for j in range(len(ks))], "psnr-rgb": [values[i, j][1] for j in range(len(ks))]}
        for i in range(len(tensors))
    }
    results = {
        key: [sum(values[i, j][c] for i in range(len(tensors))) / len(tensors) for j in range(len(ks))]
        for c, key in enumerate(("bpp", "psnr-rgb"))
    }
    estimate = "bitstream" if real_coding else "likelihoods"
    meta = {
        "knn": ks,
        "trained_knn": trained[0] if len(trained) == 1 else original,
        "images": names,
        "num_images": len(names),
        "dataset": dataset or ", ".join(names),
        "estimate": estimate,
        "model": model.config,
        "source": f"measured with gabic {__version__}",
    }
    label = "bpp of the .gabic file" if real_coding else "bpp estimated from the likelihoods"
    return {
        "name": name or f"{model.name} k sweep",
        "description": f"{model.name} with k neighbours per node changed at inference, same weights ({label}, PSNR on 8-bit RGB)",
        "results": results,
        "meta": meta,
        "per_image": per_image,
    }
