"""A paper's measures and fitting a figure's type and ticks to them: the column and page widths and
the type sizes every figure of gabic is drawn with (:data:`COLUMN_WIDTHS`, :data:`FONT_SIZE`,
:data:`LEGEND_FONT_SIZE`, :data:`NOTE_FONT_SIZE`; :mod:`gabic.plots` and :mod:`gabic.viz` both take
them from here), and what the figure modules (:mod:`gabic.reconstructions`,
:mod:`gabic.train.figures`, :mod:`gabic.analysis.drawing`) share to lay their panels out at one
column or across a page with text that neither overlaps nor leaves the figure. matplotlib is
imported where it is used (the plots extra); importing this module needs only numpy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gabic.checks import is_number

__all__ = [
    "COLUMN_WIDTHS",
    "FONT_SIZE",
    "LEGEND_FONT_SIZE",
    "NOTE_FONT_SIZE",
    "WIDE_LAYOUT",
    "figure_width",
    "fit_lines",
    "log_ticks",
    "smallest_type",
    "text_height",
    "text_width",
]

#: Figure widths in inches: one column and the full page width of a two-column IEEE paper
#: (IEEE Author Center, graphics guidelines: 3.5 in / 88.9 mm and 7.16 in / 181.9 mm).
COLUMN_WIDTHS: dict[str, float] = {"single": 3.5, "double": 7.16}
#: Type size in points of titles and axis labels: that of IEEEtran's figure captions (\\footnotesize
#: in a 10 pt paper).
FONT_SIZE = 8.0
#: The smallest type in points a printed figure carries: legends, tick labels, notes, small labels.
LEGEND_FONT_SIZE = 7.0
NOTE_FONT_SIZE = LEGEND_FONT_SIZE


def figure_width(width: str | float) -> float:
    """A figure width in inches from ``"single"`` (3.5), ``"double"`` (7.16) or a positive number."""
    if isinstance(width, str):
        if width not in COLUMN_WIDTHS:
            raise ValueError(f"width must be 'single', 'double' or inches, got {width!r}")
        return COLUMN_WIDTHS[width]
    if not is_number(width) or not math.isfinite(width) or width <= 0:
        raise ValueError(f"width must be 'single', 'double' or a positive number of inches, got {width!r}")
    return float(width)


#: Figures at least this wide (inches) lay their panels out as on a page, side by side; narrower
#: ones (a column, 3.5 in) in more rows: :func:`reconstruction_figure` (two rows of three, or three
#: of two), the training figure (:mod:`gabic.train.figures`) and the drawings of :mod:`gabic.analysis`.
WIDE_LAYOUT = 5.0


def text_width(text: str, size: float) -> float:
    """The width in inches of the widest line of ``text`` at ``size`` points in matplotlib's default type."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    font = FontProperties(size=size)
    return max(text_to_path.get_text_width_height_descent(line, font, ismath=False)[0] for line in text.split("\n")) / 72


def fit_lines(pieces: Sequence[str], width: float, size: float) -> str:
    """``pieces`` joined by spaces into lines no wider than ``width`` inches at ``size`` points, broken
    between pieces (a piece wider than that alone is broken between its words)."""
    lines: list[str] = []
    for piece in pieces:
        if lines and text_width(f"{lines[-1]} {piece}", size) <= width:
            lines[-1] += " " + piece
        elif " " in piece and text_width(piece, size) > width:
            lines += fit_lines(piece.split(" "), width, size).split("\n")
        else:
            lines.append(piece)
    return "\n".join(lines)


def log_ticks(axis: Any, values: Any) -> None:
    """Ticks of a log-scaled ``axis`` over ``values`` that stay apart on a narrow axis, written plainly:
    the powers of ten over two decades or more; 1, 2 and 5 times them over one or more; over less than
    a decade, where no power of ten may fall, three evenly spaced values. No minor tick labels
    (matplotlib writes them, as 4x10^2, 5x10^2..., where the axis spans less than a decade, and they
    run into each other)."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v) & (v > 0)]
    decades = math.log10(v.max() / v.min()) if v.size else 0.0
    if decades >= 2:
        locator = LogLocator(numticks=6)
    elif decades >= 1:
        locator = LogLocator(subs=(1.0, 2.0, 5.0))
    else:
        locator = MaxNLocator(nbins=3)
    axis.set_major_locator(locator)
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())


def text_height(text: str, size: float) -> float:
    """The height in inches of ``text``'s lines at ``size`` points (1.3 line spacing, with padding)."""
    return (text.count("\n") + 1) * size * 1.3 / 72 + 0.06


def smallest_type(fig: Any) -> float:
    """The size in points of the smallest text ``fig`` (a matplotlib Figure) writes: every visible,
    non-blank text (titles, labels, tick labels, legends, colour bars, annotations) at the size it is
    drawn in the figure; ``inf`` for a figure without text. A point is ``dpi / 72`` pixels in the
    figure's PNG."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return float(min(sizes, default=math.inf))
