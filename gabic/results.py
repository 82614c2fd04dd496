"""Rate-distortion result files and the published anchor curves.

A results file follows CompressAI's results schema, so curves written by CompressAI's
``eval_model`` / ``bench`` and by gabic can be plotted together::

    {
      "name": "JPEG",                          # legend label
      "description": "...",                    # one line: what and where from
      "results": {                             # one list entry per RD point
        "bpp": [...],                          # required
        "psnr-rgb": [...],                     # at least one quality metric:
        "ms-ssim-rgb": [...],                  #   a key starting with "psnr" or "ms-ssim"
        "ms-ssim-db-rgb": [...],               #   (-10 * log10(1 - MS-SSIM))
        "encoding_time": [...],                # optional, seconds per image
        "decoding_time": [...]
      },
      "meta": {...},                           # optional: dataset, source, kind, digitized,
                                               #   per-point "lambda" or "quality", notes, versions
      "per_image": {...}                       # optional
    }

Every list in ``results`` has the same length and holds finite numbers; the i-th entries
of all lists describe the same RD point (never sort one list on its own: use
:func:`points`).

The published anchors (JPEG, BPG, VTM, STF, WACNN, CompressAI's zoo, the digitised GABIC
figure ...) ship with the package as data (``gabic/published/``, read through
:mod:`importlib.resources`, so an installed wheel has them), one file per curve;
``gabic/published/README.md`` says where each comes from. Load one by name::

    jpeg = load("jpeg")
    pairs = points(jpeg, "psnr-rgb")  # [(bpp, psnr), ...] sorted by bpp

pandas (the ``plots`` extra) is imported by the two functions that build DataFrames.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import numbers
import os
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from gabic.checks import is_number
from gabic.errors import ResultsError
from gabic.files import write_atomic

__all__ = [
    "QUALITY_PREFIXES",
    "dumps",
    "finite_or_none",
    "has_metric",
    "list_published",
    "load",
    "per_image_frame",
    "points_frame",
    "slug",
    "point_labels",
    "points",
    "published_dir",
    "save",
    "validate",
]

log = logging.getLogger(__name__)

#: A key of ``results`` is a quality metric when it starts with one of these.
QUALITY_PREFIXES = ("psnr", "ms-ssim")

#: Keys of ``meta`` that, when they are lists, hold one entry per RD point.
_PER_POINT_META = ("lambda", "quality")


def finite_or_none(value: Any) -> Any:
    """``value``, or None for a float that is NaN or infinite: how gabic's JSON files write a
    measure that is undefined (MS-SSIM of a small image) — JSON has no NaN."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def published_dir() -> Traversable:
    """The folder of published anchor curves, package data of gabic (``gabic/published/``).

    A :class:`~importlib.resources.abc.Traversable` (a :class:`~pathlib.Path` when gabic is
    installed as files, editable or from a wheel). Raises :class:`~gabic.errors.ResultsError`
    when the installation lacks it.
    """
    folder = resources.files("gabic").joinpath("published")
    if not folder.is_dir():
        raise ResultsError(f"{folder}: the published curves are missing from this gabic installation; reinstall gabic")
    return folder


def list_published() -> list[str]:
    """Names of the published curves (file names without ``.json``), sorted; e.g. ``"jpeg"``, ``"stf_mse"``."""
    return sorted(f.name.removesuffix(".json") for f in published_dir().iterdir() if f.name.endswith(".json"))


