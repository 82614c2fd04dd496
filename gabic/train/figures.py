"""The figure of a training run: loss, bpp and PSNR against the step, of the training batches
and of the validations on the held-out images.

:func:`training_figure` draws a new :class:`matplotlib.figure.Figure` each call (no pyplot
state), cheap enough to redraw live from a :func:`gabic.train.fit` callback: show it with
``handle = IPython.display.display(fig, display_id=True)`` and replace it with
``handle.update(training_figure(...))``. The numbers it plots are attached to it
(:mod:`gabic.figure_data`), so :func:`gabic.plots.save_figure` writes them beside it as CSV.
matplotlib (the ``plots`` extra) is imported when drawing: training needs none of it.

Type is set in points, as in the RD figures (:data:`gabic.plots.FONT_SIZE` for titles and axis
labels, :data:`gabic.plots.LEGEND_FONT_SIZE`, 7 pt, for tick labels and the legend): drawn at the
width it is printed at (``width="single"`` or ``"double"``), the figure keeps it at 7 pt or more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from gabic.figure_data import attach_data
from gabic.figure_layout import FONT_SIZE, LEGEND_FONT_SIZE, WIDE_LAYOUT, figure_width, fit_lines, log_ticks, text_height

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["TRAINING_PANELS", "draw_training", "training_figure"]

#: The panels of :func:`training_figure`: (key of a history row, panel title, column in the data).
TRAINING_PANELS: tuple[tuple[str, str, str], ...] = (
    ("loss", "loss (λ·255²·MSE + bpp)", "loss"),
    ("bpp", "bpp", "bpp"),
    ("psnr", "PSNR (dB)", "psnr_db"),
)


def _check_rows(rows: Sequence[Mapping[str, Any]], name: str) -> None:
    for i, row in enumerate(rows):
        missing = [k for k in ("step", *(key for key, _, _ in TRAINING_PANELS)) if k not in row]
        if missing:
            raise ValueError(f"{name}[{i}] has no {', '.join(missing)} (expected the rows of fit()'s history)")


def draw_training(axes: Sequence[Axes], train: Sequence[Mapping[str, Any]], val: Sequence[Mapping[str, Any]] = ()) -> None:
    """Draw loss, bpp and PSNR against the step into three ``axes`` (cleared first): the training
    batches as a thin line, the validations as dots joined by a line; loss on a log scale. Titles
    and axis labels in :data:`gabic.plots.FONT_SIZE`, tick labels and the legend in
    :data:`gabic.plots.LEGEND_FONT_SIZE` (points)."""
    from matplotlib.ticker import MaxNLocator

    _check_rows(train, "train")
    _check_rows(val, "val")
    if len(axes) != len(TRAINING_PANELS):
        raise ValueError(f"draw_training needs {len(TRAINING_PANELS)} axes, got {len(axes)}")
    for ax, (key, title, _) in zip(axes, TRAINING_PANELS, strict=True):
        ax.clear()
        ax.plot([r["step"] for r in train], [r[key] for r in train], lw=0.8, label="training crops")
        if val:
            ax.plot([r["step"] for r in val], [r[key] for r in val], "o-", ms=4, label="held-out images")
        if key == "loss" and train:
            ax.set_yscale("log")
            log_ticks(ax.yaxis, [r[key] for r in (*train, *val)])  # labels that stay apart on a narrow panel
        ax.set_xlabel("step", fontsize=FONT_SIZE)
        ax.set_title(title, fontsize=FONT_SIZE)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))  # steps are whole; five labels fit a narrow panel
        ax.tick_params(which="both", labelsize=LEGEND_FONT_SIZE)
    if train or val:
        axes[0].legend(fontsize=LEGEND_FONT_SIZE)


def training_figure(
    train: Sequence[Mapping[str, Any]],
    val: Sequence[Mapping[str, Any]] = (),
    title: str | None = None,
    width: str | float = 13.0,
) -> Figure:
    """Loss, bpp and PSNR of a training run against the step (:func:`draw_training`): side by side
    on a figure :data:`~gabic.reconstructions.WIDE_LAYOUT` inches (5) wide or more, one above the
    other on a narrower one (one column).

    Args:
        train: the training rows of :func:`gabic.train.fit` (``history["train"]`` or the rows its
            ``callback`` got): dicts with ``step``, ``loss``, ``bpp``, ``psnr``.
        val: the validation rows (``history["val"]``), the same keys; default none.
        title: the figure's title (e.g. the run and its step); default none.
        width: figure width: ``"single"`` (one column, 3.5 in), ``"double"`` (7.16 in) or inches
            (default 13); side by side, the height is a quarter of the width (at least 2 in), one
            above the other 1.5 in per panel.

    Returns:
        A new figure. Its data (:func:`gabic.figure_data.figure_data`) is one long table
        ``split`` (``"train"`` or ``"validation"``), ``step``, ``loss``, ``bpp``, ``psnr_db``.

    Raises:
        ValueError: a row lacks one of those keys, or a bad width.
    """
    from matplotlib.figure import Figure

    fig_width = figure_width(width)
    wide = fig_width >= WIDE_LAYOUT
    n = len(TRAINING_PANELS)
    height = max(fig_width / 4, 2.0) if wide else 1.5 * n
    if title:
        title = fit_lines(title.split(" "), fig_width - 0.2, FONT_SIZE + 1)
        height += text_height(title, FONT_SIZE + 1)
    fig = Figure(figsize=(fig_width, height), layout="constrained")
    axes = fig.subplots(1, n) if wide else fig.subplots(n, 1)
    draw_training(axes, train, val)
    if title:
        fig.suptitle(title, fontsize=FONT_SIZE + 1)
    rows = [
        {"split": split, "step": r["step"], **{column: r[key] for key, _, column in TRAINING_PANELS}}
        for split, part in (("train", train), ("validation", val))
        for r in part
    ]
    attach_data(fig, rows or {"split": [], "step": [], **{column: [] for _, _, column in TRAINING_PANELS}}, name="training")
    return fig
