"""GABIC against WACNN over a folder: every measure of :mod:`gabic.analysis` in one results file
and one figure sheet.

:func:`compare_report` takes two sets of checkpoints (one per architecture, one checkpoint per
rate), measures both curves over the folder through the one measurement path
(:func:`gabic.evaluate.evaluate_checkpoints`), computes the BD-rate of the first against the
second on that folder, pairs each checkpoint of the first with the second's nearest in rate, and
for each pair and image: the tile comparison (:func:`~gabic.analysis.compare.compare_models`),
the normalised residual's spatial correlation, the redundancy of each attention block's tokens
and the attention measures at each block. :func:`save_report` writes the JSON and the sheet
(:func:`~gabic.analysis.drawing.draw_report`, with its CSV).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from gabic._version import __version__
from gabic.analysis.attention import ATTENTION_MEASURES, attention_comparison
from gabic.analysis.compare import ModelComparison, check_different_checkpoints, check_tile, compare_models, pair_names
from gabic.analysis.drawing import draw_report
from gabic.analysis.latent import residual_correlation
from gabic.analysis.redundancy import REDUNDANCY_MEASURES, block_redundancy
from gabic.checkpoints import load_checkpoint
from gabic.errors import GabicError
from gabic.evaluate import CHECKPOINT_SUFFIXES, checkpoints_by_architecture, evaluate_checkpoints, find_checkpoints, read_images
from gabic.files import write_atomic
from gabic.images import as_rgb
from gabic.metrics import bd_psnr, bd_rate
from gabic.models import LearnedCodec
from gabic.notebooks import notebook01_checkpoint
from gabic.released import released_checkpoints
from gabic.results import finite_or_none
from gabic.train.like import fit_like, held_out_images
from gabic.viz.capture import AttentionCapture, BlockCapture, capture

__all__ = ["REPORT_KIND", "ImageAnalysis", "analyse_image", "compare_report", "default_pair", "load_report", "save_report"]

log = logging.getLogger(__name__)

#: ``kind`` of a report file (not an RD results file: it holds two curves and the analyses).
REPORT_KIND = "gabic-comparison-report"


def _one_curve(curves: list[dict[str, Any]], which: str) -> dict[str, Any]:
    if len(curves) != 1:
        names = ", ".join(c["name"] for c in curves)
        raise GabicError(
            f"{which}: the checkpoints must be one architecture and configuration (one curve), got {len(curves)}: {names}"
        )
    return curves[0]


def _bd(test: dict[str, Any], anchor: dict[str, Any], names: tuple[str, str]) -> dict[str, Any]:
    """BD-rate (%) and BD-PSNR (dB) of ``test`` against ``anchor`` (labelled ``names``: test, anchor), with
    the method used (cubic with 4 or more points per curve, else pchip); None and the reason when the
    curves do not allow it."""
    a, t = anchor["results"], test["results"]
    n = min(len(a["bpp"]), len(t["bpp"]))
    method = "cubic" if n >= 4 else "pchip"
    if n < 2:
        note = f"a BD-rate needs 2 or more rate points per model; the curves have {len(t['bpp'])} and {len(a['bpp'])}"
        return {"bd_rate": None, "bd_psnr": None, "method": None, "note": note}
    try:
        return {
            "bd_rate": bd_rate(a["bpp"], a["psnr-rgb"], t["bpp"], t["psnr-rgb"], method=method, names=(names[1], names[0])),
            "bd_psnr": bd_psnr(a["bpp"], a["psnr-rgb"], t["bpp"], t["psnr-rgb"], method=method, names=(names[1], names[0])),
            "method": method,
            "note": None,
        }
    except ValueError as err:
        return {"bd_rate": None, "bd_psnr": None, "method": method, "note": str(err)}


def _pairs(first: dict[str, Any], second: dict[str, Any]) -> list[tuple[int, int]]:
    """For each point of ``first``, the index of ``second``'s point nearest in (log) rate."""
    a = np.log(np.asarray(first["results"]["bpp"], dtype=np.float64))
    b = np.log(np.asarray(second["results"]["bpp"], dtype=np.float64))
    return [(i, int(np.argmin(np.abs(b - x)))) for i, x in enumerate(a)]


def _finite_mean(values: torch.Tensor) -> float:
    v = values.double().reshape(-1)
    v = v[torch.isfinite(v)]
    return float(v.mean()) if v.numel() else math.nan


