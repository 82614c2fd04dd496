"""The GABIC-WACNN explorer: each view draws what the analysis holds, images are analysed once,
the block and head choose the attention maps."""

from __future__ import annotations

import pytest
from PIL import Image

pytest.importorskip("ipywidgets")

from gabic.analysis.report import analyse_image  # noqa: E402
from gabic.widgets._base import MAX_WIDTH_PX, png_size  # noqa: E402
from gabic.widgets.compare import DISPLAY_DPI, VIEWS, comparison_explorer  # noqa: E402
from tests.conftest import small_model  # noqa: E402


@pytest.fixture(scope="module")
def photos(tmp_path_factory, smooth_image):
    from gabic.images import tensor_to_image

    folder = tmp_path_factory.mktemp("photos")
    first = tensor_to_image(smooth_image)
    first.save(folder / "a.png")
    first.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "b.png")
    return [folder / "a.png", folder / "b.png"]


@pytest.fixture(scope="module")
def explorer(photos):
    return comparison_explorer(small_model("gabic"), small_model("wacnn"), photos, dpi=30)


def test_every_view_draws_and_says_what_it_shows(explorer):
    images = {}
    for view in VIEWS:
        explorer.view.value = view
        assert bytes(explorer.image.value).startswith(b"\x89PNG")
        assert VIEWS[view] in explorer.info.value
        images[view] = bytes(explorer.image.value)
    assert len(set(images.values())) == len(VIEWS), "each view its own figure"


def test_the_numbers_shown_are_the_analysis(explorer, photos):
    explorer.picture.value = photos[0]
    explorer.view.value = "bits"
    summary = analyse_image(explorer.models, photos[0]).comparison.summary()
    for key in "ab":
        assert f"<b>{summary[key]['name']}</b> {summary[key]['bpp']:.4f} bpp" in explorer.info.value


def test_images_are_analysed_once_and_switched(explorer, photos):
    explorer.picture.value = photos[0]
    first = explorer.analysis()
    explorer.picture.value = photos[1]
    assert explorer.analysis() is not first and explorer.info.value.startswith("b.png")
    explorer.picture.value = photos[0]
    assert explorer.analysis() is first, "kept for the session"


def test_block_and_head_choose_the_attention_maps(explorer):
    explorer.view.value = "attention maps"
    blocks = [value for _, value in explorer.block.options]
    assert blocks == ["g_a.4.conv_b.0", "g_a.8.conv_b.0", "g_s.0.conv_b.0", "g_s.5.conv_b.0"]
    assert explorer.head.options[0] == "mean" and list(explorer.head.options[1:]) == list(range(8))
    shown = set()
    for block in blocks[:2]:
        explorer.block.value = block
        for head in ("mean", 3):
            explorer.head.value = head
            shown.add(bytes(explorer.image.value))
    assert len(shown) == 4, "another block or head, another figure"


def test_no_images_is_refused():
    with pytest.raises(ValueError, match="at least one image"):
        comparison_explorer(small_model("gabic"), small_model("wacnn"), [])


def test_every_view_is_shown_at_its_own_size(explorer):
    """No view is stretched to the output's width: the Image's layout is the PNG's own size, at most MAX_WIDTH_PX wide."""
    for view in VIEWS:
        explorer.view.value = view
        width, height = png_size(bytes(explorer.image.value))
        assert (explorer.image.layout.width, explorer.image.layout.height) == (f"{width}px", f"{height}px"), view
        assert width <= MAX_WIDTH_PX
    # by default the smallest type of gabic.analysis.drawing (xx-small, 5.8 pt) is 9 px or more on screen,
    # also where a page-wide figure is drawn at a lower resolution to fit MAX_WIDTH_PX
    assert min(DISPLAY_DPI, MAX_WIDTH_PX / 7.16) * 5.79 / 72 >= 9
