"""The drawings of :mod:`gabic.analysis`: matplotlib Figures for papers, each carrying its data.

Every function draws into a new :class:`matplotlib.figure.Figure` (no pyplot state), attaches the
numbers it plots (:func:`gabic.figure_data.attach_data`, written as CSV by
:func:`gabic.plots.save_figure`) and returns the figure. Maps are drawn in original-image pixels
(the latent's 16-pixel cells, the image's zero padding outside the dashed outline), as the
attention drawings of :mod:`gabic.viz`. matplotlib is imported inside the functions (the
``plots`` extra).

Every function takes the ``width`` it is printed at: ``"single"`` (one column, 3.5 in),
``"double"`` (the page, 7.16 in) or inches (:func:`gabic.plots.figure_width`). Type is set in
points, as in the RD figures: :data:`gabic.plots.FONT_SIZE` for titles and axis labels,
:data:`gabic.plots.LEGEND_FONT_SIZE` (7 pt) for tick labels, legends, colour bars and the numbers
written on a figure, so it stays 7 pt or more at the width asked for; the panels are laid out for
that width (fewer side by side on a narrow figure, the figure taller).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from gabic.analysis.compare import ROLES, ModelComparison
from gabic.analysis.latent import LatentCapture
from gabic.checks import check_int
from gabic.figure_data import attach_data, grid_table
from gabic.figure_layout import FONT_SIZE, LEGEND_FONT_SIZE, WIDE_LAYOUT, figure_width, fit_lines, log_ticks, text_height, text_width
from gabic.image_sets import describe
from gabic.viz.capture import BlockCapture
from gabic.viz.geometry import node_map

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "attention_maps",
    "draw_bits",
    "draw_attention_comparison",
    "draw_attention_maps",
    "draw_bits_comparison",
    "draw_redundancy",
    "draw_residual_correlation",
    "draw_slice_bits",
    "draw_tile_scatter",
]

#: Colours of the first and second model of a comparison (GABIC, WACNN by default), the same in every figure.
MODEL_COLORS = ("C3", "C0")
#: The narrowest a panel of violins or points is drawn, with its axis labels (inches): a
#: one-column figure has two side by side, a page four.
PANEL = 1.6


def _new(figsize: tuple[float, float]) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _per_row(width: float, n: int, panel: float = PANEL) -> int:
    """How many of ``n`` panels at least ``panel`` inches wide go side by side on a figure ``width`` inches wide (at least one)."""
    return max(1, min(n, int(width // panel)))


def _small(ax: Axes) -> None:
    ax.tick_params(which="both", labelsize=LEGEND_FONT_SIZE)


def _title(ax: Axes, pieces: Sequence[str] | str, width: float | None = None) -> None:
    """``ax``'s title in the title size; ``pieces`` (a text or its pieces) broken into lines that fit
    ``width`` inches (default: no breaks but the text's own)."""
    text = FONT_SIZE
    pieces = [pieces] if isinstance(pieces, str) else list(pieces)
    ax.set_title(" ".join(pieces) if width is None else fit_lines(pieces, width, text), fontsize=text)


def _suptitle(fig: Figure, pieces: Sequence[str], width: float) -> float:
    """The figure's title, in the title size, broken between ``pieces`` to fit ``width`` inches; its height in inches."""
    text = FONT_SIZE
    title = fit_lines(pieces, width - 0.2, text)
    fig.suptitle(title, fontsize=text)
    return text_height(title, text)


def _colorbar(fig: Figure, mappable: Any, ax: Any, label: str | None = None, **kwargs: Any) -> Any:
    """A colour bar beside ``ax`` (an axes or a list of them), its label and ticks in the small size."""
    small = LEGEND_FONT_SIZE
    bar = fig.colorbar(mappable, ax=ax, shrink=0.8, **kwargs)
    if label is not None:
        bar.set_label(label, fontsize=small)
    bar.ax.tick_params(which="both", labelsize=small)
    return bar


def _imshow_extent(extent: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    top, left, bottom, right = extent
    return left, right, bottom, top


def _outline(ax: Axes, capture: LatentCapture) -> None:
    from matplotlib.patches import Rectangle

    H, W = capture.image_size
    ax.add_patch(Rectangle((0, 0), W, H, fill=False, ls="--", lw=0.7, ec="black"))


def draw_bits_comparison(comparison: ModelComparison, width: str | float = "double") -> Figure:
    """Where the bits go, for both models of a :class:`~gabic.analysis.compare.ModelComparison`:
    the image, each model's latent bits per pixel (a 16x16 cell's bits over its 256 pixels, summed
    over channels), and their difference (second minus first; red: the second spends more), all
    aligned with the image. Titles give each model's bpp from its bitstream and from the
    likelihoods (the maps plus the hyper-latent sum to the latter).

    On a figure :data:`~gabic.reconstructions.WIDE_LAYOUT` inches wide or more (default
    ``"double"``: the page) the four panels go side by side; on a narrower one the two models'
    maps above, the image and the difference below. The axes are made in the order image, first,
    second, difference."""
    from matplotlib.colors import TwoSlopeNorm

    fig_width = figure_width(width)
    a, b = comparison.captures
    names = comparison.names
    maps = [c.bits_map.double() / 256.0 for c in (a, b)]
    diff = maps[1] - maps[0]
    H, W = a.image_size
    wide = fig_width >= WIDE_LAYOUT
    cols = 4 if wide else 2
    panel = (fig_width - 1.5 if wide else fig_width - 0.8) / cols - 0.05  # room for the colour bars
    text = FONT_SIZE
    # two lines per title: the coded and the likelihood bpp, each broken once, in both titles alike, where too wide
    lines = [
        [(f"{name}:", f"{meas.bpp:.3f} bpp coded") for name, meas in zip(names, comparison.measurements, strict=True)],
        [(f"{cap.bpp:.3f} bpp", "likelihoods") for cap in (a, b)],
    ]
    lines = [
        ["\n".join(pair) if max(text_width(" ".join(p), text) for p in kind) > panel + 0.1 else " ".join(pair) for pair in kind]
        for kind in lines
    ]
    labels = [f"{coded}\n{likelihoods}" for coded, likelihoods in zip(*lines, strict=True)]
    title_height = max(text_height(label, text) for label in labels)
    height = (1 if wide else 2) * (panel * H / W + title_height + 0.1) + 0.15
    fig = _new((fig_width, height))
    grid = fig.add_gridspec(1 if wide else 2, cols)
    places = [(0, 0), (0, 1), (0, 2), (0, 3)] if wide else [(1, 0), (0, 0), (0, 1), (1, 1)]
    axes = [fig.add_subplot(grid[r, c]) for r, c in places]
    axes[0].imshow(np.asarray(comparison.image), extent=(0, W, H, 0))
    _title(axes[0], f"image ({W}x{H})")
    vmax = max(float(m.max()) for m in maps) or 1.0
    for ax, label, m, cap in zip(axes[1:3], labels, maps, (a, b), strict=True):
        im = ax.imshow(m.numpy(), extent=_imshow_extent(cap.extent("y")), cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        _outline(ax, cap)
        _title(ax, label)
    _colorbar(fig, im, list(axes[1:3]), "latent bits per pixel")
    lim = float(diff.abs().max()) or 1.0
    im = axes[3].imshow(
        diff.numpy(),
        extent=_imshow_extent(a.extent("y")),
        cmap="RdBu_r",
        norm=TwoSlopeNorm(0.0, -lim, lim),
        interpolation="nearest",
    )
    _outline(axes[3], a)
    _title(axes[3], f"{names[1]} − {names[0]}")
    _colorbar(fig, im, axes[3], "bits per pixel")
    for ax in axes:
        ax.set_xlim(0, W)
        ax.set_ylim(H, 0)
        ax.set_xticks([])
        ax.set_yticks([])
    for name, m, cap in zip(names, maps, (a, b), strict=True):
        attach_data(fig, grid_table(m, "bits_per_pixel", cap.extent("y")), f"bits_{name}")
    attach_data(fig, grid_table(diff, f"bpp_{names[1]}_minus_{names[0]}", a.extent("y")), "difference")
    return fig


def draw_bits(capture: LatentCapture, coded_bpp: float | None = None, width: str | float = "double") -> Figure:
    """Where one model's bits go on one image: the latent's bits per pixel (all slices), each slice
    of the channel-wise context in coding order, and the hyper-latent z (a 64x64 cell's bits over
    its 4096 pixels), all aligned with the image (dashed: the image; outside it, its zero padding)
    and on one colour scale per row. The title gives the likelihood bpp (the maps' total) and,
    when given, the real bitstream's ``coded_bpp`` (:func:`gabic.measure`).

    The panels, each with its colour bar, go in rows of up to six, as many as leave each
    :data:`PANEL` inches (two on one column, default ``"double"``: the page)."""
    fig_width = figure_width(width)
    S = capture.num_slices
    panels = [("all slices", capture.bits_map.double() / 256.0, "y"), ("z", capture.z_map.double() / 4096.0, "z")]
    panels += [(f"slice {i}", capture.slice_bits[i].double() / 256.0, "y") for i in range(S)]
    cols = min(6, max(2, math.ceil(len(panels) / 2)), _per_row(fig_width, len(panels)))
    rows = math.ceil(len(panels) / cols)
    H, W = capture.image_size
    coded = f", {coded_bpp:.4f} bpp coded" if coded_bpp is not None else ""
    text = FONT_SIZE
    pieces = [f"{capture.model_name}:", f"{capture.bpp:.4f} bpp from the likelihoods{coded};", "bits per pixel"]
    title_height = text_height(fit_lines(pieces, fig_width - 0.2, text), text)
    panel = fig_width / cols - 0.65  # the image, beside its colour bar
    fig = _new((fig_width, rows * (panel * H / W + text_height("x", text) + 0.1) + title_height + 0.1))
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    slice_max = max(float(m.max()) for _, m, _ in panels[2:]) or 1.0
    for ax, (label, m, level) in zip(axes.flat, panels, strict=False):
        vmax = slice_max if label.startswith("slice") else (float(m.max()) or 1.0)
        im = ax.imshow(
            m.numpy(), extent=_imshow_extent(capture.extent(level)), cmap="magma", vmin=0, vmax=vmax, interpolation="nearest"
        )
        _outline(ax, capture)
        ax.set_xlim(0, W)
        ax.set_ylim(H, 0)
        ax.set_xticks([])
        ax.set_yticks([])
        share = 100 * float(m.sum()) * (256.0 if level == "y" else 4096.0) / max(capture.total_bits, 1e-12)
        _title(ax, f"{label} ({share:.0f}%)")
        _colorbar(fig, im, ax)
        attach_data(fig, grid_table(m, "bits_per_pixel", capture.extent(level)), label.replace(" ", "_"))
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    _suptitle(fig, pieces, fig_width)
    return fig


def draw_slice_bits(captures: Sequence[LatentCapture], names: Sequence[str] | None = None, width: str | float = "single") -> Figure:
    """The rate split over the slices of the channel-wise context and the hyper-latent z, in bpp,
    one group of bars per model: the first slices (coded with the least context) cost the most.
    Default ``width``: one column."""
    fig_width = figure_width(width)
    text, small = FONT_SIZE, LEGEND_FONT_SIZE
    names = list(names or [c.model_name for c in captures])
    fig = _new((fig_width, max(fig_width * 0.7, 2.2)))
    ax = fig.add_subplot()
    bar_width = 0.8 / max(len(captures), 1)
    rows = []
    for i, (name, cap) in enumerate(zip(names, captures, strict=True)):
        pixels = cap.image_size[0] * cap.image_size[1]
        per_slice = (cap.slice_bits.double().sum((1, 2)) / pixels).tolist()
        values = [*per_slice, cap.z_total / pixels]
        labels = [str(s) for s in range(len(per_slice))] + ["z"]
        x = np.arange(len(values)) + (i - (len(captures) - 1) / 2) * bar_width
        color = MODEL_COLORS[i % 2] if len(captures) <= 2 else f"C{i}"
        ax.bar(x, values, bar_width, label=f"{name} ({cap.bpp:.3f} bpp)", color=color)
        rows += [{"model": name, "part": lab, "bpp": v} for lab, v in zip(labels, values, strict=True)]
    n = max(c.num_slices for c in captures) + 1
    ax.set_xticks(range(n), [str(s) for s in range(n - 1)] + ["z"])
    ax.set_xlabel(fit_lines("latent slice (coding order) and hyper-latent".split(" "), fig_width - 0.6, text), fontsize=text)
    ax.set_ylabel("bpp", fontsize=text)
    _title(ax, "rate per slice (likelihoods)")
    ax.legend(fontsize=small)
    _small(ax)
    attach_data(fig, rows, "slice_bits")
    return fig


def draw_tile_scatter(comparison: ModelComparison, width: str | float = "double") -> Figure:
    """Per tile, against its texture (:func:`~gabic.analysis.compare.gradient_energy`, log scale):
    left, the difference in bpp (second minus first model; below zero the second spends fewer
    bits); right, the difference in PSNR (above zero the second is better). A tile in the lower
    left panel's negative half and the right panel's positive half is one where the second model
    wins on both counts. On a figure narrower than :data:`~gabic.reconstructions.WIDE_LAYOUT`
    inches (one column) the PSNR panel goes below the bpp panel; default ``width``: the page."""
    fig_width = figure_width(width)
    text = FONT_SIZE
    a, b = comparison.names
    wide = fig_width >= WIDE_LAYOUT
    panel = (fig_width - 0.8) / (2 if wide else 1) - 0.5  # the plot, beside the colour bar and its y-axis labels
    share = comparison.summary()["share_tiles_b_fewer_bits"]
    titles = [
        fit_lines([f"{comparison.tile}x{comparison.tile}-pixel", "tiles of the image"], panel, text),
        fit_lines([f"{b} spends fewer bits", f"on {100 * share:.0f}% of the tiles"], panel, text),
    ]
    title_height = max(text_height(t, text) for t in titles)
    fig = _new((fig_width, fig_width * 0.3 + title_height if wide else 2 * (1.5 + title_height + 0.45)))
    left, right = fig.subplots(1, 2) if wide else fig.subplots(2, 1)
    energy = comparison.column("gradient_energy")
    x = np.maximum(energy, 1e-3)  # a flat tile drawn at the left edge of the log axis
    for ax, col, label, title in zip(
        (left, right), ("delta_bpp", "delta_psnr"), (f"bpp {b} − {a}", f"PSNR {b} − {a} (dB)"), titles, strict=True
    ):
        y = comparison.column(col)
        ok = np.isfinite(y)
        points = ax.scatter(x[ok], y[ok], s=9, c=comparison.column("bpp_a")[ok], cmap="viridis", edgecolors="none")
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xscale("log")
        log_ticks(ax.xaxis, x[ok])
        ax.set_xlabel(fit_lines("texture: mean squared luma gradient".split(" "), panel, text), fontsize=text)
        ax.set_ylabel(label, fontsize=text)
        _title(ax, title)
        _small(ax)
    _colorbar(fig, points, [left, right], f"{a}'s bpp in the tile")
    attach_data(fig, comparison.tiles, "tiles")
    return fig


def draw_residual_correlation(correlations: Mapping[str, Tensor], width: str | float | None = None) -> Figure:
    """The spatial correlation of each model's normalised latent residual ``(y - mu) / sigma``
    at offsets up to ``max_offset`` (:func:`~gabic.analysis.latent.residual_correlation`); a
    well-fitted entropy model leaves the off-centre values near zero. Values written in the cells.

    As many matrices go side by side as leave each cell room for its value (the others below);
    ``width`` default None: all side by side, each as large as its values need (about 2.1 in for
    offsets up to 2), beside the colour bar."""
    text, small = FONT_SIZE, LEGEND_FONT_SIZE
    count = max(1, len(correlations))
    side = max((c.shape[0] for c in correlations.values()), default=5)
    cell = text_width("-0.00", small) + 0.08  # a cell holds its value
    panel = side * cell + 0.45  # the matrix, its tick labels and dy label
    fig_width = count * panel + 0.8 if width is None else figure_width(width)
    cols = max(1, min(count, int((fig_width - 0.8) // panel)))
    rows = math.ceil(count / cols)
    matrix = min((fig_width - 0.8) / cols - 0.45, max(side * cell, 1.2), 2.6)  # the matrix's side in inches
    fig = _new((fig_width, rows * (matrix + 0.75)))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).reshape(-1))
    for ax in axes[count:]:
        fig.delaxes(ax)
    rows_out = []
    im = None
    for ax, (name, corr) in zip(axes, correlations.items(), strict=False):
        c = corr.double().numpy()
        r = (c.shape[0] - 1) // 2
        im = ax.imshow(c, cmap="RdBu_r", vmin=-1, vmax=1, extent=(-r - 0.5, r + 0.5, r + 0.5, -r - 0.5))
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                v = c[dy + r, dx + r]
                ax.text(dx, dy, f"{v:.2f}", ha="center", va="center", fontsize=small, color="white" if abs(v) > 0.6 else "black")
                rows_out.append({"model": name, "dy": dy, "dx": dx, "correlation": float(v)})
        _title(ax, name)
        ax.set_xlabel("dx (latent positions)", fontsize=text)
        ax.set_ylabel("dy", fontsize=text)
        ax.set_xticks(range(-r, r + 1))
        ax.set_yticks(range(-r, r + 1))
        _small(ax)
    if im is not None:
        _colorbar(fig, im, list(axes[:count]), "correlation of (ŷ−μ)/σ")
    attach_data(fig, rows_out, "residual_correlation")
    return fig


def _finite(values: Any) -> np.ndarray:
    a = values.detach().double().cpu().numpy().reshape(-1) if hasattr(values, "detach") else np.asarray(values, dtype=np.float64)
    return a[np.isfinite(a)]


def _violin(ax: Axes, groups: list[tuple[str, np.ndarray, str]], positions: Sequence[float] | None = None) -> None:
    """Violins (with medians) of each group's finite values at ``positions`` (default 0, 1, ...),
    labelled by the groups' names; a group of one value is a dot, an empty one says "none"."""
    positions = list(range(len(groups))) if positions is None else list(positions)
    for pos, (_, values, color) in zip(positions, groups, strict=True):
        if values.size > 1 and np.ptp(values) > 0:
            parts = ax.violinplot(values, positions=[pos], widths=0.8, showmedians=True, showextrema=False)
            for body in parts["bodies"]:
                body.set_facecolor(color)
                body.set_alpha(0.6)
            parts["cmedians"].set_color("black")
        elif values.size:
            ax.plot([pos], [values[0]], "o", color=color, ms=3)
        else:
            ax.text(pos, 0.5, "none", ha="center", transform=ax.get_xaxis_transform(), fontsize=LEGEND_FONT_SIZE)
    ax.set_xticks(positions, [g[0] for g in groups], fontsize=LEGEND_FONT_SIZE)


def _model_legend(fig: Figure, names: Sequence[str]) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=MODEL_COLORS[i % 2], alpha=0.6, label=name) for i, name in enumerate(names)]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), fontsize=LEGEND_FONT_SIZE, frameon=False)