def _finite_median(values: torch.Tensor) -> float:
    v = values.double().reshape(-1)
    v = v[torch.isfinite(v)]
    return float(v.quantile(0.5)) if v.numel() else math.nan


@dataclass
class ImageAnalysis:
    """Everything :mod:`gabic.analysis` measures for two models on one image (tensors kept).

    Attributes:
        names: the two models' labels.
        comparison: the tile comparison (:func:`~gabic.analysis.compare.compare_models`), which
            holds both models' measurements and latent captures.
        captures: each model's attention capture (:func:`gabic.viz.capture`).
        residual_correlation: ``{name: (2m+1, 2m+1)}`` of each model's normalised residual.
        redundancy: ``{block: {name: block_redundancy(...)}}`` for the blocks both models have.
        attention: ``{block: attention_comparison(...)}`` where one model has graph attention
            and the other window attention there.
    """

    names: tuple[str, str]
    comparison: ModelComparison = field(repr=False)
    captures: tuple[AttentionCapture, AttentionCapture] = field(repr=False)
    residual_correlation: dict[str, torch.Tensor] = field(repr=False)
    redundancy: dict[str, dict[str, dict[str, Any]]] = field(repr=False)
    attention: dict[str, dict[str, Any]] = field(repr=False)

    @property
    def blocks(self) -> list[str]:
        """The attention blocks both models have, in forward order."""
        return list(self.redundancy)

    def kind_names(self, block: str) -> dict[str, str]:
        """``{"graph": name, "window": name}``: which model has which kind of attention at ``block``."""
        return {cap[block].kind: n for n, cap in zip(self.names, self.captures, strict=True)}

    def block_pair(self, block: str) -> dict[str, BlockCapture]:
        """``{"graph": ..., "window": ...}``: the two captured blocks at ``block``."""
        pair = [cap[block] for cap in self.captures]
        return {b.kind: b for b in pair}

    def summary(self) -> dict[str, Any]:
        """The analysis in numbers only (floats and lists, ready for JSON): the comparison's
        summary and tiles, the residual correlations, per block and model the median over
        windows of each redundancy measure, and per block and model the mean over valid nodes
        and heads (and per head) of each attention measure."""
        out: dict[str, Any] = {"summary": self.comparison.summary(), "tiles": self.comparison.tiles}
        out["residual_correlation"] = {n: c.tolist() for n, c in self.residual_correlation.items()}
        out["redundancy"] = {
            block: {
                n: {m: _finite_median(r[m]) for m in REDUNDANCY_MEASURES} | {"windows": int((r["count"] >= 2).sum())}
                for n, r in per_model.items()
            }
            for block, per_model in self.redundancy.items()
        }
        attention: dict[str, Any] = {}
        for block, ac in self.attention.items():
            label = self.kind_names(block)
            attention[block] = {"k": ac["k"]}
            for kind in ("graph", "window"):
                side = ac[kind]
                attention[block][label[kind]] = {m: _finite_mean(side[m]) for m in ATTENTION_MEASURES} | {
                    "per_head": {m: [_finite_mean(h) for h in side[m]] for m in ATTENTION_MEASURES},
                    "uniform_share": side["uniform_share"],
                    "entropy_max": side["entropy_max"],
                }
        out["attention"] = attention
        return out


def analyse_image(
    models: tuple[LearnedCodec, LearnedCodec],
    image: str | os.PathLike | Image.Image,
    names: tuple[str, str] | None = None,
    tile: int = 64,
    k: int | None = None,
    max_offset: int = 2,
) -> ImageAnalysis:
    """Everything :mod:`gabic.analysis` measures for two models (GABIC and WACNN) on one image:
    the tile comparison, the residual correlations, the redundancy at every block and the
    attention compared at every block (see :class:`ImageAnalysis`). ``names`` default: the
    architectures' display names (:func:`~gabic.analysis.compare.pair_names`)."""
    img = as_rgb(image)
    names = pair_names(models[0].name, models[1].name, names)
    comp = compare_models(models[0], models[1], img, tile=tile, names=names)
    caps = (capture(models[0], img), capture(models[1], img))
    residual = {n: residual_correlation(c.residual, max_offset) for n, c in zip(names, comp.captures, strict=True)}
    redundancy: dict[str, dict[str, dict[str, Any]]] = {}
    attention: dict[str, dict[str, Any]] = {}
    for block in caps[0].names():
        if block not in caps[1].blocks:
            continue
        redundancy[block] = {n: block_redundancy(cap[block]) for n, cap in zip(names, caps, strict=True)}
        if {cap[block].kind for cap in caps} == {"graph", "window"}:
            attention[block] = attention_comparison(caps[0][block], caps[1][block], k=k)
    return ImageAnalysis(tuple(names), comp, caps, residual, redundancy, attention)


