"""The drawings of :mod:`gabic.viz`: matplotlib Figures sized for papers, exportable with ``fig.savefig``.

Every function draws into a new :class:`matplotlib.figure.Figure` (no pyplot state is touched),
or into ``ax`` when one is given, and returns the figure. Each attaches the numbers it draws to
the figure (:mod:`gabic.figure_data`), which :func:`gabic.plots.save_figure` writes beside it as
CSV. matplotlib is imported inside the functions: it is an optional dependency (the ``plots``
extra), and capturing needs none of it.

:func:`informative_node` picks the node :func:`draw_window` shows when none is given.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from gabic.checks import check_int
from gabic.figure_data import attach_data, grid_table
from gabic.viz.capture import BlockCapture
from gabic.viz.geometry import feature_position, node_patch, valid_nodes, window_box, window_pixels
from gabic.viz.statistics import block_statistics, node_entropy, weighted_distance

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "attention_matrix",
    "draw_attention_matrix",
    "draw_statistics",
    "draw_window",
    "draw_window_grid",
    "informative_node",
    "plot_k_sweep",
]

#: Width of one column of a two-column paper (inches).
COLUMN = 3.5
#: Width of a full page (inches).
PAGE = 7.16
#: Gid of the arrows of :func:`draw_window` (one per neighbour; a ring around the query node for
#: a node that is its own neighbour), to find them in a figure.
ARROW_GID = "attention-arrow"
#: Gid of the weight labels of :func:`draw_window` and the k labels of :func:`plot_k_sweep`.
LABEL_GID = "weight-label"
K_LABEL_GID = "k-label"
#: Font size (points) of the small labels written on figures.
LABEL_SIZE = 5.0
#: At most this many ticks on a k axis, and about this many "k=" labels on a k sweep's RD panel.
MAX_K_TICKS = 8
MAX_K_LABELS = 6


def _figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _short(name: str) -> str:
    return name.removesuffix(".conv_b.0")


def _check_head(block: BlockCapture, head: int | str) -> None:
    check_int(head, "head", 0, block.heads - 1, also=("mean",), detail=f" for block {block.name}")


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


def _wrap(text: str, ax: Axes, fontsize: float) -> str:
    """``text`` wrapped to the width of ``ax`` (a character taken as 0.55 em)."""
    width_in = ax.get_position().width * ax.figure.get_figwidth()
    return textwrap.fill(text, max(16, int(width_in * 72 / (0.55 * fontsize))))


def _wrap_pieces(pieces: list[str], ax: Axes, fontsize: float, sep: str = " · ") -> str:
    """``pieces`` joined by ``sep``, broken into lines between pieces (never inside one) to fit the width of ``ax``."""
    width_in = ax.get_position().width * ax.figure.get_figwidth()
    chars = max(16, int(width_in * 72 / (0.55 * fontsize)))
    lines: list[str] = []
    for piece in pieces:
        if lines and len(lines[-1]) + len(sep) + len(piece) <= chars:
            lines[-1] += sep + piece
        else:
            lines.append(piece)
    return "\n".join(lines)


def _points(size: str | float) -> float:
    """A matplotlib font size (``"x-small"`` or points) in points."""
    from matplotlib.font_manager import FontProperties

    return FontProperties(size=size).get_size_in_points()


def _patch_centre(block: BlockCapture, window: int, node: int) -> tuple[float, float]:
    top, left, bottom, right = node_patch(block, window, node)
    return (top + bottom) / 2, (left + right) / 2


def _label_place(row: int, col: int, ws: int) -> dict[str, Any]:
    """Where :func:`draw_window` writes a neighbour's weight: just above its circle (below it in the
    window's top row), centred on it (starting at the cell's left edge in the first column, ending
    at its right edge in the last), so no label reaches beyond the window's edges."""
    up = row > 0
    if col == 0:
        x, ha = col - 0.45, "left"
    elif col == ws - 1:
        x, ha = col + 0.45, "right"
    else:
        x, ha = col, "center"
    return {
        "xy": (x, row),
        "xytext": (0, 4.5 if up else -4.5),
        "textcoords": "offset points",
        "ha": ha,
        "va": "bottom" if up else "top",
    }