def draw_redundancy(redundancy: Mapping[str, Mapping[str, Mapping[str, Any]]], width: str | float = "double") -> Figure:
    """Feature redundancy before and after each attention block, per model.

    ``redundancy`` is ``{block: {model: block_redundancy(...)}}`` (see
    :func:`gabic.analysis.redundancy.block_redundancy`: per-window mean pairwise cosine and
    effective rank of the tokens entering and leaving the block). Top row: cosine (lower: less
    redundant); bottom row: effective rank (higher: less redundant); one column per block,
    violins over the windows of the image ("in": the tokens entering the block, "out": leaving it).
    As many blocks go side by side as leave each :data:`PANEL` inches (default ``"double"``, the
    page: four; one column: two), the others in the rows below, a pair of rows per group."""
    fig_width = figure_width(width)
    text = FONT_SIZE
    blocks = list(redundancy)
    per_row = _per_row(fig_width, max(1, len(blocks)))
    groups_count = max(1, math.ceil(len(blocks) / per_row))
    measures = (("cosine", "mean pairwise cosine"), ("rank", "effective rank"))
    fig = _new((fig_width, 3.6 if groups_count == 1 else 0.35 + groups_count * len(measures) * 1.35))
    axes = np.array(fig.subplots(groups_count * len(measures), per_row, squeeze=False))
    rows = []
    for b, block in enumerate(blocks):
        per_model = redundancy[block]
        group, col = divmod(b, per_row)
        for m_row, (measure, label) in enumerate(measures):
            groups, positions = [], []
            for i, (model, stats) in enumerate(per_model.items()):
                for m, when in enumerate(("in", "out")):
                    values = _finite(stats[f"{measure}_{when}"])
                    groups.append((when, values, MODEL_COLORS[i % 2]))
                    positions.append(2.5 * i + m)
                    rows += [
                        {"block": block, "model": model, "measure": measure, "where": when, "window": j, "value": float(v)}
                        for j, v in enumerate(np.asarray(stats[f"{measure}_{when}"], dtype=np.float64).reshape(-1))
                        if np.isfinite(v)
                    ]
            ax = axes[group * len(measures) + m_row, col]
            _violin(ax, groups, positions)
            if m_row == 0:
                _title(ax, block.removesuffix(".conv_b.0"))
            if col == 0:
                ax.set_ylabel(fit_lines(label.split(" "), 1.1, text), fontsize=text)  # no taller than the panel
            _small(ax)
    for ax in axes.flat:
        if not ax.has_data() and not ax.texts:
            ax.set_visible(False)
    _model_legend(fig, list(next(iter(redundancy.values()), {})))
    attach_data(fig, rows, "redundancy")
    return fig


