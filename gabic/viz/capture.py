"""Capture the kNN graphs and attention weights of a model's attention blocks on one image.

:func:`capture` runs a GABIC (or WACNN) model on one image with forward hooks on its attention
modules and returns, per block, the block's input and output and what the block's own
``return_attention`` path gives: for GABIC's :class:`~gabic.layers.WindowGraphAttention` the
neighbour indices ``idx`` ``(nW, n, k)``, the weights ``(nW, heads, n, k)`` and the edge bias;
for WACNN's :class:`~gabic.layers.SwinWindowAttention` the full window maps ``(nW, heads, n, n)``.
Nothing is re-implemented here: the graphs and weights come from the layers (with the graph rule
the model's blocks use), the forward pass from :func:`gabic.measurement.forward_padded`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch import Tensor

from gabic.device import model_device
from gabic.images import ImageLike, as_image_tensor, pad, pad_offset
from gabic.layers import SwinWindowAttention, WindowGraphAttention, check_knn
from gabic.measurement import forward_padded

__all__ = ["AttentionCapture", "BlockCapture", "attention_modules", "blocks_from", "capture", "rebuild", "recording"]

log = logging.getLogger(__name__)


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
        knn: k, the number of neighbours per node (None for window attention).
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


@contextmanager
def recording(model: nn.Module) -> Iterator[dict[str, tuple[Tensor, Tensor]]]:
    """Record every attention module's input and output while the block runs (forward hooks,
    removed after): yields ``{block name: (input, output)}``, filled by whatever forward pass runs
    inside, for :func:`blocks_from`. :func:`capture` runs the forward pass; a caller that runs
    its own (e.g. :meth:`~gabic.models.LearnedCodec.forward_entropy`) records the same."""
    records: dict[str, tuple[Tensor, Tensor]] = {}

    def hook(name):
        def record(module, args, output):
            records[name] = (args[0].detach(), output.detach())

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in attention_modules(model).items()]
    try:
        yield records
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def blocks_from(model: nn.Module, records: dict[str, tuple[Tensor, Tensor]], x: Tensor) -> dict[str, BlockCapture]:
    """The :class:`BlockCapture` of each block :func:`recording` recorded while ``model`` coded the
    image ``x`` ``(1, 3, H, W)`` (padded to 64 as :func:`gabic.measurement.forward_padded` pads it)."""
    modules = attention_modules(model)
    xp, _ = pad(x)
    size = (x.shape[-2], x.shape[-1])
    return {n: _block_from(n, modules[n], *records[n], xp, pad_offset(*size), size) for n in modules if n in records}


@torch.no_grad()
def capture(model: nn.Module, image: ImageLike, backend: str | None = None) -> AttentionCapture:
    """Capture every attention block of ``model`` on one image.

    The image goes through the model's forward pass (:func:`gabic.measurement.forward_padded`:
    padded to 64, analysis, quantised ``y_hat``, synthesis), so the synthesis blocks see the
    decoded latent.
    Forward hooks record each attention module's input and output; the graph and weights come
    from the block's own ``forward(x, return_attention=True)`` on that input.

    Args:
        model: a GABIC or WACNN model (eval mode is recommended; it is not changed).
        image: a path, a PIL image or a tensor ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1]
            (:data:`gabic.images.ImageLike`, read by :func:`gabic.images.as_image_tensor`).
        backend: GABIC only: ``"dense"`` or ``"pyg"`` for this capture (restored afterwards);
            default None: the model's.

    Returns:
        An :class:`AttentionCapture` with one :class:`BlockCapture` per block, on the CPU.
    """
    modules = attention_modules(model)
    x = as_image_tensor(image)
    saved = {n: m.backend for n, m in modules.items() if isinstance(m, WindowGraphAttention)}
    try:
        if backend is not None:
            for n in saved:
                modules[n].backend = backend
        with recording(model) as records:
            _, x_hat, bpp = forward_padded(model, x)
        blocks = blocks_from(model, records, x)
    finally:
        for n, b in saved.items():
            modules[n].backend = b
    return AttentionCapture(getattr(model, "name", type(model).__name__), blocks, x, x_hat.cpu(), bpp)


@torch.no_grad()
def rebuild(block: BlockCapture, model: nn.Module, k: int) -> BlockCapture:
    """The same block on the same input with its ``knn`` set to ``k``, the number of neighbours per node (same weights).

    The block's module in ``model`` runs its ``return_attention`` path on the captured input
    with its ``knn`` set to ``k``; its ``knn`` is restored afterwards, even on error. Only this
    block changes: its input is the one captured with the model's own k.

    Raises:
        ValueError: ``k`` outside ``1..n-1``, or ``block`` is not a kNN graph block.
    """
    if block.kind != "graph":
        raise ValueError(f"block {block.name} is a window attention block: it has no k to change")
    try:
        check_knn(k, block.n)
    except ValueError as err:
        raise ValueError(f"block {block.name}: {err}") from None
    module = dict(model.named_modules()).get(block.name)
    if not isinstance(module, WindowGraphAttention):
        raise ValueError(f"model has no kNN graph attention module named {block.name!r}")
    old = module.knn
    try:
        module.knn = k
        inp = block.input.to(model_device(model))
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
