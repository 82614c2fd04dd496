"""Train another architecture exactly the way a run was trained: the fair partner of a comparison.

GABIC's claim is a comparison with WACNN at the same rate point; a fair one needs both trained
on the same images with the same recipe. :func:`fit_like` reads a run's ``config.json`` and
trains another architecture with every setting of it (data, crops, batch, steps, learning rates,
lambda, seed, validation photos), only the architecture and the run name changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gabic.errors import GabicError
from gabic.models import model_class
from gabic.train.config import TrainConfig, saved_options
from gabic.train.loop import fit

__all__ = ["ARCHITECTURE_FIELDS", "fit_like", "held_out_images", "run_settings"]

#: The settings of a run that describe its architecture, not its training (and its name and what it
#: recorded by itself): not carried over as they are. Of its model's options, those the other
#: architecture takes too are carried over (sizes: a fair comparison at the same widths).
ARCHITECTURE_FIELDS = ("model", "options", "name", "extra")
#: Where the run was written: the new run goes beside the run's folder as it is now (the folder
#: may have moved since, as ``gabic demo`` moves its work into place).
_PLACE_FIELDS = ("runs_dir",)


def run_settings(run: str | os.PathLike) -> dict[str, Any]:
    """The training settings of a run (its folder or its ``config.json``), without
    :data:`ARCHITECTURE_FIELDS` but with the run's model options (``options``), ready for
    :func:`gabic.train.fit`.

    Raises:
        GabicError: no readable ``config.json``, or one that is not a gabic run's.
    """
    path = Path(run)
    path = path / "config.json" if path.is_dir() else path
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise GabicError(f"{path}: not a readable run configuration ({err})") from None
    if not isinstance(saved, dict) or "model" not in saved:
        raise GabicError(f"{path}: not a gabic run's config.json (no 'model')")
    known = set(TrainConfig.__dataclass_fields__)
    settings = {k: v for k, v in saved.items() if k in known and k not in ARCHITECTURE_FIELDS + _PLACE_FIELDS}
    settings["options"] = saved_options(saved)  # the run's model options, for fit_like to pick from
    if settings.get("epochs") is not None:
        settings.pop("steps", None)  # fit() wrote the steps its epochs came to: the epochs are the setting
    return settings


def held_out_images(run: str | os.PathLike) -> list[Path]:
    """The images a run used neither for training nor for choosing its checkpoint (recorded in its
    ``config.json`` by :func:`gabic.train.fit` as ``test_images``: the sample photos' test photo when
    it trained on them): the images a fair measurement of the run's models uses.

    Raises:
        GabicError: no readable ``config.json``, or one that records no such images (a run on a
            folder of its own, whose test images are the user's to give, or one from before gabic
            recorded them).
    """
    path = Path(run)
    path = path / "config.json" if path.is_dir() else path
    try:
        names = json.loads(path.read_text())["extra"]["test_images"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise GabicError(
            f"{path}: the run records no test images, images it used neither for training nor for validation "
            f"({type(err).__name__}: {err}); give the images to measure it on"
        ) from None
    return [Path(n) for n in names]


def fit_like(
    run: str | os.PathLike,
    model: str = "wacnn",
    name: str | None = None,
    progress: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
    **overrides: Any,
) -> dict[str, list[dict[str, float]]]:
    """Train ``model`` with the settings of ``run`` (a run folder holding ``config.json``).

    Args:
        run: the run to copy, e.g. ``results/runs/notebook01``.
        model: the architecture to train (default ``"wacnn"``).
        name: the new run's name (default ``"<run name>-<model>"``), beside ``run`` (in the
            folder that holds it) unless ``runs_dir`` is overridden.
        progress, callback: as :func:`gabic.train.fit`.
        **overrides: settings to change as well (``steps``, ``device``, ``runs_dir`` ...); any
            change makes the comparison less fair, so each is logged by :func:`fit`'s config.

    Returns:
        :func:`gabic.train.fit`'s history.
    """
    settings = run_settings(run)
    base = Path(run).resolve()
    base = base if base.is_dir() else base.parent
    settings["runs_dir"] = str(base.parent)
    takes = model_class(model).options()
    settings["options"] = {k: v for k, v in settings["options"].items() if k in takes}  # what the other architecture has too
    settings |= {k: v for k, v in overrides.items() if v is not None}
    return fit(None, progress=progress, callback=callback, model=model, name=name or f"{base.name}-{model}", **settings)