def draw_attention_comparison(
    comparisons: Mapping[str, Mapping[str, Any]], names: Mapping[str, str] | None = None, width: str | float = "double"
) -> Figure:
    """Attention compared per block (``{block: attention_comparison(...)}``, see
    :func:`gabic.analysis.attention.attention_comparison`), violins over the image's valid nodes
    and heads: the share of each node's attention on other nodes that falls on its k
    feature-space nearest neighbours (dashed: ``k/(n-1)``, a uniform row; the graph's is 1 by
    construction), the attention-weighted spatial distance (node units) and the attention
    entropy (nats; dashed: ``log k`` and ``log n``, the uniform maxima of graph and window).

    Args:
        comparisons: ``{block name: attention_comparison(graph_block, window_block)}``.
        names: labels of the two kinds, default ``{"graph": "GABIC", "window": "WACNN"}``.
        width: ``"double"`` (default, the page: four blocks side by side), ``"single"`` (one
            column: two, the others in the rows below, three rows per group) or inches.
    """
    fig_width = figure_width(width)
    text = FONT_SIZE
    names = {"graph": "GABIC", "window": "WACNN"} | dict(names or {})
    blocks = list(comparisons)
    per_row = _per_row(fig_width, max(1, len(blocks)))
    groups_count = max(1, math.ceil(len(blocks) / per_row))
    measures = (
        ("knn_share", "attention on the kNN set"),
        ("weighted_distance", "weighted distance (nodes)"),
        ("entropy", "entropy (nats)"),
    )
    fig = _new((fig_width, 5.0 if groups_count == 1 else 0.2 + groups_count * len(measures) * 1.35))
    axes = np.array(fig.subplots(groups_count * len(measures), per_row, squeeze=False))
    rows = []
    for b, block in enumerate(blocks):
        comp = comparisons[block]
        group, col = divmod(b, per_row)
        for m_row, (key, label) in enumerate(measures):
            groups = []
            for i, kind in enumerate(("graph", "window")):
                per_head = comp[kind][key]  # (heads, valid nodes)
                groups.append((names[kind], _finite(per_head), MODEL_COLORS[i]))
                for h, head_values in enumerate(per_head):
                    v = _finite(head_values)
                    rows.append(
                        {
                            "block": block,
                            "model": names[kind],
                            "measure": key,
                            "head": h,
                            "mean": float(v.mean()) if v.size else math.nan,
                            "median": float(np.median(v)) if v.size else math.nan,
                            "nodes": int(v.size),
                        }
                    )
            ax = axes[group * len(measures) + m_row, col]
            _violin(ax, groups)
            if key == "entropy":
                for i, kind in enumerate(("graph", "window")):
                    ax.axhline(comp[kind]["entropy_max"], color=MODEL_COLORS[i], ls="--", lw=0.6)
            if key == "knn_share":
                ax.axhline(comp["window"]["uniform_share"], color="gray", ls="--", lw=0.6)
                ax.set_ylim(0, 1.05)
            if m_row == 0:
                _title(ax, f"{block.removesuffix('.conv_b.0')} (k={comp['k']})")
            if col == 0:
                ax.set_ylabel(fit_lines(label.split(" "), 1.1, text), fontsize=text)  # no taller than the panel
            _small(ax)
    for ax in axes.flat:
        if not ax.has_data() and not ax.texts:
            ax.set_visible(False)
    attach_data(fig, rows, "attention_per_head")
    return fig