def informative_node(block: BlockCapture, head: int | str = "mean", window: int | None = None) -> tuple[int, int]:
    """The node whose attention is most worth drawing: ``(window, node)``.

    Each node that covers the image (:func:`gabic.viz.valid_nodes`, not the padding) is scored by

        score = reach * focus,
        reach = sum_j w_j * d(i, j),   focus = 1 - H(w) / log m,

    with ``w`` its attention weights (one ``head`` or the mean over heads, as :func:`draw_window`
    draws them) over its ``m`` candidates (the k graph neighbours, or the window nodes it may
    attend to in a window-attention block: those with a weight above 0, as a shifted window's
    mask leaves some out), ``d`` the Euclidean distance in node units inside the window and ``H``
    the entropy in nats. ``reach`` is how far, on average, the attention goes (a node whose
    neighbours all touch it scores low: the drawing would show a plain convolution), ``focus`` how
    far the weights are from uniform (0 for uniform attention, 1 for all weight on one node). The
    highest score wins; ties go to the lowest (window, node). When every node attends uniformly
    (all scores 0), the node with the largest reach wins.

    Args:
        block: a captured block.
        head: an attention head or ``"mean"`` (default).
        window: look only inside this window; default None: every window.

    Raises:
        ValueError: a bad head or window, or no node of the block (window) covers the image.
    """
    _check_head(block, head)
    w = block.weights.double()  # (nW, heads, n, m)
    w = w.mean(1) if head == "mean" else w[:, head]  # (nW, n, m)
    nW, n = block.num_windows, block.n
    m = (w > 0).sum(-1).double()  # the nodes each can attend to (a shifted window's mask leaves out some)
    distance = weighted_distance(block)  # (nW, heads, n)
    reach = distance.mean(1) if head == "mean" else distance[:, head]  # linear in w: the mean head's reach
    focus = torch.where(m > 1, 1 - node_entropy(w) / m.clamp_min(2).log(), torch.ones_like(m))
    candidates = valid_nodes(block).clone()
    if window is not None:
        feature_position(block, window, 0)  # checks the window
        candidates[torch.arange(nW) != window] = False
    if not bool(candidates.any()):
        where = f"window {window} of block {block.name}" if window is not None else f"block {block.name}"
        raise ValueError(f"no node of {where} covers the image: give window and node")
    score = reach * focus
    if float(score[candidates].max()) <= 0:  # uniform attention everywhere
        score = reach
    score = score.masked_fill(~candidates, -math.inf)
    best = int(torch.argmax(score.reshape(-1)))  # the first maximum: the lowest (window, node)
    return divmod(best, n)


def draw_window_grid(block: BlockCapture, window: int | None = None, node: int | None = None, ax: Axes | None = None) -> Figure:
    """The image (with its zero padding, dashed outline: the original image) and the block's window
    grid in original-image pixels; ``window`` outlined in red, ``node``'s patch filled, its
    neighbours dotted (graph blocks).

    The data attached to the figure has one row per drawn box: ``role`` (``window``,
    ``selected_window``, ``query_node`` or ``neighbour``), ``window``, ``node`` (None for windows)
    and ``top, left, bottom, right`` in original-image pixels (bottom, right excluded).
    """
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
    sides = ("top", "left", "bottom", "right")
    rows = [
        {"role": "window", "window": w, "node": None, **dict(zip(sides, window_box(block, w), strict=True))}
        for w in range(block.num_windows)
    ]
    if window is not None:
        t, lft, b, r = window_box(block, window)
        ax.add_patch(Rectangle((lft, t), r - lft, b - t, fill=False, lw=1.5, ec="red", clip_on=False))  # whole on the plot's edge too
        rows.append({"role": "selected_window", "window": window, "node": None, "top": t, "left": lft, "bottom": b, "right": r})
        if node is not None:
            t, lft, b, r = node_patch(block, window, node)
            ax.add_patch(Rectangle((lft, t), r - lft, b - t, fc="red", ec="none", alpha=0.8))
            rows.append({"role": "query_node", "window": window, "node": node, "top": t, "left": lft, "bottom": b, "right": r})
            if block.kind == "graph":
                for j in block.idx[window, node].tolist():
                    t, lft, b, r = node_patch(block, window, j)
                    ax.plot((lft + r) / 2, (t + b) / 2, "o", ms=2.5, color="cyan")
                    rows.append({"role": "neighbour", "window": window, "node": j, "top": t, "left": lft, "bottom": b, "right": r})
    ax.set_xlim(-left, Wpad - left)
    ax.set_ylim(Hpad - top, -top)
    title = f"{_short(block.name)}: 1/{s}, {block.grid[0]}x{block.grid[1]} windows of {ws}x{ws}"
    ax.set_title(_wrap(title, ax, _points("small")), fontsize="small")
    ax.set_xlabel("x (pixels)", fontsize="x-small")
    ax.set_ylabel("y (pixels)", fontsize="x-small")
    ax.tick_params(labelsize="x-small")
    attach_data(fig, rows, name="grid")
    return fig


