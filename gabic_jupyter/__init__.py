"""gabic's Jupyter server extension: a notebook is saved so that it reopens without "Error displaying
widget: model not found".

JupyterLab saves a notebook's widget outputs (each names a widget model) and, with *Save Widget State
Automatically* on (gabic's install makes it the default, ``jupyter-config/lab-overrides.json``), the
state of the models the kernel has. A notebook reopened with a new kernel shows its widgets from the
saved state, but the next save (autosave, two minutes later) writes the new kernel's models, none, while
the outputs still name the old ones; the time after, every widget output is "model not found".

:func:`pre_save` runs before each save of a notebook (a pre-save hook of the server's contents manager,
registered by the extension): a widget output whose model is not in the state being saved gets that
model's state, and that of the models it refers to, from the notebook as it is on disk; an output whose
model is in neither loses its widget view (the whole output where nothing but text is left). So the
explorers a notebook last showed reopen as they were, and nothing reopens as an error.

Enabled by ``etc/jupyter/jupyter_server_config.d/gabic.json`` (``jupyter-config/server-config.json``),
which gabic's install puts in the environment. It imports nothing of gabic (no torch): only the standard
library, so that ``jupyter lab`` starts as fast as without it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["WIDGET_STATE", "WIDGET_VIEW", "mend_widget_state", "missing_models", "model_references", "pre_save"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_REFERENCE = "IPY_MODEL_"

log = logging.getLogger(__name__)


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "gabic_jupyter"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    serverapp.contents_manager.register_pre_save_hook(pre_save)
    serverapp.log.info("gabic_jupyter: notebooks are saved with the widget state their outputs need")


def _outputs(notebook: dict) -> list[dict]:
    return [o for c in notebook.get("cells", []) if c.get("cell_type") == "code" for o in c.get("outputs", [])]


def _view_model(output: dict) -> str | None:
    view = output.get("data", {}).get(WIDGET_VIEW)
    return (view.get("model_id") or None) if isinstance(view, dict) else None


def model_references(value: Any) -> set[str]:
    """The model ids ``value`` (a model's state) refers to (``"IPY_MODEL_<id>"`` strings, at any depth
    of dicts, lists and tuples)."""
    if isinstance(value, str):
        return {value[len(_REFERENCE) :]} if value.startswith(_REFERENCE) else set()
    if isinstance(value, dict):
        return set().union(*map(model_references, value.values()))
    if isinstance(value, list | tuple):
        return set().union(*map(model_references, value))
    return set()


def _widget_state(notebook: dict) -> dict | None:
    saved = notebook.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE)
    return saved if isinstance(saved, dict) and isinstance(saved.get("state"), dict) else None


def missing_models(notebook: dict) -> set[str]:
    """The models ``notebook``'s widget outputs name that its saved widget state does not hold."""
    saved = _widget_state(notebook)
    state = saved["state"] if saved is not None else {}
    return {m for o in _outputs(notebook) if (m := _view_model(o)) is not None and m not in state}


def mend_widget_state(notebook: dict, previous: dict | None = None) -> tuple[int, int]:
    """Make ``notebook`` (nbformat 4 as a dict, changed in place) reopen without a missing widget model.

    Each widget output's model not in the notebook's saved widget state is taken, with every model
    it refers to, from ``previous`` (the same notebook as saved before, or None); the widget view of an
    output whose model is in neither is removed, and the output with it unless it holds more than
    text. A notebook without widget outputs is left as it is.

    Returns:
        ``(carried, dropped)``: the number of models taken from ``previous`` and of widget views removed.
    """
    outputs = [(o, m) for o in _outputs(notebook) if (m := _view_model(o)) is not None]
    if not outputs:
        return 0, 0
    saved = _widget_state(notebook)
    state = saved["state"] if saved is not None else {}
    old = _widget_state(previous) if previous is not None else None
    carried = 0
    if old is not None:
        wanted = [m for _, m in outputs if m not in state]
        while wanted:
            model = wanted.pop()
            if model in state or model not in old["state"]:
                continue
            state[model] = old["state"][model]
            carried += 1
            wanted += sorted(model_references(state[model].get("state", {})))
        if carried and saved is None:
            versions = {k: old[k] for k in ("version_major", "version_minor") if k in old}
            notebook.setdefault("metadata", {}).setdefault("widgets", {})[WIDGET_STATE] = {"state": state, **versions}
    dropped, emptied = 0, set()
    for output, model in outputs:
        if model in state:
            continue
        del output["data"][WIDGET_VIEW]
        dropped += 1
        if set(output["data"]) <= {"text/plain"}:  # the widget's repr is all that is left: nothing to show
            emptied.add(id(output))
    if emptied:
        for cell in notebook["cells"]:
            if cell.get("cell_type") == "code":
                cell["outputs"] = [o for o in cell.get("outputs", []) if id(o) not in emptied]
    return carried, dropped


def pre_save(model: dict, path: str, contents_manager: Any = None, **kwargs: Any) -> None:
    """The pre-save hook: :func:`mend_widget_state` on a notebook being saved whose widget outputs name
    models its state lacks (:func:`missing_models`), with the notebook as it is on disk (under the
    contents manager's ``root_dir``) as ``previous``."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict) or not missing_models(model["content"]):
        return  # the common case (a live kernel's save): nothing read, nothing changed
    logger = getattr(contents_manager, "log", log)
    previous = None
    root = getattr(contents_manager, "root_dir", None)
    if root:
        on_disk = Path(root, *[p for p in str(path).split("/") if p])
        try:
            previous = json.loads(on_disk.read_text(encoding="utf-8")) if on_disk.is_file() else None
        except (OSError, ValueError) as err:
            logger.warning("gabic_jupyter: %s as saved before could not be read (%s): its widget state is not carried over", path, err)
    carried, dropped = mend_widget_state(model["content"], previous)
    if carried or dropped:
        logger.info(
            "gabic_jupyter: %s: %d widget models kept from its last save, %d widget views without a model removed",
            path,
            carried,
            dropped,
        )