def _block_extent(block: BlockCapture) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` in original-image pixels of a block's feature map."""
    (H, W), s, (top, left) = block.resolution, block.scale, block.offset
    return -top, -left, H * s - top, W * s - left


def attention_maps(
    comparison: Mapping[str, Any], blocks: Mapping[str, BlockCapture], head: int | str = "mean"
) -> dict[str, dict[str, Tensor]]:
    """The per-node measures of an :func:`~gabic.analysis.attention.attention_comparison` as maps
    over each block's feature map: ``{kind: {measure: (H, W)}}`` for one ``head`` or the mean over
    heads (NaN-aware; padding nodes cropped). ``blocks`` maps ``"graph"``/``"window"`` to the
    two captured blocks the comparison was made of."""
    out: dict[str, dict[str, Tensor]] = {}
    for kind in ("graph", "window"):
        block, per_node = blocks[kind], comparison[kind]["per_node"]
        check_int(head, "head", 0, block.heads - 1, also=("mean",), detail=f" for block {block.name}")
        maps = {}
        for measure, values in per_node.items():  # (nW, heads, n)
            v = values.nanmean(1) if head == "mean" else values[:, head]
            maps[measure] = node_map(block, v)
        out[kind] = maps
    return out


def draw_attention_maps(
    comparison: Mapping[str, Any],
    blocks: Mapping[str, BlockCapture],
    head: int | str = "mean",
    names: Mapping[str, str] | None = None,
    width: str | float = "double",
) -> Figure:
    """Attention compared as maps over the image, for one block pair and one head (or the mean):
    GABIC (graph) and WACNN (window) against the share of attention on the kNN set, the
    attention-weighted distance (node units) and the entropy (nats), one value per node of the
    block's feature map, drawn over the image's pixels (dashed: the image; outside: its zero
    padding). See :func:`attention_maps`.

    On a figure :data:`~gabic.reconstructions.WIDE_LAYOUT` inches wide or more (default
    ``"double"``: the page), one row per model and one column per measure, a colour bar under each
    column; on a narrower one (one column), one row per measure and one column per model, a colour
    bar beside each row."""
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    fig_width = figure_width(width)
    text = FONT_SIZE
    names = {"graph": "GABIC", "window": "WACNN"} | dict(names or {})
    maps = attention_maps(comparison, blocks, head)
    measures = (
        ("knn_share", "share on kNN set", "viridis"),
        ("weighted_distance", "weighted distance", "magma"),
        ("entropy", "entropy (nats)", "cividis"),
    )
    any_block = blocks["graph"]
    H, W = any_block.image_size
    wide = fig_width >= WIDE_LAYOUT
    if wide:  # rows: the models; columns: the measures; then the titles, colour bars and figure title
        panel = (fig_width - 0.3) / 3 - 0.1
        height = 2 * (panel * H / W + 0.1) + 0.3 + 0.55 + 0.3
    else:  # rows: the measures; columns: the models
        panel = (fig_width - 0.9 - 0.3) / 2 - 0.1
        height = 3 * (panel * H / W + 0.1) + 0.3 + 0.3
    fig = _new((fig_width, height))
    axes = np.array(fig.subplots(2, 3, squeeze=False) if wide else fig.subplots(3, 2, squeeze=False).T)  # [model, measure]
    for col, (measure, label, cmap) in enumerate(measures):
        values = [maps[kind][measure] for kind in ("graph", "window")]
        finite = torch.cat([v[torch.isfinite(v)].reshape(-1) for v in values])
        lo, hi = (float(finite.min()), float(finite.max())) if finite.numel() else (0.0, 1.0)
        if measure == "knn_share":
            lo, hi = 0.0, 1.0
        for row, kind in enumerate(("graph", "window")):
            ax = axes[row, col]
            block = blocks[kind]
            im = ax.imshow(
                values[row].numpy(), extent=_imshow_extent(_block_extent(block)), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest"
            )
            ax.add_patch(Rectangle((0, 0), W, H, fill=False, ls="--", lw=0.7, ec="white"))
            ax.set_xticks([])
            ax.set_yticks([])
            if (row if wide else col) == 0:  # the top row: titled by its column
                _title(ax, label if wide else names[kind])
            if (col if wide else row) == 0:  # the left column: labelled by its row
                ax.set_ylabel(names[kind] if wide else fit_lines(label.split(" "), panel * H / W, text), fontsize=text)
            attach_data(fig, grid_table(values[row], measure, _block_extent(block)), f"{names[kind]}_{measure}")
        bar = _colorbar(fig, im, list(axes[:, col]), location="bottom" if wide else "right")
        bar.locator = MaxNLocator(nbins=4)  # labels that stay apart under a narrow column
        bar.update_ticks()
    name = any_block.name.removesuffix(".conv_b.0")
    _suptitle(fig, [f"{name},", f"head {head},", f"k={comparison['k']}"], fig_width)
    return fig


def _neighbour_correlation(matrix: Sequence[Sequence[float]]) -> float:
    """Mean absolute correlation at the 8 offsets around the centre of a ``(2m+1)^2`` matrix."""
    c = np.asarray(matrix, dtype=np.float64)
    r = (c.shape[0] - 1) // 2
    ring = c[r - 1 : r + 2, r - 1 : r + 2].copy()
    ring[1, 1] = np.nan
    return float(np.nanmean(np.abs(ring)))


def _per_block(report: Mapping[str, Any], section: str, measure: str) -> tuple[list[str], dict[str, list[float]]]:
    """``(blocks, {role: [mean over pairs and images of section[block][role][measure]]})``."""
    blocks: list[str] = []
    values: dict[str, dict[str, list[float]]] = {r: {} for r in ROLES}
    for pair in report["pairs"]:
        for analysis in pair["images"].values():
            for block, per_model in analysis[section].items():
                if block not in blocks:
                    blocks.append(block)
                for r in ROLES:
                    v = per_model.get(r, {}).get(measure)
                    values[r].setdefault(block, []).append(math.nan if v is None else float(v))
    return blocks, {r: [_nanmean(values[r].get(b, [])) for b in blocks] for r in ROLES}


def _nanmean(values: Sequence[float]) -> float:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else math.nan


def draw_report(report: Mapping[str, Any], width: str | float = "double") -> Figure:
    """The figure sheet of a :func:`~gabic.analysis.report.compare_report`: (a) both RD curves with
    the BD-rate; (b) per-tile rate difference against texture, all images of all pairs; (c) the
    latent residual's mean absolute correlation with its 8 neighbours, per rate pair; (d) mean
    pairwise cosine and (e) effective rank of each block's tokens, entering (hollow) and leaving
    (filled) the block; (f) the share of attention on the kNN set per block (dashed: a uniform
    row's ``k/(n-1)``). Means over the images (and pairs) of the report; its per-model entries are
    keyed by role (:data:`~gabic.analysis.compare.ROLES`), its labels under ``names``.

    On a figure :data:`~gabic.reconstructions.WIDE_LAYOUT` inches wide or more (default
    ``"double"``: the page) the six panels go in two rows of three, legends in the panels; on a
    narrower one (one column) in three rows of two, one legend under them."""
    fig_width = figure_width(width)
    text, small = FONT_SIZE, LEGEND_FONT_SIZE
    names = report["names"]  # {role: label}
    colors = dict(zip(ROLES, MODEL_COLORS, strict=True))
    wide = fig_width >= WIDE_LAYOUT
    cols = 3 if wide else 2
    panel = fig_width / cols - 0.6  # the plot, beside its y-axis labels: its title and x label are centred on it
    fig = _new((fig_width, fig_width * 0.62 if wide else 3 * 1.9 + 0.75))
    axes = np.array(fig.subplots(2, 3) if wide else fig.subplots(3, 2)).reshape(-1)
    # (a) RD
    ax = axes[0]
    rd_rows = []
    for role, curve in zip(ROLES, report["curves"], strict=True):
        bpp, psnr = curve["results"]["bpp"], curve["results"]["psnr-rgb"]
        ax.plot(bpp, psnr, "o-", ms=3, color=colors[role], label=names[role])
        rd_rows += [{"model": names[role], "bpp": b, "psnr_db": p} for b, p in zip(bpp, psnr, strict=True)]
    bd = report["bd"]
    what = f"{bd['bd_rate']:+.2f} %" if bd["bd_rate"] is not None else "n/a (one rate point)" if len(rd_rows) <= 2 else "n/a"
    _title(ax, ["(a) RD;", f"BD-rate of {names['first']}: {what}"], panel)
    ax.set_xlabel("bpp", fontsize=text)
    ax.set_ylabel("PSNR (dB)", fontsize=text)
    if wide:
        ax.legend(fontsize=small)
    attach_data(fig, rd_rows, "rd")
    # (b) tiles
    ax = axes[1]
    tiles = [
        dict(t, pair=p, image=img) for p, pair in enumerate(report["pairs"]) for img, a in pair["images"].items() for t in a["tiles"]
    ]
    x = np.array([t["gradient_energy"] if t["gradient_energy"] is not None else np.nan for t in tiles], dtype=np.float64)
    y = np.array([t["delta_bpp"] if t["delta_bpp"] is not None else np.nan for t in tiles], dtype=np.float64)
    ax.scatter(np.maximum(x, 1e-3), y, s=5, color="gray", edgecolors="none")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xscale("log")
    log_ticks(ax.xaxis, np.maximum(x, 1e-3)[np.isfinite(y)])
    ax.set_xlabel(fit_lines("tile texture (mean squared luma gradient)".split(" "), panel, text), fontsize=text)
    ax.set_ylabel(f"bpp {names['second']} − {names['first']}", fontsize=text)
    _title(ax, f"(b) {len(tiles)} tiles")
    attach_data(fig, tiles, "tiles")
    # (c) residual correlation
    ax = axes[2]
    corr_rows = []
    for i, pair in enumerate(report["pairs"]):
        for role in ROLES:
            values = [_neighbour_correlation(a["residual_correlation"][role]) for a in pair["images"].values()]
            corr_rows.append({"pair": i, "model": names[role], "mean_abs_neighbour_correlation": float(np.mean(values))})
    bar_width = 0.8 / len(ROLES)
    for j, role in enumerate(ROLES):
        rows = [r for r in corr_rows if r["model"] == names[role]]
        ax.bar(
            np.arange(len(rows)) + (j - 0.5) * bar_width,
            [r["mean_abs_neighbour_correlation"] for r in rows],
            bar_width,
            color=colors[role],
            label=names[role],
        )
    ax.set_xticks(range(len(report["pairs"])), [f"pair {i + 1}" for i in range(len(report["pairs"]))])
    ax.set_ylabel(fit_lines(["mean |ρ| at", "the 8 neighbours"], 1.5, text), fontsize=text)
    _title(ax, ["(c) residual", "(ŷ−μ)/σ correlation"], panel)
    attach_data(fig, corr_rows, "residual_correlation")
    # (d), (e) redundancy; (f) attention
    for ax, (section, measure_in, measure_out, label, tag) in zip(
        axes[3:],
        (
            ("redundancy", "cosine_in", "cosine_out", "mean pairwise cosine", "(d)"),
            ("redundancy", "rank_in", "rank_out", "effective rank", "(e)"),
            ("attention", None, "knn_share", "attention on the kNN set", "(f)"),
        ),
        strict=True,
    ):
        rows = []
        blocks, outs = _per_block(report, section, measure_out)
        ins = _per_block(report, section, measure_in)[1] if measure_in else None
        for j, role in enumerate(ROLES):
            n = names[role]
            xs = np.arange(len(blocks)) + (j - 0.5) * 0.3
            ax.plot(xs, outs[role], "o", color=colors[role], ms=4, label=n if measure_in is None else f"{n} out")
            if ins is not None:
                ax.plot(xs, ins[role], "o", mfc="none", mec=colors[role], ms=4, label=f"{n} in")
                for xv, a, b in zip(xs, ins[role], outs[role], strict=True):
                    ax.plot([xv, xv], [a, b], color=colors[role], lw=0.6)
            for b, v in enumerate(outs[role]):
                row = {"block": blocks[b], "model": n, measure_out: v}
                if ins is not None:
                    row[measure_in] = ins[role][b]
                rows.append(row)
        if section == "attention" and report["pairs"]:
            first = next(iter(report["pairs"][0]["images"].values()))["attention"]
            for b, block in enumerate(blocks):
                share = first[block]["second"]["uniform_share"] if "second" in first[block] else None
                if share is not None:
                    ax.plot([b - 0.4, b + 0.4], [share, share], "--", color="gray", lw=0.7)
            ax.set_ylim(0, 1.05)
        ticks = [b.removesuffix(".conv_b.0") for b in blocks]
        ax.set_xticks(range(len(blocks)), ticks)
        if len(ticks) * (max((text_width(t, small) for t in ticks), default=0.0) + 0.1) > panel:
            ax.tick_params(axis="x", labelrotation=90)  # too many block names to stand side by side
        _title(ax, [tag, *label.split(" ")], panel)
        if wide:
            ax.legend(fontsize=small, ncols=1 if measure_in is None else 2, handlelength=1.0, columnspacing=0.8)
        attach_data(fig, rows, section if section == "attention" else measure_out.split("_")[0])
    for ax in axes:
        _small(ax)
    if not wide:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=colors[role], marker="o", ms=3, label=names[role]) for role in ROLES]
        handles += [
            Line2D([], [], ls="none", marker="o", ms=4, color="gray", label="(d), (e): leaving the block"),
            Line2D([], [], ls="none", marker="o", ms=4, mfc="none", mec="gray", label="entering it"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=small, frameon=False)
    image_set = report.get("meta", {}).get("image_set")
    images = describe(image_set) if image_set else "the images"
    _suptitle(fig, [f"{names['first']}", "against", f"{names['second']}:", images], fig_width)
    return fig