def draw_window(
    block: BlockCapture,
    window: int | None = None,
    node: int | None = None,
    head: int | str = "mean",
    ax: Axes | None = None,
    top: int = 9,
) -> Figure:
    """One window enlarged (its pixels, node grid), the query ``node`` (red star), its neighbours
    (circles) and one arrow per neighbour towards the query, coloured and thickened by attention
    (one ``head`` or the ``"mean"`` over heads); each weight is written by its neighbour.

    Graph blocks draw their k neighbours (the k nearest nodes in feature space; the k farthest for
    a dissimilarity graph); window-attention blocks (WACNN) the ``top`` most attended other nodes
    of the window. A node that is its own neighbour (a zero-length arrow) gets a ring around its
    star, coloured and thickened like an arrow. A legend under the figure says what each mark means.
    The arrows (and the ring) carry the gid :data:`ARROW_GID`, the weight labels :data:`LABEL_GID`.
    Each weight label sits just above its neighbour's circle, turned inwards at the window's
    edges, so none is cut by the plot's border.

    Args:
        block: a captured block.
        window, node: the query node; both None (default): :func:`informative_node`; only
            ``node`` None: the informative node of ``window``.
        head: an attention head or ``"mean"`` (default).
        ax: draw into these axes (the legend goes under their figure).
        top: window-attention blocks: how many of the most attended nodes to draw (default 9).

    The data attached to the figure has one row for the query and one per drawn neighbour:
    ``role`` (``query`` or ``neighbour``), ``window``, ``node``, ``row``, ``col`` (in the window),
    ``y``, ``x`` (the centre of the node's patch in original-image pixels), ``weight`` (None for
    the query) and ``head``.
    """
    from matplotlib import colormaps, patheffects
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, FancyArrowPatch

    if window is None and node is not None:
        raise ValueError("draw_window: node given without its window (give both, only the window, or neither)")
    if node is None:
        window, node = informative_node(block, head, window)
    feature_position(block, window, node)  # checks window and node
    fig, ax = _figure(ax, (COLUMN, COLUMN * 1.08))
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
    outline = [patheffects.withStroke(linewidth=1.2, foreground="black")]
    y0, x0 = _patch_centre(block, window, node)
    rows = [{"role": "query", "window": window, "node": node, "row": r0, "col": c0, "y": y0, "x": x0, "weight": None, "head": head}]
    itself = False
    for j, w in zip(neighbours, weights, strict=True):
        rj, cj = divmod(j, ws)
        colour, width = cmap(norm(w)), 0.6 + 3.0 * float(norm(w))
        if j == node:  # its own neighbour: a ring around the star instead of a zero-length arrow
            itself = True
            mark = Circle((c0, r0), 0.38, fill=False, ec=colour, lw=width, zorder=3)
        else:
            mark = FancyArrowPatch(
                (cj, rj), (c0, r0), arrowstyle="-|>", mutation_scale=8, lw=width, color=colour, shrinkA=4, shrinkB=6
            )
            ax.plot(cj, rj, "o", ms=6, mfc="none", mec=colour, mew=1.2)
        mark.set_gid(ARROW_GID)
        ax.add_patch(mark)
        label = ax.annotate(f"{w:.2f}", **_label_place(rj, cj, ws), fontsize=LABEL_SIZE, color="white", path_effects=outline)
        label.set_gid(LABEL_GID)
        y, x = _patch_centre(block, window, j)
        rows.append(
            {"role": "neighbour", "window": window, "node": j, "row": rj, "col": cj, "y": y, "x": x, "weight": float(w), "head": head}
        )
    ax.plot(c0, r0, "*", ms=10, color="red", mec="white", mew=0.5, zorder=4)
    ax.set_xlim(-0.5, ws - 0.5)
    ax.set_ylim(ws - 0.5, -0.5)
    ax.set_xticks(range(ws))
    ax.set_yticks(range(ws))
    ax.set_xlabel("node column", fontsize="x-small")
    ax.set_ylabel("node row", fontsize="x-small")
    ax.tick_params(labelsize="x-small")
    _colorbar(fig.colorbar(ScalarMappable(norm, cmap), ax=ax, shrink=0.8), "attention weight")
    if block.kind == "graph":
        what = f"k={block.knn}"
        chosen = f"{block.knn} {'farthest' if block.dissimilarity else 'nearest'} neighbours (feature space)"
    else:
        what = f"top {len(neighbours)} of {block.n}"
        chosen = f"{len(neighbours)} most attended nodes"
    handles = [
        Line2D([], [], ls="none", marker="*", ms=8, color="red", mec="white", mew=0.5, label="query node"),
        Line2D([], [], ls="none", marker="o", ms=5, mfc="none", mec=cmap(0.6), mew=1.2, label=chosen),
        Line2D([], [], color=cmap(0.6), lw=2, label="arrow colour/width: attention weight"),
    ]
    if itself:
        handles.append(
            Line2D([], [], ls="none", marker="o", ms=9, mfc="none", mec=cmap(0.6), mew=1.5, label="node is its own neighbour")
        )
    # under the figure (constrained layout makes room for it; with a given ``ax``, under the caller's figure)
    legend = {"fontsize": LABEL_SIZE + 0.5, "frameon": False, "handlelength": 1.5, "columnspacing": 1.0}
    fig.legend(handles=handles, loc="outside lower center", ncols=2, **legend)
    pieces = [_short(block.name), f"window {window}", f"node {node} (row {r0}, col {c0})", f"head {head}", what]
    ax.set_title(_wrap_pieces(pieces, ax, _points("x-small")), fontsize="x-small")
    attach_data(fig, rows, name="window")
    return fig


