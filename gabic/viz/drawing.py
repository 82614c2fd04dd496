"""The drawings of :mod:`gabic.viz`: matplotlib Figures sized for papers, exportable with ``fig.savefig``.

Every function draws into a new :class:`matplotlib.figure.Figure` (no pyplot state is touched),
or into ``ax`` when one is given, and returns the figure. Each attaches the numbers it draws to
the figure (:mod:`gabic.figure_data`), which :func:`gabic.plots.save_figure` writes beside it as
CSV. matplotlib is imported inside the functions: it is an optional dependency (the ``plots``
extra), and capturing needs none of it.

:func:`informative_node` picks the node :func:`draw_window` shows when none is given.

Type sizes are absolute (:data:`TEXT_SIZE`, :data:`MIN_FONT_SIZE`), not relative to matplotlib's
``font.size``, and the figures are drawn at the width they take in a paper (:data:`COLUMN`, one
column, or :data:`PAGE`): included at 100 %, no text is smaller than :data:`MIN_FONT_SIZE` points.
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
from gabic.figure_layout import COLUMN_WIDTHS, FONT_SIZE, LEGEND_FONT_SIZE
from gabic.viz.capture import BlockCapture
from gabic.viz.geometry import feature_position, node_patch, valid_nodes, window_box, window_pixels
from gabic.viz.statistics import block_statistics, nonlocal_share

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

#: Width of one column and of a full page of a two-column paper (inches): ``gabic.figure_layout.COLUMN_WIDTHS``.
COLUMN = COLUMN_WIDTHS["single"]
PAGE = COLUMN_WIDTHS["double"]
#: Type size (points) of titles and axis labels: ``gabic.figure_layout.FONT_SIZE``.
TEXT_SIZE = FONT_SIZE
#: The smallest type (points) any figure here writes: tick labels, legends, colour bars, weight and
#: k labels (``gabic.figure_layout.LEGEND_FONT_SIZE``, the least a printed figure should carry).
MIN_FONT_SIZE = LEGEND_FONT_SIZE
#: Gid of the arrows of :func:`draw_window` (one per neighbour; a ring around the query node for
#: a node that is its own neighbour), to find them in a figure.
ARROW_GID = "attention-arrow"
#: Gid of the neighbours' circles of :func:`draw_window`.
NODE_GID = "neighbour-node"
#: Gid of the weight labels of :func:`draw_window` and the k labels of :func:`plot_k_sweep`.
LABEL_GID = "weight-label"
K_LABEL_GID = "k-label"
#: Font size (points) of the small labels written on figures (weights, k).
LABEL_SIZE = MIN_FONT_SIZE
#: :func:`draw_window` writes every weight when it draws at most :data:`LABEL_ALL_UP_TO` neighbours,
#: else only the :data:`MAX_WEIGHT_LABELS` largest: with k = 63 a label on every node hides the window.
LABEL_ALL_UP_TO = 16
MAX_WEIGHT_LABELS = 8
#: How far (in nodes) each further arrow of a row of collinear neighbours bows away from the
#: straight one, so that none lies on another (:func:`draw_window`).
ARC_STEP = 0.3
#: At most this many ticks on a k axis, and about this many "k=" labels on a k sweep's RD panel.
MAX_K_TICKS = 8
MAX_K_LABELS = 6
#: At most this many intervals between the ticks of a k sweep's bpp and PSNR axes.
MAX_VALUE_TICKS = 4


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


def _patch_centre(block: BlockCapture, window: int, node: int) -> tuple[float, float]:
    top, left, bottom, right = node_patch(block, window, node)
    return (top + bottom) / 2, (left + right) / 2


def _label_place(row: int, col: int, query_row: int, ws: int, taken: set[tuple[int, float]]) -> dict[str, Any]:
    """Where :func:`draw_window` writes a neighbour's weight: beside its circle, never on it (the
    text starts 5 points from the centre of a 6-point circle), in the gap between its row and the
    next one up or down, on the side away from the query (above a neighbour above the query or on
    its row, below one below it) so that the label does not sit on the neighbour's own arrow.

    A gap holds one label: ``taken`` holds the ``(column, gap row)`` already used (and gets this
    one); when the preferred gap is taken the label goes to the other side. Labels are turned
    inwards in the window's top and bottom rows and aligned to the cell's edge in its first and
    last columns, so none reaches beyond the window.
    """
    preferred = row <= query_row
    possible = [up for up in (preferred, not preferred) if (row > 0 if up else row < ws - 1)]
    free = [up for up in possible if (col, row - 0.5 if up else row + 0.5) not in taken]
    up = (free or possible)[0]
    taken.add((col, row - 0.5 if up else row + 0.5))
    if col == 0:
        x, ha = col - 0.45, "left"
    elif col == ws - 1:
        x, ha = col + 0.45, "right"
    else:
        x, ha = col, "center"
    return {
        "xy": (x, row),
        "xytext": (0, 5.0 if up else -5.0),
        "textcoords": "offset points",
        "ha": ha,
        "va": "bottom" if up else "top",
    }


def _arc_rads(neighbours: list[int], node: int, ws: int) -> dict[int, float]:
    """The curvature (matplotlib ``connectionstyle="arc3,rad=..."``) of each neighbour's arrow in
    :func:`draw_window`.

    Neighbours in the same direction from the query (same row, column or diagonal, on the same side)
    would draw their arrows on top of each other: the nearest keeps a straight arrow and each
    further one bows away from the line, alternately to either side (towards the window's centre
    first), the i-th by ``ARC_STEP * ceil(i / 2)`` nodes at its middle, so that it passes beside
    the nearer neighbours' circles and arrows instead of over them. Other arrows stay straight.
    """
    r0, c0 = divmod(node, ws)
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for j in neighbours:
        if j == node:
            continue
        rj, cj = divmod(j, ws)
        g = math.gcd(abs(rj - r0), abs(cj - c0))
        groups.setdefault(((rj - r0) // g, (cj - c0) // g), []).append((g, j))
    centre = (ws - 1) / 2
    rads: dict[int, float] = {}
    for members in groups.values():
        for i, (_, j) in enumerate(sorted(members)):
            if i == 0:
                rads[j] = 0.0
                continue
            rj, cj = divmod(j, ws)
            # arc3 moves the arrow's control point by rad * (rj - r0, c0 - cj) in (column, row), rows
            # drawn downwards (the window's y axis is inverted); "inwards" > 0: that way is towards the centre
            inwards = (centre - (cj + c0) / 2) * (rj - r0) + (centre - (rj + r0) / 2) * (c0 - cj)
            first = 1.0 if inwards >= 0 else -1.0
            side = first if i % 2 else -first
            bow = ARC_STEP * math.ceil(i / 2)  # nodes, at the middle of the arrow
            rads[j] = side * 2 * bow / math.hypot(rj - r0, cj - c0)  # a quadratic curve's middle moves half its control point's offset
    return rads


def informative_node(block: BlockCapture, head: int | str = "mean", window: int | None = None) -> tuple[int, int]:
    """The node whose attention shows best what kNN attention does that a local window does not: ``(window, node)``.

    Each node i that covers the image (:func:`gabic.viz.valid_nodes`, not the padding) is scored by
    :func:`gabic.viz.statistics.nonlocal_share`, the share of its attention (one ``head`` or the
    mean over heads, as :func:`draw_window` draws it) that goes to neighbours outside its spatial
    neighbourhood and on the image,

        score_i = sum_j w_ij [j not in S(i)] [j covers the image],

    ``S(i)`` the k nodes nearest to i on the window's grid, every node as near as the k-th included
    (:func:`gabic.viz.statistics.spatial_neighbourhood`; k = the block's k, 8 for window attention).
    The highest score wins: the node that sends most of its attention where a local window of k
    neighbours could not look. Scores are compared to 6 decimals (the weights are float32), and ties
    (several nodes sending all their attention beyond; all 0, where every node attends only
    locally) go to the node nearest its window's centre, then to the lowest (window, node).

    Why not distance or entropy: attention-weighted distance (and low entropy under the edge bias
    ``((r_i - r_j) + (c_i - c_j))**2``, widest at the corners) grow towards the window's corners
    whatever the image, so such a score picked a corner in every block. ``S(i)`` is measured from
    each position itself, so no position wins by geometry alone.

    Args:
        block: a captured block.
        head: an attention head or ``"mean"`` (default).
        window: look only inside this window; default None: every window.

    Raises:
        ValueError: a bad head or window, or no node of the block (window) covers the image.
    """
    _check_head(block, head)
    share = nonlocal_share(block)  # (nW, heads, n), linear in the weights
    score = share.mean(1) if head == "mean" else share[:, head]  # (nW, n)
    candidates = valid_nodes(block).clone()
    if window is not None:
        feature_position(block, window, 0)  # checks the window
        candidates[torch.arange(block.num_windows) != window] = False
    if not bool(candidates.any()):
        where = f"window {window} of block {block.name}" if window is not None else f"block {block.name}"
        raise ValueError(f"no node of {where} covers the image: give window and node")
    score = torch.round(score, decimals=6).masked_fill(~candidates, -math.inf)
    ws = block.window_size
    rc = torch.arange(block.n, dtype=torch.float64)
    off_centre = torch.hypot(torch.div(rc, ws, rounding_mode="floor") - (ws - 1) / 2, rc % ws - (ws - 1) / 2)  # (n,)
    tied = score == score.max()
    key = torch.where(tied, -off_centre.expand_as(score), torch.full_like(score, -math.inf))
    best = int(torch.argmax(key.reshape(-1)))  # the first maximum: the lowest (window, node)
    return divmod(best, block.n)


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
    ax.set_title(_wrap(title, ax, TEXT_SIZE), fontsize=TEXT_SIZE)
    ax.set_xlabel("x (pixels)", fontsize=TEXT_SIZE)
    ax.set_ylabel("y (pixels)", fontsize=TEXT_SIZE)
    ax.tick_params(labelsize=MIN_FONT_SIZE)
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
    (circles) and one arrow per neighbour towards the query, coloured, thickened and made opaque by
    attention (one ``head`` or the ``"mean"`` over heads); the weights are written by their neighbours.

    Graph blocks draw their k neighbours (the k nearest nodes in feature space; the k farthest for
    a dissimilarity graph); window-attention blocks (WACNN) the ``top`` most attended other nodes
    of the window. A node that is its own neighbour (a zero-length arrow) gets a ring around its
    star, coloured and thickened like an arrow. A legend under the figure says what each mark means.

    Every arrow stays visible: neighbours in one direction from the query (on one row, column or
    diagonal with it) get arrows that bow away from each other (:func:`_arc_rads`) instead of lying on
    one line, and the arrows are drawn from the heaviest to the lightest, so a thin arrow is never
    under a thick one. Each weight label sits beside its neighbour's circle, not on it (:func:`_label_place`);
    with more than :data:`LABEL_ALL_UP_TO` neighbours only the :data:`MAX_WEIGHT_LABELS` largest
    weights are written (the title says so), the others are read from the colour bar.
    The arrows (and the ring) carry the gid :data:`ARROW_GID`, the circles :data:`NODE_GID`, the
    weight labels :data:`LABEL_GID`.

    Args:
        block: a captured block.
        window, node: the query node; both None (default): :func:`informative_node`; only
            ``node`` None: the informative node of ``window``.
        head: an attention head or ``"mean"`` (default).
        ax: draw into these axes (the legend goes under their figure, in one row when the figure
            is wider than :data:`COLUMN`).
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
    fig, ax = _figure(ax, (COLUMN, COLUMN * 1.2))
    ws = block.window_size
    pixels = window_pixels(block, window).permute(1, 2, 0).numpy()
    ax.imshow(pixels, extent=(-0.5, ws - 0.5, ws - 0.5, -0.5), interpolation="nearest")
    edges = np.arange(ws + 1) - 0.5  # the node grid: two line collections, cheaper to draw than 2 (ws + 1) lines
    ax.hlines(edges, -0.5, ws - 0.5, color="white", lw=0.3, alpha=0.5)
    ax.vlines(edges, -0.5, ws - 0.5, color="white", lw=0.3, alpha=0.5)
    neighbours, weights = _neighbours(block, window, node, head, top)
    cmap = colormaps["viridis"]
    norm = Normalize(0.0, max(float(weights.max()), 1e-12))
    r0, c0 = divmod(node, ws)
    outline = [patheffects.withStroke(linewidth=1.5, foreground="black")]
    y0, x0 = _patch_centre(block, window, node)
    rows = [{"role": "query", "window": window, "node": node, "row": r0, "col": c0, "y": y0, "x": x0, "weight": None, "head": head}]
    labelled = set(range(len(neighbours)))
    if len(neighbours) > LABEL_ALL_UP_TO:
        labelled = set(np.argsort(-weights, kind="stable")[:MAX_WEIGHT_LABELS].tolist())
    rads = _arc_rads(neighbours, node, ws)
    gaps: set[tuple[int, float]] = set()  # the gaps between rows that hold a label
    itself = False
    for i in np.argsort(-weights, kind="stable").tolist():  # heaviest first: lighter arrows on top of heavier ones
        j, w = neighbours[i], float(weights[i])
        rj, cj = divmod(j, ws)
        strength = float(norm(w))
        colour, width = cmap(strength), 0.6 + 2.6 * strength
        if j == node:  # its own neighbour: a ring around the star instead of a zero-length arrow
            itself = True
            mark = Circle((c0, r0), 0.38, fill=False, ec=colour, lw=width, zorder=3)
        else:
            mark = FancyArrowPatch(
                (cj, rj),
                (c0, r0),
                arrowstyle="-|>",
                connectionstyle=f"arc3,rad={rads[j]:.4f}",
                mutation_scale=8,
                lw=width,
                color=colour,
                alpha=0.5 + 0.5 * strength,
                shrinkA=4,
                shrinkB=6,
            )
            (circle,) = ax.plot(cj, rj, "o", ms=6, mfc="none", mec=colour, mew=1.2)
            circle.set_gid(NODE_GID)
        mark.set_gid(ARROW_GID)
        ax.add_patch(mark)
        if i in labelled:
            label = ax.annotate(
                f"{w:.2f}", **_label_place(rj, cj, r0, ws, gaps), fontsize=LABEL_SIZE, color="white", path_effects=outline, zorder=5
            )
            label.set_gid(LABEL_GID)
    for j, w in zip(neighbours, weights, strict=True):
        rj, cj = divmod(j, ws)
        y, x = _patch_centre(block, window, j)
        rows.append(
            {"role": "neighbour", "window": window, "node": j, "row": rj, "col": cj, "y": y, "x": x, "weight": float(w), "head": head}
        )
    ax.plot(c0, r0, "*", ms=10, color="red", mec="white", mew=0.5, zorder=4)
    ax.set_xlim(-0.5, ws - 0.5)
    ax.set_ylim(ws - 0.5, -0.5)
    ax.set_xticks(range(ws))
    ax.set_yticks(range(ws))
    ax.set_xlabel("node column", fontsize=TEXT_SIZE)
    ax.set_ylabel("node row", fontsize=TEXT_SIZE)
    ax.tick_params(labelsize=MIN_FONT_SIZE)
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
    legend = {"fontsize": MIN_FONT_SIZE, "frameon": False, "handlelength": 1.5, "columnspacing": 1.0}
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles) if fig.get_figwidth() > COLUMN + 0.5 else 1, **legend)
    pieces = [_short(block.name), f"window {window}", f"node {node} (row {r0}, col {c0})", f"head {head}", what]
    if len(labelled) < len(neighbours):
        pieces.append(f"weights written: the {len(labelled)} largest")
    ax.set_title(_wrap_pieces(pieces, ax, TEXT_SIZE), fontsize=TEXT_SIZE)
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
    ax.set_xlabel("neighbour j", fontsize=TEXT_SIZE)
    ax.set_ylabel("node i", fontsize=TEXT_SIZE)
    ax.tick_params(labelsize=MIN_FONT_SIZE)
    ax.set_title(_wrap_pieces([_short(block.name), f"window {window}", f"head {head}"], ax, TEXT_SIZE), fontsize=TEXT_SIZE)
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
    entropy per head (dashed grey: ``log k``, the entropy of uniform attention, ``log n`` for window
    attention over all n nodes, labelled in the legend), and, below, one heat map per graph block
    of how often each feature-map position is chosen as a neighbour (:func:`gabic.viz.block_statistics`).
    The entropy legend stands to the right of its plot, outside it, so it covers no curve.

    The data attached to the figure: ``statistics``, one row per block and head (``block``,
    ``kind``, ``head``, ``entropy_nats``, ``uniform_entropy_nats`` (``log k``),
    ``mean_distance_nodes`` and ``adjacent_share``, the last two per block, None for
    window-attention blocks); and per graph block ``frequency_<block>``, its heat map as a long
    table ``row, col, times_chosen`` (:func:`gabic.figure_data.grid_table`).
    """
    from matplotlib.figure import Figure

    stats = [block_statistics(b) for b in _blocks(blocks)]
    graph = [(b, s) for b, s in zip(_blocks(blocks), stats, strict=True) if b.kind == "graph"]
    fig = Figure(figsize=(PAGE, 4.8), layout="constrained")
    rows = fig.add_gridspec(2, 1, height_ratios=(1, 1.1))
    top = rows[0].subgridspec(1, 3, width_ratios=(1, 1, 1.35))  # the entropy plot and its legend
    labels = [_short(b.name) for b, _ in graph]
    ax = fig.add_subplot(top[0])
    ax.bar(labels, [s["mean_distance"] for _, s in graph], color="C0")
    ax.set_title(_wrap("mean distance to neighbours (nodes)", ax, TEXT_SIZE), fontsize=TEXT_SIZE)
    ax = fig.add_subplot(top[1])
    ax.bar(labels, [s["adjacent_share"] for _, s in graph], color="C1")
    ax.set_ylim(0, 1)
    ax.set_title(_wrap("share of 8-adjacent neighbours", ax, TEXT_SIZE), fontsize=TEXT_SIZE)
    ax = fig.add_subplot(top[2])
    table: list[dict[str, Any]] = []
    uniform: dict[str, float] = {}  # legend label: the entropy of uniform attention, one per k (graph) or n (window)
    for i, (b, s) in enumerate(zip(_blocks(blocks), stats, strict=True)):
        entropy = s["entropy"].tolist()
        ax.plot(range(b.heads), entropy, "o-", ms=3, color=f"C{i}", label=_short(b.name))
        k = b.knn if b.kind == "graph" else b.n
        symbol = "k" if b.kind == "graph" else "n"
        uniform.setdefault(f"log {symbol} ({symbol}={k}): uniform", math.log(k))
        for head, e in enumerate(entropy):
            row = {"block": b.name, "kind": b.kind, "head": head, "entropy_nats": e, "uniform_entropy_nats": math.log(k)}
            row |= {"mean_distance_nodes": s.get("mean_distance"), "adjacent_share": s.get("adjacent_share")}
            table.append(row)
    for label, value in uniform.items():  # one dashed line per k (the blocks of a model share one), named in the legend
        ax.axhline(value, color="0.45", ls="--", lw=0.8, label=label)
    ax.set_xlabel("head", fontsize=TEXT_SIZE)
    ax.set_title("attention entropy (nats)", fontsize=TEXT_SIZE)
    ax.legend(fontsize=MIN_FONT_SIZE, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    for a in fig.axes:
        a.tick_params(labelsize=MIN_FONT_SIZE)
    attach_data(fig, table, name="statistics")
    if graph:
        bottom = rows[1].subgridspec(1, len(graph))
        for i, (b, s) in enumerate(graph):
            ax = fig.add_subplot(bottom[i])
            im = ax.imshow(s["frequency_map"].numpy(), cmap="magma", interpolation="nearest")
            fig.colorbar(im, ax=ax, shrink=0.7).ax.tick_params(labelsize=MIN_FONT_SIZE)
            ax.set_title(_wrap(f"{_short(b.name)}: chosen as neighbour", ax, TEXT_SIZE), fontsize=TEXT_SIZE)
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


def _value_ticks(ax: Axes, axis: str) -> None:
    """Few, readable ticks on ``ax``'s ``axis`` (``"x"`` or ``"y"``) over its current limits: at
    most :data:`MAX_VALUE_TICKS` intervals of 1, 2 or 5 times a power of ten, written with just the
    decimals the step needs (``0.4730 0.4735 0.4740``, not ``0.47300 0.47325 0.47350 ...``, which
    ran together on a k sweep whose bpp barely changes)."""
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator

    locator = MaxNLocator(nbins=MAX_VALUE_TICKS, steps=[1, 2, 5, 10])
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    ticks = locator.tick_values(lo, hi)
    step = float(np.diff(ticks).min()) if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step > 0 else 0
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(locator)
    target.set_major_formatter(FormatStrFormatter(f"%.{decimals}f"))


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
    bpp and PSNR axes get few ticks with as many decimals as their step needs (:func:`_value_ticks`).

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
    ax.set_xlabel(f"bpp ({result['meta'].get('estimate', '')})", fontsize=TEXT_SIZE)
    ax.set_ylabel("PSNR (dB)", fontsize=TEXT_SIZE)
    ax.set_title(result.get("name", "k sweep"), fontsize=TEXT_SIZE)
    ax.tick_params(labelsize=MIN_FONT_SIZE)
    _value_ticks(ax, "x")
    _value_ticks(ax, "y")
    width = fig.get_figwidth() / (2 if right is not None else 1) - 0.9  # the plot, without its tick labels
    _place_k_labels(ax, ks, list(bpp), list(psnr), trained, (width, fig.get_figheight() - 0.9))
    if right is not None:
        right.plot(ks, bpp, "o-", ms=3, color="C0")
        right.set_xlabel("k (number of neighbours per node)", fontsize=TEXT_SIZE)
        right.set_ylabel("bpp", color="C0", fontsize=TEXT_SIZE)
        twin = right.twinx()
        twin.plot(ks, psnr, "s-", ms=3, color="C1")
        twin.set_ylabel("PSNR (dB)", color="C1", fontsize=TEXT_SIZE)
        if isinstance(trained, int):
            right.axvline(trained, color="red", lw=0.7, ls="--")
        right.set_xticks(_k_ticks(ks))
        _value_ticks(right, "y")
        _value_ticks(twin, "y")
        for a in (right, twin):
            a.tick_params(labelsize=MIN_FONT_SIZE)
    attach_data(fig, {"k": ks, "bpp": list(bpp), "psnr_db": list(psnr), "trained": [k == trained for k in ks]}, name="k_sweep")
    return fig


def _colorbar(bar, label: str) -> None:
    """Label and ticks of a colour bar in the small sizes of the figure's other text."""
    bar.set_label(label, fontsize=MIN_FONT_SIZE)
    bar.ax.tick_params(labelsize=MIN_FONT_SIZE)
