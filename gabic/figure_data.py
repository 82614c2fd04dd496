"""The data behind a figure: kept on the figure when it is drawn, written beside it as CSV.

Every drawing function of gabic attaches the numbers it plots to its figure with
:func:`attach_data`; :func:`gabic.plots.save_figure` then writes them next to the PDF/PNG/SVG
(:func:`write_figure_data`), so a paper can re-plot the figure in pgfplots, gnuplot or a
spreadsheet. A figure holds one or more named tables: one table is written as ``<stem>.csv``,
several as ``<stem>.<name>.csv``. Tables are plain columns (no pandas needed); numbers are written
in full precision (``repr``), NaN as ``nan``, missing values as an empty field.

No matplotlib import here: a figure is any object that takes attributes.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gabic.files import write_atomic

__all__ = ["attach_data", "figure_data", "grid_table", "write_figure_data"]

_ATTR = "_gabic_figure_data"

Table = dict[str, list[Any]]


def _columns(table: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]], name: str) -> Table:
    """Columns ``{column: values}`` of equal length from columns or from rows (dicts)."""
    if isinstance(table, Mapping):
        cols = {str(k): _values(v) for k, v in table.items()}
    else:
        rows = list(table)
        keys: list[str] = []
        for row in rows:
            if not isinstance(row, Mapping):
                raise ValueError(f"figure data {name!r}: rows must be dicts, got {type(row).__name__}")
            keys += [str(k) for k in row if str(k) not in keys]
        cols = {k: [row.get(k) for row in rows] for k in keys}
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"figure data {name!r}: columns of different lengths {lengths}")
    return cols


def _values(v: Any) -> list[Any]:
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu().numpy()
    if isinstance(v, np.ndarray):
        return v.reshape(-1).tolist()
    return list(v)


def attach_data(fig: Any, table: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]], name: str = "data") -> Any:
    """Keep ``table`` on ``fig`` under ``name`` (made unique with ``_2``, ``_3``... when a figure
    already holds a table of that name, e.g. two panels drawn by one function); returns ``fig``.

    Args:
        fig: a matplotlib figure (or any object that takes attributes).
        table: columns ``{"bpp": [...], "psnr": [...]}`` (lists, numpy arrays or tensors, flattened)
            or rows ``[{"bpp": 0.1, "psnr": 30.0}, ...]``; columns must have one length.
        name: the table's name, used in the file name when a figure holds several.

    Raises:
        ValueError: columns of different lengths, or rows that are not dicts.
    """
    tables: dict[str, Table] = getattr(fig, _ATTR, None) or {}
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "data"
    key, i = base, 1
    while key in tables:
        i += 1
        key = f"{base}_{i}"
    tables[key] = _columns(table, key)
    setattr(fig, _ATTR, tables)
    return fig


def figure_data(fig: Any) -> dict[str, Table]:
    """The tables attached to ``fig``: ``{name: {column: values}}`` (empty when none)."""
    return dict(getattr(fig, _ATTR, None) or {})


def grid_table(values: Any, value: str = "value", extent: tuple[float, float, float, float] | None = None) -> Table:
    """A 2-D map ``(H, W)`` (array or tensor) as long columns ``row, col, [y, x,] <value>``, row-major.

    ``extent = (top, left, bottom, right)`` adds the centre of each cell in those coordinates
    (``y``, ``x``; e.g. image pixels of the original image), as a heat map in pgfplots needs.
    """
    a = values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)
    if a.ndim != 2:
        raise ValueError(f"grid_table needs a 2-D map, got shape {a.shape}")
    H, W = a.shape
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    out: Table = {"row": rows.reshape(-1).tolist(), "col": cols.reshape(-1).tolist()}
    if extent is not None:
        top, left, bottom, right = extent
        out["y"] = (top + (rows.reshape(-1) + 0.5) * (bottom - top) / H).tolist()
        out["x"] = (left + (cols.reshape(-1) + 0.5) * (right - left) / W).tolist()
    out[value] = a.reshape(-1).tolist()
    return out


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool | np.bool_):
        return str(bool(v)).lower()
    if isinstance(v, float | np.floating):
        f = float(v)
        return "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf") if math.isinf(f) else repr(f)
    if hasattr(v, "item") and callable(v.item):
        return _cell(v.item())
    return str(v)


def _csv_bytes(table: Table) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(table))
    for row in zip(*table.values(), strict=True):
        writer.writerow([_cell(v) for v in row])
    return buf.getvalue().encode("utf-8")


def write_figure_data(fig: Any, stem: str | os.PathLike) -> list[Path]:
    """Write the tables attached to ``fig`` beside ``<stem>.<format>``: ``<stem>.csv`` for one table,
    ``<stem>.<name>.csv`` for each of several; atomically. Returns the paths (none when the
    figure holds no data)."""
    tables = figure_data(fig)
    stem = os.fspath(stem)
    if len(tables) == 1:
        return [write_atomic(Path(f"{stem}.csv"), _csv_bytes(next(iter(tables.values()))))]
    return [write_atomic(Path(f"{stem}.{name}.csv"), _csv_bytes(t)) for name, t in tables.items()]
