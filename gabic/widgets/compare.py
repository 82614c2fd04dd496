"""An ipywidgets explorer of two models compared (GABIC against WACNN): images, views, blocks, heads.

``comparison_explorer(model_a, model_b, images)`` analyses each image when it is first shown
(:func:`gabic.analysis.report.analyse_image`, kept for the session) and draws one view of it with
:mod:`gabic.analysis.drawing`: where the bits go (both maps and their difference), the tiles
against texture, the attention measures as maps over the image (one block, one head or the mean),
their distributions at every block, and the redundancy before and after every block. The figure
is rendered to PNG bytes at :data:`DISPLAY_DPI` (at most 840 px wide) and shown at its own size
in an ``ipywidgets.Image`` (:func:`gabic.widgets._base.show_png`; ``explorer.image.value``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

try:
    import ipywidgets as widgets
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError("gabic.widgets.compare needs ipywidgets: pip install 'gabic[notebooks]' (or ipywidgets)") from err

from gabic.analysis import drawing
from gabic.analysis.compare import pair_names
from gabic.analysis.report import ImageAnalysis, analyse_image
from gabic.models import LearnedCodec
from gabic.widgets._base import Redraws, figure_png, show_png

__all__ = ["DISPLAY_DPI", "VIEWS", "ComparisonExplorer", "comparison_explorer"]

#: Resolution of the figures on screen (shown at their own size): the smallest type of
#: :mod:`gabic.analysis.drawing` (``xx-small``, 5.8 pt) is 9.7 px; a page-wide figure (7.16 in) is
#: drawn at 117 dpi instead, to be 840 px wide (:func:`gabic.widgets._base.figure_png`), its type 9.4 px.
DISPLAY_DPI = 120

#: The views of the explorer: label -> what it draws.
VIEWS = {
    "bits": "where the bits go: both models' latent bits per pixel and their difference",
    "tiles": "per-tile rate and PSNR differences against texture",
    "attention maps": "kNN share, weighted distance and entropy over the image (block, head)",
    "attention": "the attention measures' distributions at every block",
    "redundancy": "cosine and effective rank of the tokens before and after every block",
}


class ComparisonExplorer(Redraws, widgets.VBox):
    """The explorer's container; its controls and output are attributes.

    Attributes:
        picture: Dropdown of the images (file names).
        view: ToggleButtons of :data:`VIEWS`.
        block: Dropdown of the attention blocks (the "attention maps" view).
        head: Dropdown, ``"mean"`` or a head index (the "attention maps" view).
        image: ``ipywidgets.Image`` holding the PNG of the current figure, at its own size.
        info: HTML line: the image's numbers for both models.
    """

    def __init__(
        self,
        models: tuple[LearnedCodec, LearnedCodec],
        images: Sequence[str | os.PathLike],
        names: tuple[str, str] | None = None,
        tile: int = 64,
        dpi: int = DISPLAY_DPI,
    ):
        if not images:
            raise ValueError("comparison_explorer needs at least one image")
        self.models, self.tile, self.dpi = models, tile, dpi
        self.names = pair_names(models[0].name, models[1].name, names)
        self.paths = [Path(p) for p in images]
        self._analyses: dict[Path, ImageAnalysis] = {}
        self.picture = widgets.Dropdown(options=[(p.name, p) for p in self.paths], value=self.paths[0], description="image")
        self.view = widgets.ToggleButtons(options=list(VIEWS), value="bits", tooltips=list(VIEWS.values()))
        self.block = widgets.Dropdown(options=[], description="block")
        self.head = widgets.Dropdown(options=["mean"], value="mean", description="head")
        self.image = widgets.Image(format="png")
        self.info = widgets.HTML()
        super().__init__([widgets.HBox([self.picture, self.block, self.head]), self.view, self.info, self.image])
        self._configure()
        self.picture.observe(self._on_picture, names="value")
        for w in (self.view, self.block, self.head):
            w.observe(self._on_change, names="value")
        self.render()

    def analysis(self, path: Path | None = None) -> ImageAnalysis:
        """The analysis of ``path`` (default the selected image), computed once."""
        path = self.picture.value if path is None else Path(path)
        if path not in self._analyses:
            self._analyses[path] = analyse_image(self.models, path, self.names, tile=self.tile)
        return self._analyses[path]

    def _configure(self) -> None:
        a = self.analysis()
        blocks = list(a.attention) or a.blocks
        self.block.options = [(b.removesuffix(".conv_b.0"), b) for b in blocks]
        if self.block.value not in blocks:
            self.block.value = blocks[0] if blocks else None
        heads = max(cap[self.block.value].heads for cap in a.captures) if blocks else 0
        self.head.options = ["mean", *range(heads)]
        if self.head.value not in self.head.options:
            self.head.value = "mean"

    def _on_picture(self, change) -> None:
        with self.quietly():
            self._configure()
        self.redraw()

    def figure(self):
        """The figure of the current view (a :class:`matplotlib.figure.Figure`)."""
        a = self.analysis()
        view = self.view.value
        if view == "bits":
            return drawing.draw_bits_comparison(a.comparison)
        if view == "tiles":
            return drawing.draw_tile_scatter(a.comparison)
        if view == "attention maps":
            block = self.block.value
            return drawing.draw_attention_maps(a.attention[block], a.block_pair(block), self.head.value, names=a.kind_names(block))
        if view == "attention":
            return drawing.draw_attention_comparison(a.attention, names=a.kind_names(next(iter(a.attention))))
        return drawing.draw_redundancy(a.redundancy)

    def render(self) -> None:
        """Redraw the current view into :attr:`image` and the numbers into :attr:`info`."""
        show_png(self.image, figure_png(self.figure(), self.dpi))
        s = self.analysis().comparison.summary()
        parts = [
            f"<b>{s[k]['name']}</b> {s[k]['bpp']:.4f} bpp ({s[k]['bpp_likelihoods']:.4f} likelihoods), {s[k]['psnr_rgb']:.2f} dB"
            for k in "ab"
        ]
        self.info.value = f"{self.picture.value.name}: " + " · ".join(parts) + f" · {VIEWS[self.view.value]}"


def comparison_explorer(
    model_a: LearnedCodec,
    model_b: LearnedCodec,
    images: Sequence[str | os.PathLike] | str | os.PathLike,
    names: tuple[str, str] | None = None,
    tile: int = 64,
    dpi: int = DISPLAY_DPI,
) -> ComparisonExplorer:
    """A :class:`ComparisonExplorer` of two models (labels by default their architectures' names) over
    ``images`` (paths, or one path), its figures drawn at ``dpi`` (default :data:`DISPLAY_DPI`; lowered
    where a figure would be wider than 840 px) and shown at their own size. Display it in a
    notebook as the cell's value."""
    if isinstance(images, str | os.PathLike):
        images = [images]
    return ComparisonExplorer((model_a, model_b), list(images), names, tile, dpi)
