"""GABIC's k at inference: rate and quality when every block's k changes, same weights."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from gabic._version import __version__
from gabic.image_sets import image_set_of_sizes
from gabic.images import ImageLike, as_rgb, image_to_tensor
from gabic.layers import check_knn
from gabic.measurement import forward_padded, forward_psnr, measure
from gabic.models import GABIC
from gabic.models.gabic import SMALLEST_WINDOW_NODES

__all__ = ["k_sweep"]


def _sweep_image(image: ImageLike, i: int) -> tuple[str, Image.Image]:
    """``(name, 8-bit RGB image)``: a path is named by its file, anything else ``image<i>``."""
    name = Path(image).name if isinstance(image, str | os.PathLike) else f"image{i}"
    return name, as_rgb(image)


def _check_ks(model: GABIC, ks: Sequence[int]) -> list[int]:
    if not isinstance(model, GABIC):
        raise ValueError(f"k_sweep needs a GABIC model, got {type(model).__name__}")
    if isinstance(ks, int) or not isinstance(ks, Sequence) or not ks:
        raise ValueError(f"ks must be a non-empty list of integers, got {ks!r}")
    for k in ks:
        check_knn(k, SMALLEST_WINDOW_NODES)  # as GABIC.set_knn will
    if len(set(ks)) != len(ks):
        raise ValueError(f"ks has repeated values: {list(ks)}")
    return list(ks)


def _estimate(model: GABIC, img: Image.Image) -> dict[str, float]:
    """bpp from the likelihoods and PSNR of the 8-bit-rounded reconstruction of the forward pass."""
    _, x_hat, bpp = forward_padded(model, image_to_tensor(img))
    return {"bpp": bpp, "psnr-rgb": forward_psnr(img, x_hat)}


def k_sweep(
    model: GABIC,
    images: ImageLike | Sequence[ImageLike],
    ks: Sequence[int],
    real_coding: bool = False,
    name: str | None = None,
    dataset: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Rate and quality of a GABIC model when every block's k is changed at inference (same weights).

    For every k (:meth:`GABIC.set_knn`) and every image: bpp and PSNR (8-bit RGB, on the image
    cropped back from the padding), the mean over images per k. The model's k of every block is
    restored afterwards, even on error.

    Args:
        model: a GABIC model.
        images: one image or a list (paths, PIL images or ``(1, 3, H, W)`` tensors in [0, 1]).
        ks: the k values, each in ``1..n-1`` of the smallest window (1..15 for 4x4 windows).
        real_coding: False: bpp estimated from the likelihoods of the forward pass and PSNR of its
            reconstruction; True: real coding with :func:`gabic.measurement.measure` (bpp of
            the y and z strings, as :func:`gabic.evaluate.evaluate_checkpoints`; ``bpp-file`` beside it per image).
        name: the result's name (default ``"<model> k sweep"``).
        dataset: ``meta["dataset"]`` (default: the image names joined).
        progress: show a tqdm bar.

    Returns:
        A dict in the results schema (:func:`gabic.results.validate`): ``results`` ``{"bpp", "psnr-rgb"}``
        with one point per k in the order of ``ks``, ``meta`` ``{"knn", "trained_knn", "images",
        "num_images", "image_set", "dataset", "estimate" ("likelihoods" or "bitstream"), "model",
        "source"}`` and ``per_image`` ``{name: {"bpp", "psnr-rgb"}}``. Save it with
        :func:`gabic.results.save`.
    """
    ks = _check_ks(model, ks)
    items = list(images) if isinstance(images, list | tuple) else [images]
    if not items:
        raise ValueError("images is empty: give at least one image")
    named = [_sweep_image(im, i) for i, im in enumerate(items)]
    names = [n for n, _ in named]
    blocks = model.graph_attentions()
    original = {n: m.knn for n, m in blocks.items()}
    values: dict[tuple[int, int], dict[str, Any]] = {}
    try:
        with tqdm(total=len(ks) * len(named), desc="k sweep", unit="image", disable=not progress) as bar:
            for j, k in enumerate(ks):
                model.set_knn(k)
                for i, (_, img) in enumerate(named):
                    values[i, j] = measure(model, img).record() if real_coding else _estimate(model, img)
                    bar.update(1)
    finally:
        for n, m in blocks.items():
            m.knn = original[n]
    trained = sorted(set(original.values()))
    keys = ("bpp", "psnr-rgb")
    per_image = {names[i]: {key: [values[i, j][key] for j in range(len(ks))] for key in keys} for i in range(len(named))}
    if real_coding:
        for i in range(len(named)):
            per_image[names[i]]["bpp-file"] = [values[i, j]["bpp-file"] for j in range(len(ks))]
    results = {key: [float(np.mean([values[i, j][key] for i in range(len(named))])) for j in range(len(ks))] for key in keys}
    meta = {
        "knn": ks,
        "trained_knn": trained[0] if len(trained) == 1 else original,
        "images": names,
        "num_images": len(names),
        "image_set": image_set_of_sizes([(n, *img.size) for n, img in named], dataset or ", ".join(names)),
        "dataset": dataset or ", ".join(names),
        "estimate": "bitstream" if real_coding else "likelihoods",
        "model": model.config,
        "source": f"measured with gabic {__version__}",
    }
    label = "bpp of the y and z strings" if real_coding else "bpp estimated from the likelihoods"
    return {
        "name": name or f"{model.name} k sweep",
        "description": f"{model.name} with k neighbours per node changed at inference, same weights ({label}, PSNR on 8-bit RGB)",
        "results": results,
        "meta": meta,
        "per_image": per_image,
    }