def attention_matrix(block: BlockCapture, window: int, head: int | str = "mean") -> np.ndarray:
    """The ``(n, n)`` attention matrix of a window (row i: node i's weights over the window's nodes),
    NaN where j is not a neighbour of i (graph blocks)."""
    _check_head(block, head)
    feature_position(block, window, 0)  # checks the window
    w = block.weights[window]  # (heads, n, k or n)
    w = (w.mean(0) if head == "mean" else w[head]).double()
    if block.kind != "graph":
        return w.numpy()
    n = block.n
    m = torch.full((n, n), math.nan, dtype=torch.float64)
    m.scatter_(1, block.idx[window], w)
    return m.numpy()


def draw_attention_matrix(block: BlockCapture, window: int, head: int | str = "mean", ax: Axes | None = None) -> Figure:
    """The ``n x n`` attention matrix of a window (see :func:`attention_matrix`); non-neighbours blank.

    The data attached to the figure is the matrix as a long table ``i, j, weight`` (row-major,
    NaN for non-neighbours)."""
    from matplotlib import colormaps

    fig, ax = _figure(ax, (COLUMN, COLUMN * 0.85))
    m = attention_matrix(block, window, head)
    im = ax.imshow(m, cmap=colormaps["viridis"].with_extremes(bad="white"), interpolation="nearest")
    _colorbar(fig.colorbar(im, ax=ax, shrink=0.8), "attention weight")
    ax.set_xlabel("neighbour j", fontsize="small")
    ax.set_ylabel("node i", fontsize="small")
    ax.tick_params(labelsize="x-small")
    ax.set_title(_wrap_pieces([_short(block.name), f"window {window}", f"head {head}"], ax, _points("x-small")), fontsize="x-small")
    table = grid_table(m, "weight")
    attach_data(fig, {"i": table["row"], "j": table["col"], "weight": table["weight"]}, name="matrix")
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
    block of how often each feature-map position is chosen as a neighbour (:func:`gabic.viz.block_statistics`).

    The data attached to the figure: ``statistics``, one row per block and head (``block``,
    ``kind``, ``head``, ``entropy_nats``, ``uniform_entropy_nats`` (``log k``),
    ``mean_distance_nodes`` and ``adjacent_share``, the last two per block, None for
    window-attention blocks); and per graph block ``frequency_<block>``, its heat map as a long
    table ``row, col, times_chosen`` (:func:`gabic.figure_data.grid_table`).
    """
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
    table: list[dict[str, Any]] = []
    for i, (b, s) in enumerate(zip(_blocks(blocks), stats, strict=True)):
        entropy = s["entropy"].tolist()
        ax.plot(range(b.heads), entropy, "o-", ms=3, color=f"C{i}", label=_short(b.name))
        k = b.knn if b.kind == "graph" else b.n
        ax.axhline(math.log(k), color=f"C{i}", ls="--", lw=0.7)
        for head, e in enumerate(entropy):
            row = {"block": b.name, "kind": b.kind, "head": head, "entropy_nats": e, "uniform_entropy_nats": math.log(k)}
            row |= {"mean_distance_nodes": s.get("mean_distance"), "adjacent_share": s.get("adjacent_share")}
            table.append(row)
    ax.set_xlabel("head", fontsize="small")
    ax.set_title("attention entropy (nats)", fontsize="small")
    ax.legend(fontsize="xx-small")
    for a in fig.axes:
        a.tick_params(labelsize="x-small")
    attach_data(fig, table, name="statistics")
    if graph:
        bottom = rows[1].subgridspec(1, len(graph))
        for i, (b, s) in enumerate(graph):
            ax = fig.add_subplot(bottom[i])
            im = ax.imshow(s["frequency_map"].numpy(), cmap="magma", interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.7).ax.tick_params(labelsize="xx-small")
            ax.set_title(f"{_short(b.name)}: chosen as neighbour", fontsize="x-small")
            ax.set_xticks([])
            ax.set_yticks([])
            attach_data(fig, grid_table(s["frequency_map"], "times_chosen"), name=f"frequency_{_short(b.name)}")
    return fig


def _k_ticks(ks: list[int]) -> list[int]:
    """Integer ticks of a k axis: every k when there are at most :data:`MAX_K_TICKS`, else every
    ``stride``-th integer from the smallest k, the stride the smallest that gives at most that many."""
    if len(ks) <= MAX_K_TICKS:
        return sorted(set(ks))
    lo, hi = min(ks), max(ks)
    stride = math.ceil((hi - lo + 1) / MAX_K_TICKS)
    return list(range(lo, hi + 1, stride))


def _place_k_labels(ax: Axes, ks: list[int], xs: list[float], ys: list[float], trained: Any, size_in: tuple[float, float]) -> None:
    """Write "k=..." beside the points of a k sweep where it fits: inside the plot, on no other
    label, point or line. The trained k first, then the smallest and largest k, then every other
    point in k order, each tried right-above, right-below, left-above, left-below its point;
    at most about :data:`MAX_K_LABELS` labels (every ``stride``-th k, the trained k always tried).
    Positions are worked out in axes fractions from the limits, which are set before."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    fx = [(x - x0) / (x1 - x0) for x in xs]
    fy = [(y - y0) / (y1 - y0) for y in ys]
    w_pt, h_pt = size_in[0] * 72, size_in[1] * 72
    char_w, line_h, gap = 0.6 * LABEL_SIZE / w_pt, 1.25 * LABEL_SIZE / h_pt, 3.5  # gap: points from the point to its label
    mark_w, mark_h = 2.5 / w_pt, 2.5 / h_pt  # half the size of a point's marker (3 points wide), with room
    boxes = [(x - mark_w, y - mark_h, x + mark_w, y + mark_h) for x, y in zip(fx, fy, strict=True)]
    seg_w, seg_h = 1.0 / w_pt, 1.0 / h_pt  # the line between the points, sampled
    for xa, ya, xb, yb in zip(fx, fy, fx[1:], fy[1:], strict=False):
        for t in np.linspace(0, 1, 12)[1:-1]:
            x, y = xa + t * (xb - xa), ya + t * (yb - ya)
            boxes.append((x - seg_w, y - seg_h, x + seg_w, y + seg_h))
    order = sorted(range(len(ks)), key=lambda i: ks[i])
    stride = max(1, math.ceil(len(ks) / MAX_K_LABELS))
    wanted = [i for i in order if ks[i] == trained] + [order[0], order[-1]] + order[::stride]
    placed: list[tuple[float, float, float, float]] = []
    done: set[int] = set()
    for i in wanted:
        if i in done:
            continue
        done.add(i)
        text = f"k={ks[i]}"
        w, h = len(text) * char_w, line_h
        dx, dy = gap / w_pt, gap / h_pt
        for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            left = fx[i] + dx if sx > 0 else fx[i] - dx - w
            bottom = fy[i] + dy if sy > 0 else fy[i] - dy - h
            box = (left, bottom, left + w, bottom + h)
            inside = box[0] >= 0 and box[1] >= 0 and box[2] <= 1 and box[3] <= 1
            clear = all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1] for b in placed + boxes)
            if inside and clear:
                placed.append(box)
                colour = "red" if ks[i] == trained else "black"
                label = ax.text(left, bottom, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=LABEL_SIZE, color=colour)
                label.set_gid(K_LABEL_GID)
                break


