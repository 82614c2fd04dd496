"""What the widget apps share: redraw on a user's change, not on the app's own updates; pictures
shown at their own pixel size.

A picture in an ``ipywidgets.Image`` is stretched by the browser to the output's width unless its
layout says otherwise (ipywidgets' style sheet gives images ``max-width: 100%; height: auto``):
a figure drawn 716 px wide is shown 1004 px wide, soft, and a decoded photo is resampled, which
hides the very artefacts a researcher looks for. :func:`show_png` sets an image's PNG and its
layout to the PNG's own width and height in CSS pixels; every app of :mod:`gabic.widgets` shows
its pictures through it, and draws its matplotlib figures with :func:`figure_png`, at a
resolution that keeps them within :data:`MAX_WIDTH_PX`. Each figure's PNG says, in its text chunk
:data:`SMALLEST_TEXT_KEY`, how many of its pixels its smallest text is tall (:func:`png_text` reads
it): with the size the page shows the picture at, that is the smallest text on screen, which the
browser test checks.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gabic.figure_layout import smallest_type

__all__ = ["MAX_WIDTH_PX", "SMALLEST_TEXT_KEY", "Redraws", "figure_png", "png_size", "png_text", "show_png", "with_text"]

#: The widest picture (CSS pixels) an app shows: a notebook's output in JupyterLab 4.6 on a
#: 1280x800 screen is 848 px wide with the file browser open (as JupyterLab starts), about 1000 px
#: with it closed.
MAX_WIDTH_PX = 840

#: The PNG text chunk (tEXt keyword) in which :func:`figure_png` writes the size of the figure's
#: smallest text, in the PNG's pixels (the font size: ``points * dpi / 72``).
SMALLEST_TEXT_KEY = "gabic:smallest-text-px"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Redraws:
    """Mixin for the apps: a control changed by the app itself inside :meth:`quietly` does not
    redraw (one redraw follows the whole update); a change made by the user redraws at once."""

    _quiet = False

    @contextmanager
    def quietly(self) -> Iterator[None]:
        """Update controls without a redraw per change."""
        previous, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = previous

    def redraw(self) -> None:
        """Draw the app's output again (``self.render()``)."""
        self.render()

    def _on_change(self, change) -> None:
        if not self._quiet:
            self.redraw()


def png_size(png: bytes) -> tuple[int, int]:
    """``(width, height)`` in pixels of PNG bytes, read from the header (nothing decoded).

    Raises:
        ValueError: the bytes are not a PNG.
    """
    data = bytes(png[:24])
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError(f"not PNG bytes (they start with {data[:8]!r})")
    return struct.unpack(">II", data[16:24])


def png_text(png: bytes) -> dict[str, str]:
    """The text chunks (``tEXt``: keyword and Latin-1 text) of PNG bytes, read chunk by chunk up to
    the image data (nothing decoded).

    Raises:
        ValueError: the bytes are not a PNG, or they end before its image data.
    """
    png_size(png)
    data, at, texts = bytes(png), len(_PNG_SIGNATURE), {}
    while True:
        if at + 8 > len(data):
            raise ValueError(f"the PNG data ends at byte {len(data)}, before its image data")
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind in (b"IDAT", b"IEND"):
            return texts
        if at + 12 + length > len(data):
            raise ValueError(f"PNG chunk {kind!r} at byte {at} runs past the end of the data ({len(data)} bytes)")
        if kind == b"tEXt":
            keyword, _, text = data[at + 8 : at + 8 + length].partition(b"\0")
            texts[keyword.decode("latin-1")] = text.decode("latin-1")
        at += 12 + length


def show_png(image: Any, png: bytes, pixels: bool = False) -> tuple[int, int]:
    """Show ``png`` in ``image`` (an ``ipywidgets.Image``) at its own size: the image's ``value``
    becomes ``png`` and its layout's ``width`` and ``height`` the PNG's, in CSS pixels, so the
    browser neither stretches nor squeezes it to the output's width. Empty bytes hide the image.

    Where the output is narrower than the picture (ipywidgets' ``max-width: 100%`` applies), a
    figure (default) shrinks as a whole, keeping its proportions (``object-fit: contain``); a
    photo (``pixels=True``) is cut at its sides instead and keeps its pixels 1:1
    (``object-fit: none``), never resampled.

    Args:
        image: the ``ipywidgets.Image`` (format ``"png"``).
        png: the PNG bytes (``b""``: nothing to show).
        pixels: the PNG holds image pixels to be seen 1:1 (a decoded photo, a crop zoomed by an
            integer factor), not a figure. Default False.

    Returns:
        ``(width, height)`` of the PNG in pixels, ``(0, 0)`` for empty bytes.

    Raises:
        ValueError: ``png`` is neither empty nor PNG bytes.
    """
    if not png:
        image.value = b""
        image.layout.display = "none"
        return 0, 0
    width, height = png_size(png)
    image.value = png
    layout = image.layout
    layout.width, layout.height = f"{width}px", f"{height}px"
    layout.object_fit = "none" if pixels else "contain"
    layout.flex = "0 0 auto"  # not squeezed by a box beside it
    layout.display = None
    return width, height


def figure_png(fig: Any, dpi: float, max_width: int | None = MAX_WIDTH_PX) -> bytes:
    """The PNG bytes of a matplotlib figure at ``dpi`` dots per inch, lowered where needed so that
    the PNG is at most ``max_width`` pixels wide (default :data:`MAX_WIDTH_PX`; None: never lowered).

    At 1:1 on screen a point of type is ``dpi / 72`` pixels: 7 pt type needs ``dpi >= 93`` to be
    9 px tall. The PNG's text chunk :data:`SMALLEST_TEXT_KEY` holds its smallest text's size in
    its pixels (:func:`gabic.figure_layout.smallest_type` at the resolution used)."""
    if max_width is not None:
        dpi = min(float(dpi), max_width / fig.get_figwidth())
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})  # shown, not kept: fast over small
    png = buf.getvalue()
    smallest = smallest_type(fig) * dpi / 72  # after drawing: tick labels exist once the figure is drawn
    return with_text(png, SMALLEST_TEXT_KEY, f"{smallest:.2f}") if math.isfinite(smallest) else png


def with_text(png: bytes, keyword: str, text: str) -> bytes:
    """PNG bytes with a text chunk (``tEXt``) ``keyword`` = ``text`` added after their header.

    Raises:
        ValueError: the bytes are not a PNG, or the keyword or text is not Latin-1 (the keyword
            1 to 79 characters, no NUL).
    """
    png_size(png)
    key, value = keyword.encode("latin-1"), text.encode("latin-1")
    if not 1 <= len(key) <= 79 or b"\0" in key + value:
        raise ValueError(f"a PNG text keyword is 1 to 79 Latin-1 characters without NUL, not {keyword!r}")
    body = b"tEXt" + key + b"\0" + value
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    after_header = len(_PNG_SIGNATURE) + 8 + 13 + 4  # the IHDR chunk: length, type, 13 bytes, CRC
    return png[:after_header] + chunk + png[after_header:]
