"""The drawings of :mod:`gabic.viz`: matplotlib Figures sized for papers, exportable with ``fig.savefig``.

Every function draws into a new :class:`matplotlib.figure.Figure` (no pyplot state is touched),
or into ``ax`` when one is given, and returns the figure. matplotlib is imported inside the
functions: it is an optional dependency (the ``plots`` extra), and capturing needs none of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from gabic.viz.capture import BlockCapture
from gabic.viz.geometry import feature_position, node_patch, window_box, window_pixels
from gabic.viz.statistics import block_statistics

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["attention_matrix", "draw_attention_matrix", "draw_statistics", "draw_window", "draw_window_grid", "plot_k_sweep"]

#: Width of one column of a two-column paper (inches).
COLUMN = 3.5
#: Width of a full page (inches).
PAGE = 7.16
#: Gid of the arrows of :func:`draw_window` (one per neighbour), to find them in a figure.
ARROW_GID = "attention-arrow"


def _figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _short(name: str) -> str:
    return name.removesuffix(".conv_b.0")


def _check_head(block: BlockCapture, head: int | str) -> None:
    if head == "mean":
        return
    if isinstance(head, bool) or not isinstance(head, int) or not 0 <= head < block.heads:
        raise ValueError(f"head must be 'mean' or an integer in 0..{block.heads - 1} for block {block.name}, got {head!r}")


def _node_weights(block: BlockCapture, window: int, node: int, head: int | str) -> Tensor:
    """Weights of one node, ``(k,)`` (graph) or ``(n,)`` (window), for one head or their mean."""
    _check_head(block, head)
    w = block.weights[window, :, node]  # (heads, k)
    return w.mean(0) if head == "mean" else w[head]


def _neighbours(block: BlockCapture, window: int, node: int, head: int | str, top: int) -> tuple[list[int], np.ndarray]:
    w = _node_weights(block, window, node, head)
    if block.kind == "graph":
        return block.idx[window, node].tolist(), w.numpy()
    w = w.clone()
    w[node] = -1  # the node itself is not drawn as a neighbour
    order = torch.argsort(w, descending=True, stable=True)[:top]
    return order.tolist(), w[order].numpy()


def draw_window_grid(block: BlockCapture, window: int | None = None, node: int | None = None, ax: Axes | None = None) -> Figure:
    """The image (with its zero padding, dashed outline: the original image) and the block's window
    grid in original-image pixels; ``window`` outlined in red, ``node``'s patch filled, its
    neighbours dotted (graph blocks)."""
    from matplotlib.patches import Rectangle

    Hpad, Wpad = block.image.shape[-2:]
    fig, ax = _figure(ax, (COLUMN, COLUMN * Hpad / Wpad + 0.4))
    top, left = block.offset
    Hi, Wi = block.image_size
    ax.imshow(block.image[0].permute(1, 2, 0).numpy(), extent=(-left, Wpad - left, Hpad - top, -top), interpolation="nearest")
    s, ws = block.scale, block.window_size
    Hp, Wp = block.padded_size
    for m in range(block.grid[0]):
        ax.axhline(((m * ws + block.shift) % Hp) * s - top, color="white", lw=0.5, alpha=0.7)
    for m in range(block.grid[1]):
        ax.axvline(((m * ws + block.shift) % Wp) * s - left, color="white", lw=0.5, alpha=0.7)
    ax.add_patch(Rectangle((0, 0), Wi, Hi, fill=False, ls="--", lw=0.8, ec="yellow"))
    if window is not None:
        t, lft, b, r = window_box(block, window)
        ax.add_patch(Rectangle((lft, t), r - lft, b - t, fill=False, lw=1.5, ec="red"))
        if node is not None:
            t, lft, b, r = node_patch(block, window, node)
            ax.add_patch(Rectangle((lft, t), r - lft, b - t, fc="red", ec="none", alpha=0.8))
            if block.kind == "graph":
                for j in block.idx[window, node].tolist():
                    t, lft, b, r = node_patch(block, window, j)
                    ax.plot((lft + r) / 2, (t + b) / 2, "o", ms=2.5, color="cyan")
    ax.set_xlim(-left, Wpad - left)
    ax.set_ylim(Hpad - top, -top)
    ax.set_title(f"{_short(block.name)}: 1/{s}, {block.grid[0]}x{block.grid[1]} windows of {ws}x{ws}", fontsize="small")
    ax.tick_params(labelsize="x-small")
    return fig


def draw_window(block: BlockCapture, window: int, node: int, head: int | str = "mean", ax: Axes | None = None, top: int = 9) -> Figure:
    """One window enlarged (its pixels, node grid), the centre ``node`` (red star), its neighbours
    (circles) and one arrow per neighbour towards the centre, coloured and thickened by attention
    (one ``head`` or the ``"mean"`` over heads); the weights are written next to the neighbours.

    Graph blocks draw their k neighbours; window-attention blocks (WACNN) the ``top`` most
    attended other nodes of the window. The arrows carry the gid :data:`ARROW_GID`.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.patches import FancyArrowPatch

    feature_position(block, window, node)  # checks window and node
    fig, ax = _figure(ax, (COLUMN, COLUMN * 0.85))
    ws = block.window_size
    pixels = window_pixels(block, window).permute(1, 2, 0).numpy()
    ax.imshow(pixels, extent=(-0.5, ws - 0.5, ws - 0.5, -0.5), interpolation="nearest")
    for p in np.arange(ws + 1) - 0.5:
        ax.axhline(p, color="white", lw=0.3, alpha=0.5)
        ax.axvline(p, color="white", lw=0.3, alpha=0.5)
    neighbours, weights = _neighbours(block, window, node, head, top)
    cmap = colormaps["viridis"]
    norm = Normalize(0.0, max(float(weights.max()), 1e-12))
    r0, c0 = divmod(node, ws)
    for j, w in zip(neighbours, weights, strict=True):
        rj, cj = divmod(j, ws)
        arrow = FancyArrowPatch(
            (cj, rj),
            (c0, r0),
            arrowstyle="-|>",
            mutation_scale=8,
            lw=0.6 + 3.0 * float(norm(w)),
            color=cmap(norm(w)),
            shrinkA=4,
            shrinkB=6,
        )
        arrow.set_gid(ARROW_GID)
        ax.add_patch(arrow)
        ax.plot(cj, rj, "o", ms=6, mfc="none", mec=cmap(norm(w)), mew=1.2)
        ax.text(cj + 0.22, rj - 0.22, f"{w:.2f}", fontsize=5, color="white", ha="left", va="bottom")
    ax.plot(c0, r0, "*", ms=10, color="red", mec="white", mew=0.5)
    ax.set_xlim(-0.5, ws - 0.5)
    ax.set_ylim(ws - 0.5, -0.5)
    ax.set_xticks(range(ws))
    ax.set_yticks(range(ws))
    ax.tick_params(labelsize="x-small")
    _colorbar(fig.colorbar(ScalarMappable(norm, cmap), ax=ax, shrink=0.8), "attention weight")
    what = f"k={block.knn}" if block.kind == "graph" else f"top {len(neighbours)} of {block.n}"
    ax.set_title(f"{_short(block.name)} · window {window} · node {node} ({r0},{c0}) · head {head} · {what}", fontsize="x-small")
    return fig


