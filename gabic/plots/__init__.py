"""Rate-distortion figures and Bjøntegaard-delta (BD) tables from results files.

Every function takes curves as a results dict (see :mod:`gabic.results`), a path to a results
file, the name of a published curve (``"jpeg"``, ``"stf_mse"``, ...), or a sequence of these.

- :func:`rd_figure` draws an RD figure with matplotlib for papers, :func:`save_figure` writes
  it as PDF, SVG or PNG; :func:`rd_plotly` draws the same curves with plotly for exploring
  (hover shows each point's quality or lambda, bpp and quality value).
- :func:`method_style` gives each *method* one colour and marker, the same in every figure and
  session. Measured curves are solid, full-width lines with filled markers; published ones
  (``meta.kind == "published"``) thinner, lighter dashed lines with hollow markers, labelled
  "(published)"; digitised ones (``meta.digitized``), such as the GABIC paper figure, the same
  but dotted, labelled "(digitised from figure)". Names are shown as display names
  (:func:`display_name`: ``jpeg`` -> "JPEG", ``webp`` -> "WebP", ``gabic`` -> "GABIC"...) in
  figures, legends and BD tables alike.
- :func:`rd_figure` fits the x-range to the learned codecs by default (classical codecs such as
  BPG and VTM reach 4.7 bpp, where learned codecs stop near 1 bpp) and says so on the figure;
  ``xlim="full"`` shows every point. Curves without the metric drawn are listed on the figure.
- :func:`bd_table` gives BD-rate and BD-PSNR of each curve against an anchor as a DataFrame,
  :func:`bd_markdown` / :func:`bd_latex` format it, :func:`bd_caption` says against what and why
  rows are n/a; :func:`write_report` writes all of it. Without a named anchor,
  :func:`default_anchor` picks one on the image set of the measured curves.

Curves know their image set (:mod:`gabic.image_sets`): when curves of several sets are drawn
together, those not on the set of the majority get it in their label ("jpeg (4 sample
photos)" beside published Kodak curves), and a BD value between curves of different sets is
n/a with that reason unless ``across_image_sets=True`` asks for it.

A curve without the metric asked for is left out of a figure with a note on the figure (and a log
line at DEBUG: nothing is printed); when no curve has it, :class:`~gabic.errors.ResultsError` names each curve and the
metrics it has. In a BD table such a curve gets NaN and a note, as does one whose quality does not
rise strictly with its bpp (BD assumes it does): the note names the curve and the first step
where it falls or stays (:func:`gabic.metrics.bd_rate`).

Every figure carries the numbers it plots (:mod:`gabic.figure_data`); :func:`save_figure` writes
them beside it as CSV.

pandas and plotly (the ``plots`` extra, like matplotlib) are imported by the functions that need
them, so a figure can be drawn without them.

The submodules, each name importable from :mod:`gabic.plots` itself:

- :mod:`gabic.plots.styles`: the height ratio, line widths, palette and markers, the axis labels
  of the metrics and one style per method (:func:`method_style`); the paper's widths and type sizes
  (:data:`COLUMN_WIDTHS`, :func:`figure_width`, :data:`FONT_SIZE`...) are :mod:`gabic.figure_layout`'s;
- :mod:`gabic.plots.curves`: loading and labelling curves (:func:`load_curves`, :class:`Curve`),
  their points and the data table a figure carries (:func:`data_column`);
- :mod:`gabic.plots.figures`: :func:`rd_figure`, :func:`save_figure` and :func:`rd_plotly`, with
  their x- and y-ranges, notes and legend;
- :mod:`gabic.plots.tables`: BD tables (:func:`default_anchor`, :func:`find_anchor`, :func:`bd_table`,
  :func:`bd_caption`, :func:`bd_markdown`, :func:`bd_latex`);
- :mod:`gabic.plots.report`: :func:`write_report`, the figures and tables of ``gabic rd``.
"""

from __future__ import annotations

from gabic.figure_layout import COLUMN_WIDTHS, figure_width
from gabic.figure_layout import FONT_SIZE as FONT_SIZE
from gabic.figure_layout import LEGEND_FONT_SIZE as LEGEND_FONT_SIZE
from gabic.figure_layout import NOTE_FONT_SIZE as NOTE_FONT_SIZE

# `X as X`: public names of the former gabic/plots.py that are not in __all__, re-exported as well
from gabic.names import DISPLAY_NAMES, display_name
from gabic.plots.curves import Curve, data_column, load_curves
from gabic.plots.curves import Curves as Curves
from gabic.plots.figures import NOTE_GID as NOTE_GID
from gabic.plots.figures import rd_figure, rd_plotly, save_figure
from gabic.plots.report import write_report
from gabic.plots.styles import AXIS_MARGIN as AXIS_MARGIN
from gabic.plots.styles import CLASSICAL_METHODS, METHOD_STYLES, METRIC_LABELS, PALETTE, method_style
from gabic.plots.styles import HEIGHT_RATIO as HEIGHT_RATIO
from gabic.plots.styles import LINE_WIDTH as LINE_WIDTH
from gabic.plots.styles import MARKER_SIZE as MARKER_SIZE
from gabic.plots.styles import MARKERS as MARKERS
from gabic.plots.styles import REFERENCE_ALPHA as REFERENCE_ALPHA
from gabic.plots.styles import REFERENCE_LINE_WIDTH as REFERENCE_LINE_WIDTH
from gabic.plots.tables import ANCHOR_METHODS, bd_caption, bd_latex, bd_markdown, bd_table, default_anchor, find_anchor

__all__ = [
    "ANCHOR_METHODS",
    "CLASSICAL_METHODS",
    "COLUMN_WIDTHS",
    "Curve",
    "DISPLAY_NAMES",
    "METHOD_STYLES",
    "METRIC_LABELS",
    "PALETTE",
    "bd_caption",
    "bd_latex",
    "bd_markdown",
    "bd_table",
    "data_column",
    "default_anchor",
    "display_name",
    "figure_width",
    "find_anchor",
    "load_curves",
    "method_style",
    "rd_figure",
    "rd_plotly",
    "save_figure",
    "write_report",
]