def plot_k_sweep(result: dict[str, Any], ax: Axes | None = None) -> Figure:
    """The k sweep of :func:`gabic.k_sweep.k_sweep`: left, PSNR against bpp with points labelled
    "k=..." where the label fits (the trained k in red); right, bpp and PSNR against k (integer
    ticks, at most :data:`MAX_K_TICKS`; dashed red: the trained k). With ``ax``, only the left panel.

    The data attached to the figure has one row per k: ``k``, ``bpp``, ``psnr_db`` and ``trained``
    (whether the model was trained with that k).
    """
    from matplotlib.figure import Figure

    ks = [int(k) for k in result["meta"]["knn"]]
    bpp, psnr = result["results"]["bpp"], result["results"]["psnr-rgb"]
    trained = result["meta"].get("trained_knn")
    if ax is None:
        fig = Figure(figsize=(PAGE, 2.6), layout="constrained")
        ax, right = fig.subplots(1, 2)
    else:
        fig, right = ax.figure, None
    ax.plot(bpp, psnr, "o-", ms=3, color="C0")
    for lo, hi, setter in ((min(bpp), max(bpp), ax.set_xlim), (min(psnr), max(psnr), ax.set_ylim)):
        span = (hi - lo) or abs(hi) * 1e-3 or 1.0
        setter(lo - 0.12 * span, hi + 0.12 * span)  # room for the labels inside the plot
    ax.set_xlabel(f"bpp ({result['meta'].get('estimate', '')})", fontsize="small")
    ax.set_ylabel("PSNR (dB)", fontsize="small")
    ax.set_title(result.get("name", "k sweep"), fontsize="small")
    ax.tick_params(labelsize="x-small")
    width = fig.get_figwidth() / (2 if right is not None else 1) - 0.8  # the plot, without its tick labels
    _place_k_labels(ax, ks, list(bpp), list(psnr), trained, (width, fig.get_figheight() - 0.8))
    if right is not None:
        right.plot(ks, bpp, "o-", ms=3, color="C0")
        right.set_xlabel("k (number of neighbours per node)", fontsize="small")
        right.set_ylabel("bpp", color="C0", fontsize="small")
        twin = right.twinx()
        twin.plot(ks, psnr, "s-", ms=3, color="C1")
        twin.set_ylabel("PSNR (dB)", color="C1", fontsize="small")
        if isinstance(trained, int):
            right.axvline(trained, color="red", lw=0.7, ls="--")
        right.set_xticks(_k_ticks(ks))
        for a in (right, twin):
            a.tick_params(labelsize="x-small")
    attach_data(fig, {"k": ks, "bpp": list(bpp), "psnr_db": list(psnr), "trained": [k == trained for k in ks]}, name="k_sweep")
    return fig


def _colorbar(bar, label: str) -> None:
    """Label and ticks of a colour bar in the small sizes of the figure's other text."""
    bar.set_label(label, fontsize="x-small")
    bar.ax.tick_params(labelsize="x-small")