def attention_matrix(block: BlockCapture, window: int, head: int | str = "mean") -> np.ndarray:
    """The ``(n, n)`` attention matrix of a window (row i: node i's weights over the window's nodes),
    NaN where j is not a neighbour of i (graph blocks)."""
    _check_head(block, head)
    w = block.weights[window]  # (heads, n, k or n)
    w = (w.mean(0) if head == "mean" else w[head]).double()
    if block.kind != "graph":
        return w.numpy()
    n = block.n
    m = torch.full((n, n), math.nan, dtype=torch.float64)
    m.scatter_(1, block.idx[window], w)
    return m.numpy()


def draw_attention_matrix(block: BlockCapture, window: int, head: int | str = "mean", ax: Axes | None = None) -> Figure:
    """The ``n x n`` attention matrix of a window (see :func:`attention_matrix`); non-neighbours blank."""
    from matplotlib import colormaps

    fig, ax = _figure(ax, (COLUMN, COLUMN * 0.85))
    m = attention_matrix(block, window, head)
    im = ax.imshow(m, cmap=colormaps["viridis"].with_extremes(bad="white"), interpolation="nearest")
    _colorbar(fig.colorbar(im, ax=ax, shrink=0.8), "attention weight")
    ax.set_xlabel("neighbour j", fontsize="small")
    ax.set_ylabel("node i", fontsize="small")
    ax.tick_params(labelsize="x-small")
    ax.set_title(f"{_short(block.name)} · window {window} · head {head}", fontsize="x-small")
    return fig


def _blocks(blocks: Any) -> list[BlockCapture]:
    if isinstance(blocks, Mapping) or hasattr(blocks, "blocks"):
        blocks = getattr(blocks, "blocks", blocks).values()
    elif not isinstance(blocks, Iterable):
        blocks = [blocks]
    return list(blocks)


