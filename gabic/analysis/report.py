"""GABIC against WACNN over a folder: every measure of :mod:`gabic.analysis` in one results file
and one figure sheet.

:func:`compare_report` takes two sets of checkpoints (one per architecture, one checkpoint per
rate), measures both curves over the folder through the one measurement path
(:func:`gabic.evaluate.evaluate_checkpoints`), computes the BD-rate of the first against the
second on that folder, pairs each checkpoint of the first with the second's nearest in rate, and
for each pair and image: the tile comparison (:func:`~gabic.analysis.compare.compare_models`),
the normalised residual's spatial correlation, the redundancy of each attention block's tokens
and the attention measures at each block. Each image is coded once per checkpoint (the curves'
coding); the analyses reuse those measurements and add one forward pass per model and image.
:func:`save_report` writes the JSON and the sheet (:func:`~gabic.analysis.drawing.draw_report`,
with its CSV); :func:`load_report` reads it back (and the files of older versions).

Which checkpoints to compare (the released ones, notebook 01's run and a WACNN trained like it)
is the caller's business: :func:`gabic.notebooks.default_pair` for notebook 05 and ``gabic demo``.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from gabic._version import __version__
from gabic.analysis.attention import ATTENTION_MEASURES, attention_comparison
from gabic.analysis.compare import (
    ROLES,
    ModelComparison,
    check_different_checkpoints,
    check_tile,
    compare_models,
    comparison_of,
    pair_names,
    tile_quality,
)
from gabic.analysis.drawing import draw_report
from gabic.analysis.latent import LatentCapture, latent_capture, residual_correlation
from gabic.analysis.redundancy import REDUNDANCY_MEASURES, block_redundancy
from gabic.checkpoints import load_checkpoint
from gabic.checks import check_int
from gabic.errors import GabicError
from gabic.evaluate import evaluate_checkpoints, find_checkpoints, read_images
from gabic.files import write_atomic
from gabic.images import as_image_tensor, as_rgb
from gabic.measurement import Measurement
from gabic.metrics import bd_psnr, bd_rate
from gabic.models import LearnedCodec
from gabic.results import finite_or_none
from gabic.viz.capture import AttentionCapture, BlockCapture, blocks_from, capture, recording

__all__ = ["REPORT_KIND", "ImageAnalysis", "analyse_image", "compare_report", "load_report", "save_report"]

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
        """The analysis in numbers only (floats and lists, ready for JSON), each model's entries keyed
        by its role, ``"first"`` or ``"second"`` (:data:`~gabic.analysis.compare.ROLES`; the labels are
        :attr:`names`, kept by the caller once): the comparison's summary (its ``a`` and ``b``, without
        their names) and tiles, the residual correlations, per block and model the median over windows
        of each redundancy measure, and per block and model the mean over valid nodes and heads (and
        per head) of each attention measure."""
        role = dict(zip(self.names, ROLES, strict=True))
        summary = self.comparison.summary()
        for key in "ab":
            summary[key].pop("name")
        out: dict[str, Any] = {"summary": summary, "tiles": self.comparison.tiles}
        out["residual_correlation"] = {role[n]: c.tolist() for n, c in self.residual_correlation.items()}
        out["redundancy"] = {
            block: {
                role[n]: {m: _finite_median(r[m]) for m in REDUNDANCY_MEASURES} | {"windows": int((r["count"] >= 2).sum())}
                for n, r in per_model.items()
            }
            for block, per_model in self.redundancy.items()
        }
        attention: dict[str, Any] = {}
        for block, ac in self.attention.items():
            kind = {name: k for k, name in self.kind_names(block).items()}
            attention[block] = {"k": ac["k"]}
            for n in self.names:
                side = ac[kind[n]]
                attention[block][role[n]] = {m: _finite_mean(side[m]) for m in ATTENTION_MEASURES} | {
                    "per_head": {m: [_finite_mean(h) for h in side[m]] for m in ATTENTION_MEASURES},
                    "uniform_share": side["uniform_share"],
                    "entropy_max": side["entropy_max"],
                }
        out["attention"] = attention
        return out


def _analysis(
    names: tuple[str, str],
    comparison: ModelComparison,
    captures: tuple[AttentionCapture, AttentionCapture],
    k: int | None,
    max_offset: int,
) -> ImageAnalysis:
    """The analyses of two models on one image from their tile comparison and attention captures."""
    residual = {n: residual_correlation(c.residual, max_offset) for n, c in zip(names, comparison.captures, strict=True)}
    redundancy: dict[str, dict[str, dict[str, Any]]] = {}
    attention: dict[str, dict[str, Any]] = {}
    for block in captures[0].names():
        if block not in captures[1].blocks:
            continue
        redundancy[block] = {n: block_redundancy(cap[block]) for n, cap in zip(names, captures, strict=True)}
        if {cap[block].kind for cap in captures} == {"graph", "window"}:
            attention[block] = attention_comparison(captures[0][block], captures[1][block], k=k)
    return ImageAnalysis(tuple(names), comparison, captures, residual, redundancy, attention)


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
    return _analysis(names, comp, caps, k, max_offset)


@torch.no_grad()
def _one_pass(model: LearnedCodec, image: Image.Image) -> tuple[LatentCapture, AttentionCapture]:
    """:func:`~gabic.analysis.latent.latent_capture` and :func:`gabic.viz.capture` of ``model`` on
    ``image`` from one forward pass (:meth:`~gabic.models.LearnedCodec.forward_entropy`, the same pass
    and numbers as the forward pass :func:`gabic.viz.capture` runs): the attention blocks' inputs and
    outputs are recorded on the way, as :func:`gabic.viz.capture` records them."""
    with recording(model) as records:
        latent = latent_capture(model, image)
    x = as_image_tensor(image)
    blocks = blocks_from(model, records, x)
    return latent, AttentionCapture(getattr(model, "name", type(model).__name__), blocks, x, latent.x_hat, latent.likelihood_bpp)


def _pair_summary(
    models: tuple[LearnedCodec, LearnedCodec],
    image: Image.Image,
    coded: tuple[tuple[Measurement, list[tuple[float, float]]], tuple[Measurement, list[tuple[float, float]]]],
    names: tuple[str, str],
    tile: int,
    k: int | None,
    max_offset: int,
) -> dict[str, Any]:
    """``analyse_image(models, image, names, tile, k, max_offset).summary()`` from the images already
    coded (each model's measurement and :func:`~gabic.analysis.compare.tile_quality`) and one forward
    pass per model (:func:`_one_pass`): the same numbers without coding again."""
    (latent_a, attention_a), (latent_b, attention_b) = (_one_pass(m, image) for m in models)
    quality = (coded[0][1], coded[1][1])
    comparison = comparison_of(names, image, (coded[0][0], coded[1][0]), (latent_a, latent_b), tile, quality)
    return _analysis(names, comparison, (attention_a, attention_b), k, max_offset).summary()


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
        ``{"kind", "names": {"first": label, "second": label}, "curves": [first, second] (RD results
        dicts), "bd": {"bd_rate", "bd_psnr", "method", "note"} (first against second as anchor),
        "pairs": [{"first": ckpt, "second": ckpt, "images": {file name: analysis}}], "meta": {...}}``.
        The labels are stored once, under ``names``: every per-model entry is keyed by its role,
        ``"first"`` or ``"second"`` (:data:`~gabic.analysis.compare.ROLES`), whatever ``names`` is.
        An image's analysis holds ``summary`` (``a``: the first model's, ``b``: the second's bpp,
        likelihood bpp, PSNR, MS-SSIM; ``tile``, ``tiles`` and the share of tiles where the second
        spends fewer bits), ``tiles`` (:data:`~gabic.analysis.compare.TILE_COLUMNS`, ``_a``: first,
        ``_b``: second), ``residual_correlation`` ``{role: (2m+1) x (2m+1)}``, ``redundancy``
        ``{block: {role: ...}}`` (medians over windows of
        :data:`~gabic.analysis.redundancy.REDUNDANCY_MEASURES` and ``windows``), ``attention``
        ``{block: {"k", role: ...}}`` (means over valid nodes and heads, and per head, of
        :data:`~gabic.analysis.attention.ATTENTION_MEASURES`, ``uniform_share``, ``entropy_max``).

    Cost: every image is coded (encoded and decoded) once per checkpoint, by the curves' measurement
    (:func:`~gabic.evaluate.evaluate_checkpoints`, which also runs a forward pass for the likelihood
    rate); the analyses reuse those measurements and run one more forward pass per model of a pair
    and image (:meth:`~gabic.models.LearnedCodec.forward_entropy`, with the attention blocks recorded
    on the way). Each paired checkpoint is loaded once more for the analyses (one of the second
    side that is the nearest to several of the first is kept loaded while they follow each other,
    and runs its pass again for each). Memory: of each coded image only its numbers and its tiles'
    PSNR and MS-SSIM are kept (the pairs are known only after both curves), a few floats per tile
    and checkpoint, never the decoded images; two models and one image's captures at a time.
    """
    check_tile(tile)
    check_int(max_offset, "max_offset", 1)
    if names is not None:
        pair_names("", "", names)  # two different labels, checked before any coding
    first, second = find_checkpoints(first), find_checkpoints(second)
    check_different_checkpoints(first, second)
    images = read_images(dataset, load=True)  # the images evaluate_checkpoints measures, in its order
    measured: dict[tuple[str, int], tuple[Measurement, list[tuple[float, float]]]] = {}

    def keep(path: Path, index: int, m: Measurement, model: LearnedCodec) -> None:
        # the numbers the report needs of a coded image, not its pixels: the decoded image is reduced
        # to its tiles' PSNR and MS-SSIM at once (the pairs are known only once both curves are)
        measured[str(path), index] = (replace(m, decoded=None, data=b""), tile_quality(images.pixels[index], m.decoded, tile))

    curves = []
    for which, ckpts in (("first", first), ("second", second)):
        found = evaluate_checkpoints(ckpts, dataset, device=device, progress=progress, trust=trust, on_measure=keep)
        curves.append(_one_curve(found, which))
    names = pair_names(curves[0]["meta"]["model"], curves[1]["meta"]["model"], names)
    pairs = []
    plan = _pairs(curves[0], curves[1])
    held: tuple[str, LearnedCodec] | None = None  # the second's model, kept while the next pairs share it
    with tqdm(total=len(plan) * len(images.names), desc="compare", unit="image", disable=not progress) as bar:
        for i, j in plan:
            paths = (curves[0]["meta"]["checkpoint"][i], curves[1]["meta"]["checkpoint"][j])
            if held is None or held[0] != paths[1]:
                held = None  # the previous one let go before the next is loaded
                held = (paths[1], load_checkpoint(paths[1], device=device, trust=trust))
            models = (load_checkpoint(paths[0], device=device, trust=trust), held[1])
            per_image = {}
            for n, (name, pixels) in enumerate(zip(images.names, images.pixels, strict=True)):
                coded = (measured[paths[0], n], measured[paths[1], n])
                per_image[name] = _pair_summary(models, as_rgb(pixels), coded, names, tile, k, max_offset)
                bar.update(1)
            del models
            pairs.append({"first": str(paths[0]), "second": str(paths[1]), "images": per_image})
    return {
        "kind": REPORT_KIND,
        "names": dict(zip(ROLES, names, strict=True)),
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
    is left to the reader: they stay None). A report of an older gabic, whose per-model entries are
    keyed by the models' labels (``"names": [first, second]``), is read in the layout of
    :func:`compare_report`: keyed by role, the labels under ``names`` (:func:`_keyed_by_role`)."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise GabicError(f"{path}: not a readable report ({err})") from None
    if not isinstance(report, dict) or report.get("kind") != REPORT_KIND:
        raise GabicError(f"{path}: not a gabic comparison report (kind {REPORT_KIND!r})")
    return _keyed_by_role(report, path)


def _keyed_by_role(report: dict[str, Any], path: Path) -> dict[str, Any]:
    """``report`` in :func:`compare_report`'s layout. An old one (``"names": [label, label]``, the
    per-model entries of ``residual_correlation``, ``redundancy`` and ``attention`` keyed by label,
    each ``summary``'s ``a`` and ``b`` with their ``name``) is converted in place: labels to roles,
    ``names`` to ``{"first": label, "second": label}``, the summaries' names dropped."""
    names = report.get("names")
    if isinstance(names, dict) and set(names) == set(ROLES):
        return report
    if not (isinstance(names, list) and len(names) == 2 and names[0] != names[1]):
        raise GabicError(f"{path}: a report whose names are neither {{'first': ..., 'second': ...}} nor two labels: {names!r}")
    role = dict(zip(names, ROLES, strict=True))

    def by_role(per_model: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
        return {key: per_model[key] for key in keep if key in per_model} | {role[n]: per_model[n] for n in names if n in per_model}

    for pair in report.get("pairs", []):
        for analysis in pair.get("images", {}).values():
            for key in "ab":
                analysis.get("summary", {}).get(key, {}).pop("name", None)
            if "residual_correlation" in analysis:
                analysis["residual_correlation"] = by_role(analysis["residual_correlation"])
            for section, keep in (("redundancy", ()), ("attention", ("k",))):
                if section in analysis:
                    analysis[section] = {block: by_role(per_model, keep) for block, per_model in analysis[section].items()}
    report["names"] = dict(zip(ROLES, names, strict=True))
    return report
