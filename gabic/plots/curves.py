"""The curves behind RD figures and BD tables: :func:`load_curves` loads, validates and labels them
(:class:`Curve`), the points of a metric with their stored index and settings, and the data table
an RD figure carries (:func:`data_column`). See :mod:`gabic.plots`."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gabic.errors import ResultsError
from gabic.image_sets import describe, image_set_of
from gabic.plots.styles import method_style
from gabic.results import load, points, validate

log = logging.getLogger(__name__)

#: One curve or many: results dicts, paths to results files, names of published curves.
Curves = dict[str, Any] | str | os.PathLike | Sequence[dict[str, Any] | str | os.PathLike]


@dataclass(eq=False)  # compared by identity
class Curve:
    """One loaded curve: its result dict, its unique label, what the caller passed for it, its
    style and the image set it was measured on (None when its file does not say)."""

    result: dict[str, Any]
    label: str  # unique within one call
    given: str  # what the caller passed: a published name, a path, or the result's name
    style: dict[str, Any]
    image_set: dict[str, Any] | None = None


def _set_key(image_set: dict[str, Any] | None) -> str | None:
    if image_set is None:
        return None
    return image_set.get("fingerprint") or f"{str(image_set.get('name')).lower()}|{image_set.get('num_images')}"


def _majority(keys: Sequence[str | None]) -> str | None:
    """The image-set key most curves have (the first such curve's on a tie; unknown sets not counted)."""
    known = [k for k in keys if k is not None]
    return max(known, key=known.count) if known else None


def load_curves(results: Curves) -> list[Curve]:
    """Load and validate curves (results dicts, paths, published names) into :class:`Curve` objects.

    Labels are the :func:`method_style` labels; a curve measured on another image set than most
    of the curves gets that set in its label (``"jpeg (4 sample photos)"``); labels are made
    unique with " [2]", " [3]" ... Figures, tables and widgets share these labels."""
    items = [results] if isinstance(results, (dict, str, os.PathLike)) else list(results)
    if not items:
        raise ValueError("no curves given: expected results dicts, paths to results files or published names")
    if all(isinstance(item, Curve) for item in items):  # already loaded (write_report passes its curves on)
        return list(items)
    loaded: list[tuple[dict[str, Any], str]] = []
    for i, item in enumerate(items):
        if isinstance(item, Curve):
            loaded.append((item.result, item.given))
        elif isinstance(item, (str, os.PathLike)):
            loaded.append((load(item), os.fspath(item)))
        else:
            source = item.get("name", f"results[{i}]") if isinstance(item, dict) else f"results[{i}]"
            validate(item, source=str(source))
            loaded.append((item, str(item.get("name", f"results[{i}]"))))
    sets = [image_set_of(result) for result, _ in loaded]
    keys = [_set_key(s) for s in sets]
    majority = _majority(keys)
    curves, seen = [], {}
    for (result, given), image_set, key in zip(loaded, sets, keys, strict=True):
        style = method_style(result)
        label = style["label"]
        if key is not None and key != majority:
            label = f"{label} ({describe(image_set)})"
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} [{seen[label]}]"
        curves.append(Curve(result, label, given, {**style, "label": label}, image_set))
    return curves


def _with_metric(curves: list[Curve], metric: str) -> list[tuple[Curve, list[tuple[float, float]]]]:
    """The curves that have ``metric`` with their (bpp, value) pairs; the others are skipped, with a
    log line at DEBUG: the figure notes them (:func:`gabic.plots.rd_figure`), and a warning would
    print into a notebook once per figure drawn. When none has it, ResultsError names each curve
    and the metrics it has."""
    have, missing = [], []
    for curve in curves:
        try:
            have.append((curve, points(curve.result, metric)))
        except ResultsError as err:
            missing.append(str(err))
    if not have:
        raise ResultsError(f"no curve has the metric {metric!r}: " + "; ".join(missing))
    if missing:
        log.debug("left out of the %s figure: %s", metric, "; ".join(missing))
    return have


def _stored_points(result: dict[str, Any], metric: str) -> list[tuple[int, float, float]]:
    """``(stored index, bpp, value)`` per point, sorted like :func:`gabic.results.points` (by bpp,
    then value), so each point keeps its index into the file's lists (and its ``meta`` settings)."""
    res = result["results"]
    n = len(res["bpp"])
    # points() over the point indices: the metric's values in stored order (with its dB conversion)
    values = [v for _, v in points({**result, "results": {**res, "bpp": list(range(n))}}, metric)]
    return sorted(((i, res["bpp"][i], values[i]) for i in range(n)), key=lambda t: (t[1], t[2]))


def _settings(result: dict[str, Any]) -> dict[str, list[Any]]:
    """The per-point settings in ``meta`` (``{"lambda": [...]}``, ``{"quality": [...]}``), stored order."""
    meta = result.get("meta") or {}
    n = len(result["results"]["bpp"])
    return {k: meta[k] for k in ("lambda", "quality") if isinstance(meta.get(k), list) and len(meta[k]) == n}


def data_column(metric: str) -> str:
    """The column name of ``metric``'s values in the data written beside a figure, with its unit:
    ``"psnr_db"``, ``"ms_ssim"`` (linear), ``"ms_ssim_db"``; other metrics as a slug of their key."""
    return _DATA_COLUMNS.get(metric) or re.sub(r"[^a-z0-9]+", "_", metric.lower()).strip("_")


_DATA_COLUMNS = {"psnr-rgb": "psnr_db", "ms-ssim-rgb": "ms_ssim", "ms-ssim-db-rgb": "ms_ssim_db"}


def _rd_table(drawn: list[tuple[Curve, list[tuple[float, float]]]], metric: str) -> dict[str, list[Any]]:
    """The long table of an RD figure: one row per drawn point (see :func:`rd_figure`)."""
    value = data_column(metric)
    settings = {c: _settings(c.result) for c, _ in drawn}
    keys = [k for k in ("lambda", "quality") if any(k in v for v in settings.values())]
    table: dict[str, list[Any]] = {k: [] for k in ("curve", "method", "kind", "point", "bpp", value, *keys)}
    for curve, _ in drawn:
        for i, bpp, v in _stored_points(curve.result, metric):
            row = {
                "curve": curve.label,
                "method": curve.style["method"],
                "kind": curve.style["kind"],
                "point": i,
                "bpp": bpp,
                value: v,
            }
            row |= {k: settings[curve][k][i] if k in settings[curve] else None for k in keys}
            for column, cell in row.items():
                table[column].append(cell)
    return table