def draw_statistics(blocks: Any) -> Figure:
    """Per-block statistics of a capture (an :class:`~gabic.viz.AttentionCapture`, a dict or a list
    of blocks): mean spatial distance to the neighbours, share of 8-adjacent neighbours, attention
    entropy per head (dashed: ``log k``, uniform attention), and, below, one heat map per graph
    block of how often each feature-map position is chosen as a neighbour (:func:`gabic.viz.block_statistics`)."""
    from matplotlib.figure import Figure

    stats = [block_statistics(b) for b in _blocks(blocks)]
    graph = [(b, s) for b, s in zip(_blocks(blocks), stats, strict=True) if b.kind == "graph"]
    fig = Figure(figsize=(PAGE, 4.6), layout="constrained")
    rows = fig.add_gridspec(2, 1, height_ratios=(1, 1.1))
    top = rows[0].subgridspec(1, 3)
    labels = [_short(b.name) for b, _ in graph]
    ax = fig.add_subplot(top[0])
    ax.bar(labels, [s["mean_distance"] for _, s in graph], color="C0")
    ax.set_title("mean distance to neighbours (nodes)", fontsize="small")
    ax = fig.add_subplot(top[1])
    ax.bar(labels, [s["adjacent_share"] for _, s in graph], color="C1")
    ax.set_ylim(0, 1)
    ax.set_title("share of 8-adjacent neighbours", fontsize="small")
    ax = fig.add_subplot(top[2])
    for i, (b, s) in enumerate(zip(_blocks(blocks), stats, strict=True)):
        ax.plot(range(b.heads), s["entropy"].numpy(), "o-", ms=3, color=f"C{i}", label=_short(b.name))
        k = b.knn if b.kind == "graph" else b.n
        ax.axhline(math.log(k), color=f"C{i}", ls="--", lw=0.7)
    ax.set_xlabel("head", fontsize="small")
    ax.set_title("attention entropy (nats)", fontsize="small")
    ax.legend(fontsize="xx-small")
    for a in fig.axes:
        a.tick_params(labelsize="x-small")
    if graph:
        bottom = rows[1].subgridspec(1, len(graph))
        for i, (b, s) in enumerate(graph):
            ax = fig.add_subplot(bottom[i])
            im = ax.imshow(s["frequency_map"].numpy(), cmap="magma", interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.7).ax.tick_params(labelsize="xx-small")
            ax.set_title(f"{_short(b.name)}: chosen as neighbour", fontsize="x-small")
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def plot_k_sweep(result: dict[str, Any], ax: Axes | None = None) -> Figure:
    """The k sweep of :func:`gabic.evaluate.k_sweep`: left, PSNR against bpp with each point labelled by k
    (the trained k in red); right, bpp and PSNR against k. With ``ax``, only the left panel."""
    from matplotlib.figure import Figure

    ks = result["meta"]["knn"]
    bpp, psnr = result["results"]["bpp"], result["results"]["psnr-rgb"]
    trained = result["meta"].get("trained_knn")
    if ax is None:
        fig = Figure(figsize=(PAGE, 2.6), layout="constrained")
        ax, right = fig.subplots(1, 2)
    else:
        fig, right = ax.figure, None
    ax.plot(bpp, psnr, "o-", ms=3, color="C0")
    for k, b, p in zip(ks, bpp, psnr, strict=True):
        ax.annotate(
            f"k={k}", (b, p), textcoords="offset points", xytext=(3, 3), fontsize="xx-small", color="red" if k == trained else "black"
        )
    ax.set_xlabel(f"bpp ({result['meta'].get('estimate', '')})", fontsize="small")
    ax.set_ylabel("PSNR (dB)", fontsize="small")
    ax.set_title(result.get("name", "k sweep"), fontsize="small")
    ax.tick_params(labelsize="x-small")
    if right is not None:
        right.plot(ks, bpp, "o-", ms=3, color="C0")
        right.set_xlabel("k (neighbours per node)", fontsize="small")
        right.set_ylabel("bpp", color="C0", fontsize="small")
        twin = right.twinx()
        twin.plot(ks, psnr, "s-", ms=3, color="C1")
        twin.set_ylabel("PSNR (dB)", color="C1", fontsize="small")
        if isinstance(trained, int):
            right.axvline(trained, color="red", lw=0.7, ls="--")
        for a in (right, twin):
            a.tick_params(labelsize="x-small")
    return fig


def _colorbar(bar, label: str) -> None:
    """Label and ticks of a colour bar in the small sizes of the figure's other text."""
    bar.set_label(label, fontsize="x-small")
    bar.ax.tick_params(labelsize="x-small")
