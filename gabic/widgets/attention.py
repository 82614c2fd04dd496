"""An ipywidgets explorer of the kNN graph attention: block, window, node, head and k.

``attention_explorer(model, image)`` captures the model's attention blocks on the image
(:func:`gabic.viz.capture`) and shows, side by side, the image with the block's window grid
(selected window in red, query node filled, its neighbours dotted), the window enlarged with
arrows weighted by attention (:func:`gabic.viz.draw_window`) and the window's attention matrix;
each block opens on its most informative node (:func:`gabic.viz.informative_node`).
The k slider rebuilds the selected block's graph with another k on the same weights
(:func:`gabic.viz.rebuild`). The figure is rendered to PNG bytes in an ``ipywidgets.Image``
(``explorer.image.value``) of :data:`FIGURE_SIZE` at :data:`DPI`, shown at the PNG's own size in
CSS pixels: never stretched, nor squeezed to the output's width as ipywidgets' own CSS would
(``max-width: 100%``); a narrower output area scrolls instead (JupyterLab's ``overflow: auto``).
A window and node can also be picked by pixel with :meth:`AttentionExplorer.select_at`, or by
clicking on the left panel when ``ipyevents`` is installed.
"""

from __future__ import annotations

import logging
from typing import Any

import torch.nn as nn

try:
    import ipywidgets as widgets
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("gabic.widgets.attention needs ipywidgets: pip install 'gabic[notebooks]' (or ipywidgets)") from err

from gabic import viz
from gabic.widgets._base import Redraws, figure_png, show_png

__all__ = ["AttentionExplorer", "attention_explorer"]

log = logging.getLogger(__name__)

#: The explorer's figure (inches) and its resolution (dots per inch, one dot per CSS pixel): a PNG
#: of 840 x 440 px shown at that size. 840 px fits JupyterLab's output area in a 1280 px wide
#: browser window with the file browser open (848 px, measured in Chromium), and the smallest text
#: of the drawings, :data:`gabic.viz.drawing.MIN_FONT_SIZE` (7 pt), is 7 * 100 / 72 = 9.7 px high,
#: titles (8 pt) 11 px.
FIGURE_SIZE = (8.4, 4.4)
DPI = 100
#: Widths of the explorer's three panels: the window grid, the enlarged window (the widest: its
#: arrows and labels need the room), the attention matrix.
PANEL_WIDTHS = (1.0, 1.3, 1.15)