def load(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a results file.

    Args:
        name_or_path: a path to a JSON file, or the name of a published curve (see
            :func:`list_published`), such as ``"jpeg"`` or ``"stf_mse"``. A :class:`~pathlib.Path`,
            a string naming an existing file, or a string ending in ``.json`` or holding a path
            separator is a path; any other string is a published name.

    Returns:
        The result dict, as stored (see the module docstring for the schema).

    Raises:
        ResultsError: one line naming the file (or the unknown name) and what is wrong.
    """
    path = _resolve(name_or_path)
    if not isinstance(path, Path):  # a published curve inside the package
        result = json.loads(path.read_text(encoding="utf-8"))
        validate(result, source=f"published curve {path.name}")
        return result
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file{_published_hint(path)}") from None
    except IsADirectoryError:
        raise ResultsError(f"{path}: is a folder, not a results file") from None
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not a results file (not UTF-8 text, so not JSON)") from None
    except OSError as err:
        raise ResultsError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        result = json.loads(text)
    except json.JSONDecodeError as err:
        raise ResultsError(f"{path}: not JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    validate(result, source=str(path))
    log.debug("loaded %s: %d RD points", path, len(result["results"]["bpp"]))
    return result


def validate(result: Any, source: str = "results") -> None:
    """Check that ``result`` follows the results schema; return None or raise.

    Checked: a JSON object; ``name``/``description`` strings when present; ``results`` an
    object with ``bpp`` and at least one quality metric (a key starting with ``psnr`` or
    ``ms-ssim``); every entry of ``results`` a non-empty list of finite numbers, all of the
    same length; ``bpp`` not negative; ``meta`` and ``per_image`` objects when present, and
    ``meta["lambda"]`` / ``meta["quality"]``, when lists, one entry per point.

    Args:
        result: the parsed JSON.
        source: names the file or object in the error message (default ``"results"``).

    Raises:
        ResultsError: one line, ``"<source>: <what is wrong>"``.
    """

    def fail(what: str) -> ResultsError:
        return ResultsError(f"{source}: {what}")

    if not isinstance(result, dict):
        raise fail(f"not a results file (expected a JSON object, got {_json_type(result)})")
    if "results" not in result:
        keys = ", ".join(map(repr, list(result)[:5])) or "none"
        raise fail(f"not in the results schema: no 'results' object (top-level keys: {keys})")
    for key in ("name", "description"):
        if key in result and not isinstance(result[key], str):
            raise fail(f"'{key}' must be a string, got {_json_type(result[key])}")
    res = result["results"]
    if not isinstance(res, dict):
        raise fail(f"'results' must be an object of lists, got {_json_type(res)}")
    if "bpp" not in res:
        raise fail(f"'results' has no 'bpp' list (keys: {', '.join(map(repr, res)) or 'none'})")
    if not any(k.startswith(QUALITY_PREFIXES) for k in res):
        raise fail(f"'results' has no quality metric such as 'psnr-rgb' or 'ms-ssim-rgb' (keys: {', '.join(map(repr, res))})")
    n = None
    for key, values in res.items():
        if not isinstance(values, list):
            raise fail(f"results['{key}'] must be a list (one entry per RD point), got {_json_type(values)}")
        if not values:
            raise fail(f"results['{key}'] is empty")
        _check_numbers(values, f"results['{key}']", fail)
        if n is None:
            n, first = len(values), key
        elif len(values) != n:
            raise fail(f"lists of unequal length: results['{key}'] has {len(values)} values, results['{first}'] has {n}")
    if any(b < 0 for b in res["bpp"]):
        raise fail("results['bpp'] has a negative value")
    meta = result.get("meta")
    if meta is not None:
        if not isinstance(meta, dict):
            raise fail(f"'meta' must be an object, got {_json_type(meta)}")
        for key in _PER_POINT_META:
            if isinstance(meta.get(key), list) and len(meta[key]) != n:
                raise fail(f"meta['{key}'] has {len(meta[key])} values but there are {n} RD points")
    if "per_image" in result and not isinstance(result["per_image"], dict):
        raise fail(f"'per_image' must be an object, got {_json_type(result['per_image'])}")


def save(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Validate ``result`` and write it to ``path`` as JSON, atomically.

    Nothing is written when the result is invalid or cannot be serialised, and a failed
    write leaves any previous file at ``path`` untouched. Numbers are written exactly
    (Python's shortest round-trip representation); numpy scalars and arrays and torch
    tensors in ``meta``/``per_image`` are converted with ``.tolist()``.

    Args:
        result: a dict in the results schema.
        path: the file to write; missing parent folders are created.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ResultsError: the result is invalid or not serialisable, or the file cannot be written.
    """
    path = Path(path)
    validate(result, source=str(path))
    data = dumps(result, source=str(path))
    try:
        write_atomic(path, data.encode("utf-8"))
    except OSError as err:
        raise ResultsError(f"{path}: cannot write the results file ({err.strerror or err})") from None
    log.debug("saved %s: %d RD points", path, len(result["results"]["bpp"]))
    return path


def dumps(result: dict[str, Any], source: str = "results") -> str:
    """The JSON text :func:`save` writes: two-space indents, each list of numbers on one line,
    a final newline. Raises :class:`~gabic.errors.ResultsError` for values JSON cannot hold."""
    try:
        return _format(result, 0) + "\n"
    except (TypeError, ValueError) as err:
        raise ResultsError(f"{source}: cannot write as JSON ({err})") from None


def points(result: dict[str, Any], metric: str = "psnr-rgb") -> list[tuple[float, float]]:
    """The RD points of one metric as ``(bpp, value)`` pairs sorted by bpp.

    The pairs are kept together (bpp and the metric are never sorted separately).
    ``"ms-ssim-db-rgb"`` is derived as ``-10 * log10(1 - ms_ssim)`` from ``"ms-ssim-rgb"`` when
    the file has only the linear MS-SSIM, so curves from CompressAI (linear) and from the STF
    repository (dB) can share an axis.

    Args:
        result: a dict in the results schema (validated here).
        metric: a key of ``result["results"]`` (default ``"psnr-rgb"``).

    Raises:
        ResultsError: the result is invalid or has no such metric (the message lists those it has).
    """
    name = result.get("name", "results") if isinstance(result, dict) else "results"
    validate(result, source=str(name))
    res = result["results"]
    if metric in res:
        values = res[metric]
    elif metric == "ms-ssim-db-rgb" and "ms-ssim-rgb" in res:
        if any(v >= 1 for v in res["ms-ssim-rgb"]):
            raise ResultsError(f"{name}: cannot express MS-SSIM in dB: a value of 'ms-ssim-rgb' is >= 1")
        values = [-10 * math.log10(1 - v) for v in res["ms-ssim-rgb"]]
    else:
        have = ", ".join(repr(k) for k in res if k != "bpp")
        raise ResultsError(f"{name}: no metric {metric!r} (it has {have})")
    return sorted(zip(res["bpp"], values, strict=True))


def has_metric(result: dict[str, Any], metric: str) -> bool:
    """Whether :func:`points` can give ``metric`` for ``result`` (``ms-ssim-db-rgb`` derived from linear MS-SSIM counts)."""
    try:
        points(result, metric)
    except ResultsError:
        return False
    return True


def point_labels(result: dict[str, Any]) -> list[str]:
    """A short label per RD point, in the stored order: the checkpoint's file name
    (``meta["checkpoint"]``), else ``q=<quality>``, else ``lambda=<lambda>``, else its index."""
    meta = result.get("meta") or {}
    n = len(result["results"]["bpp"])
    for key, fmt in (("checkpoint", lambda v: Path(v).name), ("quality", lambda v: f"q={v}"), ("lambda", lambda v: f"lambda={v}")):
        values = meta.get(key)
        if isinstance(values, list) and len(values) == n and all(v is not None for v in values):
            return [fmt(v) for v in values]
    return [str(i) for i in range(n)]


def points_frame(result: dict[str, Any]):
    """The RD points of a result as a pandas DataFrame, one row per point in the stored order,
    indexed by :func:`point_labels`: every list of ``results`` as a column, and the per-point
    ``meta`` lists (``lambda``, ``quality``) beside them."""
    import pandas as pd

    name = result.get("name", "results") if isinstance(result, dict) else "results"
    validate(result, source=str(name))
    meta = result.get("meta") or {}
    columns = {k: meta[k] for k in _PER_POINT_META if isinstance(meta.get(k), list) and any(v is not None for v in meta[k])}
    columns |= result["results"]
    frame = pd.DataFrame(columns, index=pd.Index(point_labels(result), name="point"))
    return frame


def slug(name: str) -> str:
    """A file-name-safe form of a curve name: ``"GABIC (N=64, M=96)"`` -> ``"gabic-n64-m96"``."""
    return re.sub(r"[^a-z0-9.]+", "-", name.lower().replace("=", "")).strip("-") or "curve"


def per_image_frame(result: dict[str, Any]):
    """The per-image values of a result as a pandas DataFrame.

    One row per (image, point), indexed by ``image`` and ``point`` (see :func:`point_labels`),
    one column per measure of ``result["per_image"]`` (bpp, PSNR, MS-SSIM...); null values
    become NaN. Raises :class:`~gabic.errors.ResultsError` when the result has no per-image values.
    """
    import pandas as pd

    name = result.get("name", "results") if isinstance(result, dict) else "results"
    validate(result, source=str(name))
    per_image = result.get("per_image")
    if not per_image:
        raise ResultsError(f"{name}: no per-image values in this result")
    labels = point_labels(result)
    rows = []
    for image, values in per_image.items():
        for i, label in enumerate(labels):
            rows.append(
                {"image": image, "point": label, **{k: (v[i] if v[i] is not None else float("nan")) for k, v in values.items()}}
            )
    return pd.DataFrame(rows).set_index(["image", "point"])


def _resolve(name_or_path: str | os.PathLike) -> Path | Traversable:
    """A path to a results file from a path, or the package resource of a published name."""
    if not isinstance(name_or_path, str):
        return Path(name_or_path)
    text = name_or_path
    if Path(text).is_file() or text.endswith(".json") or "/" in text or os.sep in text:
        return Path(text)
    folder = published_dir()
    path = folder.joinpath(f"{text}.json")
    if path.is_file():
        return path
    names = list_published()
    close = difflib.get_close_matches(text, names, n=4, cutoff=0.5)
    close += [n for n in names if text.lower() in n.lower() and n not in close]
    hint = f"; close names: {', '.join(close[:5])}" if close else ""
    raise ResultsError(f"{text!r}: no such results file or published curve ({len(names)} curves in {folder}){hint}")


def _published_hint(path: Path) -> str:
    """A hint when a missing file's name is that of a published curve."""
    try:
        if path.suffix == ".json" and published_dir().joinpath(path.name).is_file() and not path.is_absolute():
            return f" (for the published curve, load({path.stem!r}))"
    except ResultsError:
        pass
    return ""


def _check_numbers(values: list[Any], where: str, fail) -> None:
    for i, v in enumerate(values):
        if not is_number(v):
            raise fail(f"{where}[{i}] is {_json_type(v)} {_short(v)}, expected a number")
        if not math.isfinite(v):
            raise fail(f"{where}[{i}] is {v}, expected a finite number")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    for cls, name in names.items():
        if type(value) is cls:
            return name
    if isinstance(value, numbers.Number):
        return "a number"
    return f"a {type(value).__name__}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _plain(value: Any) -> Any:
    """numpy / torch values as plain Python (``.tolist()``), paths as strings."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _format(value: Any, level: int) -> str:
    """JSON with two-space indents, where lists of scalars stay on one line."""
    if not isinstance(value, (dict, list, tuple, str, int, float, bool, type(None))):
        value = _plain(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        pad, inner = "  " * level, "  " * (level + 1)
        items = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"key {k!r} is not a string")
            items.append(f"{inner}{json.dumps(k)}: {_format(v, level + 1)}")
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        parts = [_format(v, level + 1) for v in value]
        if all(not isinstance(v, (dict, list, tuple)) for v in value):
            return "[" + ", ".join(parts) + "]"
        pad, inner = "  " * level, "  " * (level + 1)
        return "[\n" + ",\n".join(inner + p for p in parts) + "\n" + pad + "]"
    return json.dumps(value, allow_nan=False, ensure_ascii=False)
