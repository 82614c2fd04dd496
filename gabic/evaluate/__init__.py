"""Experiments over a set of images: RD points of codecs and checkpoints.

- :mod:`gabic.evaluate.codecs`: :func:`evaluate_codec` codes every image of a folder at every
  quality setting of a classical codec, in worker processes;
- :mod:`gabic.evaluate.checkpoints`: :func:`evaluate_checkpoints` codes them with every
  learned-codec checkpoint (one RD point each, grouped into one curve per architecture and
  configuration);
- :mod:`gabic.evaluate.results`: the results dict both build, and :func:`write_results`.

Every image is measured by :func:`gabic.measurement.measure` (real coding; bpp of the payload,
PSNR and MS-SSIM on 8-bit RGB), so the sweeps agree with each other and with CompressAI's
``eval_model`` and ``bench``. An RD point is the mean over the images. Results follow
CompressAI's results schema (``name``, ``description``, ``results``) plus ``meta`` (with the image
set, :mod:`gabic.image_sets`) and ``per_image``, so curves from either tool mix.

The images are read by :func:`gabic.image_sets.read_images`, checkpoints found by
:func:`gabic.checkpoints.find_checkpoints` and GABIC's k
sweep is :func:`gabic.k_sweep.k_sweep` (all three importable from here, as before).
"""

from __future__ import annotations

from gabic.checkpoints import CHECKPOINT_SUFFIXES, checkpoints_by_architecture, find_checkpoints
from gabic.evaluate.checkpoints import curve_label, evaluate_checkpoints
from gabic.evaluate.codecs import evaluate_codec
from gabic.evaluate.results import write_results
from gabic.image_sets import SAMPLES, Images, read_images
from gabic.k_sweep import k_sweep  # GABIC's own sweep, importable from here as before

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "SAMPLES_DATASET",
    "Images",
    "checkpoints_by_architecture",
    "curve_label",
    "evaluate_checkpoints",
    "evaluate_codec",
    "find_checkpoints",
    "k_sweep",
    "read_images",
    "write_results",
]

#: The ``meta["dataset"]`` of an evaluation over the embedded sample photographs.
SAMPLES_DATASET = SAMPLES