class AttentionExplorer(Redraws, widgets.VBox):
    """The explorer's container; its controls and output are attributes.

    Attributes:
        block: Dropdown of the block names.
        window_row, window_col: IntSliders of the window in the block's window grid.
        node_row, node_col: IntSliders of the centre node inside the window.
        head: Dropdown, ``"mean"`` or a head index.
        k: IntSlider of k, the number of neighbours per node (graph blocks; rebuilds the graph on the same weights).
        image: ``ipywidgets.Image`` holding the PNG of the current figure.
        info: HTML line describing the selection.
        capture: the :class:`~gabic.viz.AttentionCapture` shown.
    """

    def __init__(self, model: nn.Module, capture: viz.AttentionCapture, dpi: int = DPI):
        self.model, self.capture, self.dpi = model, capture, dpi
        self._rebuilt: dict[tuple[str, int], viz.BlockCapture] = {}
        first = capture[capture.names()[0]]
        style = {"description_width": "initial"}
        self.block = widgets.Dropdown(
            options=[(n.removesuffix(".conv_b.0"), n) for n in capture.names()], value=first.name, description="block"
        )
        self.head = widgets.Dropdown(options=["mean"], value="mean", description="head")
        self.k = widgets.IntSlider(value=1, min=1, max=2, description="k", continuous_update=False, style=style)
        self.window_row = widgets.IntSlider(min=0, max=1, description="window row", continuous_update=False, style=style)
        self.window_col = widgets.IntSlider(min=0, max=1, description="window col", continuous_update=False, style=style)
        self.node_row = widgets.IntSlider(min=0, max=1, description="node row", continuous_update=False, style=style)
        self.node_col = widgets.IntSlider(min=0, max=1, description="node col", continuous_update=False, style=style)
        self.image = widgets.Image(format="png")
        self.info = widgets.HTML()
        controls = [self.block, self.head, self.k, self.window_row, self.window_col, self.node_row, self.node_col]
        wrap = {"flex_flow": "row wrap"}  # the sliders go on a second line rather than past the output's edge
        rows = [widgets.HBox(controls[:3], layout=wrap), widgets.HBox(controls[3:], layout=wrap)]
        super().__init__([*rows, self.info, self.image])
        self._configure(first)
        self.block.observe(self._on_block, names="value")
        for w in controls[1:]:
            w.observe(self._on_change, names="value")
        self._attach_click()
        self.render()

    # ------------------------------------------------------------------ selection
    def current_block(self) -> viz.BlockCapture:
        """The selected block, rebuilt with the k of the slider when it differs from the captured k."""
        base = self.capture[self.block.value]
        if base.kind != "graph" or self.k.value == base.knn:
            return base
        key = (base.name, self.k.value)
        if key not in self._rebuilt:
            self._rebuilt[key] = viz.rebuild(base, self.model, self.k.value)
        return self._rebuilt[key]

    def selection(self) -> tuple[int, int, Any]:
        """``(window, node, head)`` of the controls."""
        base = self.capture[self.block.value]
        ws = base.window_size
        window = self.window_row.value * base.grid[1] + self.window_col.value
        return window, self.node_row.value * ws + self.node_col.value, self.head.value

    def select_at(self, y: int, x: int) -> None:
        """Select the window and node whose patch holds pixel ``(y, x)`` of the original image."""
        base = self.capture[self.block.value]
        window, node = viz.pixel_to_node(base, int(y), int(x))
        with self.quietly():
            self.window_row.value, self.window_col.value = divmod(window, base.grid[1])
            self.node_row.value, self.node_col.value = divmod(node, base.window_size)
        self.redraw()

    # ------------------------------------------------------------------ events
    def _configure(self, block: viz.BlockCapture) -> None:
        """Set the ranges of the controls for ``block``; select its most informative node (:func:`gabic.viz.informative_node`)."""
        nWh, nWw = block.grid
        ws = block.window_size
        window, node = viz.informative_node(block)
        self.head.options = ["mean", *range(block.heads)]
        self.head.value = "mean"
        graph = block.kind == "graph"
        self.k.max, self.k.min = block.n - 1, 1
        self.k.value = block.knn if graph else 1
        self.k.disabled = not graph
        for slider, top, value in (
            (self.window_row, nWh - 1, window // nWw),
            (self.window_col, nWw - 1, window % nWw),
            (self.node_row, ws - 1, node // ws),
            (self.node_col, ws - 1, node % ws),
        ):
            slider.max = max(top, 0)
            slider.value = value
            slider.disabled = top == 0

    def _on_block(self, change) -> None:
        with self.quietly():
            self._configure(self.capture[change["new"]])
        self.redraw()

    def _attach_click(self) -> None:
        try:
            from ipyevents import Event  # optional: clicks on the image; the sliders work without it
        except ImportError:
            return
        self._events = Event(source=self.image, watched_events=["click"])
        self._events.on_dom_event(self._on_click)

    def _on_click(self, event: dict) -> None:
        """A click on the image (``relativeX/Y`` in displayed pixels) selects the pixel under it
        when it falls in the left panel."""
        fig, ax = getattr(self, "_fig", None), getattr(self, "_grid_ax", None)
        if fig is None:
            return
        width_px, height_px = fig.get_size_inches() * fig.dpi
        scale = width_px / max(float(event.get("boundingRectWidth") or width_px), 1.0)
        px, py = float(event["relativeX"]) * scale, float(event["relativeY"]) * scale
        if not ax.get_window_extent().contains(px, height_px - py):
            return
        x, y = ax.transData.inverted().transform((px, height_px - py))
        try:
            self.select_at(int(y // 1), int(x // 1))
        except ValueError as err:
            log.info("click outside the padded image: %s", err)

    # ------------------------------------------------------------------ drawing
    def render(self) -> None:
        """Redraw the figure into :attr:`image`, sized to show at the PNG's own pixel size."""
        from matplotlib.figure import Figure  # the plots extra, as for every drawing

        block = self.current_block()
        window, node, head = self.selection()
        fig = Figure(figsize=FIGURE_SIZE, dpi=self.dpi, layout="constrained")
        grid = fig.add_gridspec(1, 3, width_ratios=PANEL_WIDTHS)
        axes = [fig.add_subplot(grid[i]) for i in range(3)]
        viz.draw_window_grid(block, window, node, ax=axes[0])
        viz.draw_window(block, window, node, head, ax=axes[1])
        viz.draw_attention_matrix(block, window, head, ax=axes[2])
        self._fig, self._grid_ax = fig, axes[0]
        # at the PNG's own size, FIGURE_SIZE times the dpi asked for (840 px at 100 fits the output at 1280x800)
        show_png(self.image, figure_png(fig, self.dpi, max_width=None))
        t, left, b, r = viz.node_patch(block, window, node)
        k = f"k={block.knn}" if block.kind == "graph" else "full window"
        self.info.value = (
            f"<b>{block.name}</b> · 1/{block.scale} · window {window} of {block.num_windows} · node {node} "
            f"(image pixels y {t}..{b - 1}, x {left}..{r - 1}) · head {head} · {k}"
        )


def attention_explorer(
    model: nn.Module, image: viz.ImageLike | None = None, capture: viz.AttentionCapture | None = None, dpi: int = DPI
) -> AttentionExplorer:
    """An :class:`AttentionExplorer` of ``model`` on ``image`` (a :data:`gabic.images.ImageLike`: path, PIL
    image or tensor ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1]),
    or on an existing ``capture`` of that model. Display it in a notebook as the cell's value.

    ``dpi`` (default :data:`DPI`, 100) sets the figure's pixel size, :data:`FIGURE_SIZE` times
    ``dpi``, which is shown as it is: at 100 an 840 x 440 px image whose smallest text is 9.7 px.
    """
    if capture is None:
        if image is None:
            raise ValueError("attention_explorer needs an image or a capture")
        capture = viz.capture(model, image)
    return AttentionExplorer(model, capture, dpi=dpi)