def default_pair(
    first: str | os.PathLike | list[str | os.PathLike] | None = None,
    second: str | os.PathLike | list[str | os.PathLike] | None = None,
    released_dir: str | os.PathLike | None = None,
    root: str | os.PathLike = "..",
    steps: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> tuple[list[Path], list[Path], list[Path] | None]:
    """The GABIC and WACNN checkpoints to compare, and the images to compare them on.

    In order: ``first`` and ``second`` when both are given; else the released GABIC and WACNN
    checkpoints in ``released_dir`` when it holds both families (the catalogue's files,
    :func:`gabic.released.released_checkpoints`, checked against the lock; else any checkpoints
    there, :func:`gabic.evaluate.checkpoints_by_architecture`); else ``first`` (default: notebook 01's
    best checkpoint, else the demo's, :func:`gabic.notebooks.notebook01_checkpoint` under ``root``)
    against a WACNN trained exactly the way that run was (:func:`gabic.train.fit_like`, in
    ``<run>-wacnn`` beside it; trained now when it has no ``best.pth.tar`` yet, with ``steps``
    when given).

    Returns:
        ``(first checkpoints, second checkpoints, images)``: ``images`` is the run's held-out
        photos (:func:`gabic.train.held_out_images`) for a trained pair, None otherwise (the
        caller's choice; the released models were trained on neither).

    Raises:
        GabicError: a checkpoint without its run's ``config.json`` when a WACNN has to be trained
            like it (give ``second`` then).
    """
    if first is not None and second is not None:
        return find_checkpoints(first), find_checkpoints(second), None
    if released_dir is not None and Path(released_dir).is_dir():
        groups: dict[str, list[Path]] = {}
        for entry, path in released_checkpoints(None, released_dir):  # the catalogue's, checked against the lock
            groups.setdefault(entry.architecture, []).append(path)
        if not ("gabic" in groups and "wacnn" in groups):  # any other checkpoints put there
            found = [p for p in Path(released_dir).iterdir() if p.is_file() and p.name.endswith(CHECKPOINT_SUFFIXES)]
            groups = checkpoints_by_architecture(sorted(found)) if found else {}
        if "gabic" in groups and "wacnn" in groups:
            log.info("comparing the released checkpoints in %s", released_dir)
            return groups["gabic"], groups["wacnn"], None
    gabic = find_checkpoints(first if first is not None else notebook01_checkpoint(root))
    run = gabic[0].parent
    if not (run / "config.json").is_file():
        raise GabicError(
            f"{gabic[0]}: no config.json of its run beside it to train a WACNN the same way; give the WACNN checkpoints too"
        )
    partner = run.parent / f"{run.name}-wacnn"
    if not (partner / "best.pth.tar").is_file():
        log.info("training a WACNN the way %s was trained, into %s", run, partner)
        fit_like(run, "wacnn", progress=progress, steps=steps, device=device)
    return gabic, [partner / "best.pth.tar"], held_out_images(run)


def compare_report(
    first: str | os.PathLike | list[str | os.PathLike],
    second: str | os.PathLike | list[str | os.PathLike],
    dataset: str | os.PathLike | list[str | os.PathLike] | None = None,
    names: tuple[str, str] | None = None,
    device: str = "auto",
    tile: int = 64,
    k: int | None = None,
    max_offset: int = 2,
    progress: bool = True,
    trust: bool = False,
) -> dict[str, Any]:
    """Compare two architectures (default GABIC against WACNN) over a folder of images.

    Args:
        first, second: each a checkpoint, a folder of checkpoints or a list: one architecture
            and configuration per side, one checkpoint per rate point.
        dataset: a folder of images or a list of image files (default the embedded sample photos).
        names: labels of the two sides (default: their architectures' display names, "GABIC" and
            "WACNN", numbered when both are one architecture).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        tile: tile side of the tile comparison (a multiple of 64).
        k: the kNN neighbourhood of the attention comparison (default: the graph block's k).
        max_offset: largest offset of the residual correlation.
        progress: progress bars.
        trust: unpickle checkpoints in full (see :func:`gabic.checkpoints.read_checkpoint`).

    Returns:
        ``{"kind", "names", "curves": [first, second] (RD results dicts), "bd": {"bd_rate",
        "bd_psnr", "method", "note"} (first against second as anchor), "pairs": [{"first": ckpt,
        "second": ckpt, "images": {file name: analysis}}], "meta": {...}}``; an image's analysis
        holds ``summary`` (both models' bpp, likelihood bpp, PSNR, MS-SSIM, share of tiles
        where the second spends fewer bits), ``tiles`` (:data:`~gabic.analysis.compare.TILE_COLUMNS`),
        ``residual_correlation`` per model ``(2m+1) x (2m+1)``, ``redundancy`` per block and
        model (medians over windows of :data:`~gabic.analysis.redundancy.REDUNDANCY_MEASURES`),
        ``attention`` per block and model (means over valid nodes and heads, and per head, of
        :data:`~gabic.analysis.attention.ATTENTION_MEASURES`).
    """
    check_tile(tile)
    if isinstance(max_offset, bool) or not isinstance(max_offset, int) or max_offset < 1:
        raise ValueError(f"max_offset must be a positive integer, got {max_offset!r}")
    if names is not None:
        pair_names("", "", names)  # two different labels, checked before any coding
    first, second = find_checkpoints(first), find_checkpoints(second)
    check_different_checkpoints(first, second)
    curves = []
    for which, ckpts in (("first", first), ("second", second)):
        curves.append(_one_curve(evaluate_checkpoints(ckpts, dataset, device=device, progress=progress, trust=trust), which))
    names = pair_names(curves[0]["meta"]["model"], curves[1]["meta"]["model"], names)
    images = read_images(dataset, load=True)  # the images evaluate_checkpoints measured
    pairs = []
    plan = _pairs(curves[0], curves[1])
    with tqdm(total=len(plan) * len(images.names), desc="compare", unit="image", disable=not progress) as bar:
        for i, j in plan:
            paths = (curves[0]["meta"]["checkpoint"][i], curves[1]["meta"]["checkpoint"][j])
            models = [load_checkpoint(p, device=device, trust=trust) for p in paths]
            per_image = {}
            for name, pixels in zip(images.names, images.pixels, strict=True):
                per_image[name] = analyse_image(models, pixels, names, tile, k, max_offset).summary()
                bar.update(1)
            pairs.append({"first": str(paths[0]), "second": str(paths[1]), "images": per_image})
    return {
        "kind": REPORT_KIND,
        "names": list(names),
        "curves": curves,
        "bd": _bd(curves[0], curves[1], names),
        "pairs": pairs,
        "meta": {
            "image_set": curves[0]["meta"].get("image_set"),
            "tile": tile,
            "k": k,
            "max_offset": max_offset,
            "gabic": __version__,
        },
    }


def _jsonable(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth, as None (:func:`gabic.results.finite_or_none`)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return finite_or_none(value)


def save_report(
    report: dict[str, Any],
    path: str | os.PathLike,
    figure: str | os.PathLike | None = None,
    formats: tuple[str, ...] = ("pdf", "png"),
) -> list[Path]:
    """Write the report to the JSON file ``path`` (NaN and infinity as null) and, with ``figure``
    (a path without extension), its figure sheet (:func:`~gabic.analysis.drawing.draw_report`) as
    ``<figure>.<format>`` with the data as CSV beside it; returns the paths written."""
    from gabic.plots import save_figure  # matplotlib: the plots extra

    written = [write_atomic(Path(path), json.dumps(_jsonable(report), indent=1).encode())]
    if figure is not None:
        written += save_figure(draw_report(report), figure, formats)
    return written


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    """Read a report written by :func:`save_report` (null values back as NaN where numbers are expected
    is left to the reader: they stay None)."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise GabicError(f"{path}: not a readable report ({err})") from None
    if not isinstance(report, dict) or report.get("kind") != REPORT_KIND:
        raise GabicError(f"{path}: not a gabic comparison report (kind {REPORT_KIND!r})")
    return report
