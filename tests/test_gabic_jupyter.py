"""gabic_jupyter, the Jupyter server extension: a saved notebook's widget outputs always name models its
saved state holds (kept from the last save where the kernel has none), or lose their widget view."""

from __future__ import annotations

import copy
import json
import logging
import subprocess
import sys

import pytest

import gabic_jupyter
from gabic_jupyter import WIDGET_STATE, WIDGET_VIEW, mend_widget_state, missing_models, model_references, pre_save


def model(name: str, children: list[str] = ()) -> dict:
    """A widget model's saved state, referring to ``children``."""
    refs = [f"IPY_MODEL_{c}" for c in children]
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": {"children": refs}}


def view(model_id: str, **more) -> dict:
    """A display_data output of a widget view (and its text repr), plus ``more`` MIME types."""
    data = {"text/plain": f"Widget({model_id})", WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": model_id}, **more}
    return {"output_type": "display_data", "data": data, "metadata": {}}


def notebook(outputs: list[list[dict]], state: dict | None) -> dict:
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [{"cell_type": "code", "id": f"c{i}", "source": "x", "metadata": {}, "outputs": o, "execution_count": i}
                  for i, o in enumerate(outputs)],
    }  # fmt: skip
    if state is not None:
        nb["metadata"]["widgets"] = {WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    return nb


def saved_state(nb: dict) -> dict:
    return nb["metadata"]["widgets"][WIDGET_STATE]["state"]


def test_models_the_outputs_name_are_kept_from_the_last_save_with_all_they_refer_to():
    previous = notebook([[view("a")], [view("b")]], {"a": model("VBox", ["a1"]), "a1": model("HBox", ["a2"]), "a2": model("Image"),
                                                     "b": model("HTML"), "stale": model("Label")})  # fmt: skip
    reopened = notebook([[view("a")], [view("b")]], None)  # saved by a new kernel with no models and no state
    assert mend_widget_state(reopened, previous) == (4, 0)
    assert saved_state(reopened) == {k: previous["metadata"]["widgets"][WIDGET_STATE]["state"][k] for k in ("a", "a1", "a2", "b")}
    assert reopened["metadata"]["widgets"][WIDGET_STATE]["version_major"] == 2
    assert [c["outputs"] for c in reopened["cells"]] == [[view("a")], [view("b")]], "outputs untouched"
    assert model_references({"a": ("IPY_MODEL_x", ["IPY_MODEL_y", {"z": "IPY_MODEL_z"}]), "b": "text", "c": 3}) == {"x", "y", "z"}


def test_live_models_win_and_outputs_without_any_model_lose_their_view():
    previous = notebook([[view("old")]], {"old": model("HTML"), "shared": model("Layout")})
    printed = {"output_type": "stream", "name": "stdout", "text": "hi"}
    nb = notebook(
        [[view("new")], [view("old")], [view("gone")], [view("pic", **{"image/png": "iVBO"}), printed]],
        {"new": model("VBox", ["shared"]), "shared": model("Layout, live")},
    )
    assert mend_widget_state(nb, previous) == (1, 2)
    state = saved_state(nb)
    assert state["shared"] == model("Layout, live"), "a model of the state being saved is never replaced"
    assert set(state) == {"new", "shared", "old"}
    outputs = [c["outputs"] for c in nb["cells"]]
    assert outputs[:2] == [[view("new")], [view("old")]]
    assert outputs[2] == [], "an output with nothing but the widget's text repr left is removed"
    assert outputs[3][0]["data"] == {"text/plain": "Widget(pic)", "image/png": "iVBO"}, "an output with more than text keeps the rest"
    assert outputs[3][1]["text"] == "hi"


def test_without_a_previous_save_dangling_views_are_removed():
    nb = notebook([[view("a")]], {})
    assert mend_widget_state(nb, None) == (0, 1)
    assert nb["cells"][0]["outputs"] == []
    nb = notebook([[view("a")]], None)
    assert mend_widget_state(nb, notebook([], None)) == (0, 1), "a previous save without widget state carries nothing"


def test_a_notebook_without_widget_outputs_or_with_all_its_models_is_left_alone(tmp_path, caplog):
    plain = notebook([[{"output_type": "stream", "name": "stdout", "text": "x"}]], None)
    before = copy.deepcopy(plain)
    assert mend_widget_state(plain, notebook([[view("a")]], {"a": model("HTML")})) == (0, 0) and plain == before
    whole = notebook([[view("a")]], {"a": model("VBox", ["b"]), "b": model("HTML")})
    before = copy.deepcopy(whole)
    assert missing_models(whole) == set() and missing_models(notebook([[view("a")], [view("c")]], {})) == {"a", "c"}
    assert mend_widget_state(whole, None) == (0, 0) and whole == before
    (tmp_path / "n.ipynb").write_text("{not json")  # read, it would be logged: the file is not read when nothing is missing
    with caplog.at_level(logging.INFO, logger="test-contents"):
        pre_save(model={"type": "notebook", "content": whole}, path="n.ipynb", contents_manager=FakeContentsManager(tmp_path))
    assert whole == before and caplog.text == ""


class FakeContentsManager:
    def __init__(self, root):
        self.root_dir = str(root)
        self.log = logging.getLogger("test-contents")


def test_pre_save_reads_the_notebook_on_disk_and_leaves_other_files(tmp_path, caplog):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "n.ipynb").write_text(json.dumps(notebook([[view("a")]], {"a": model("HTML")})))
    reopened = {"type": "notebook", "content": notebook([[view("a")]], None)}
    with caplog.at_level(logging.INFO, logger="test-contents"):
        pre_save(model=reopened, path="sub/n.ipynb", contents_manager=FakeContentsManager(tmp_path))
    assert saved_state(reopened["content"]) == {"a": model("HTML")}
    assert "1 widget models kept from its last save, 0 widget views without a model removed" in caplog.text
    text = {"type": "file", "format": "text", "content": "{}"}
    pre_save(model=text, path="sub/n.ipynb", contents_manager=FakeContentsManager(tmp_path))
    assert text["content"] == "{}"

    (tmp_path / "bad.ipynb").write_text("{not json")
    broken = {"type": "notebook", "content": notebook([[view("a")]], None)}
    with caplog.at_level(logging.WARNING, logger="test-contents"):
        pre_save(model=broken, path="bad.ipynb", contents_manager=FakeContentsManager(tmp_path))
    assert "bad.ipynb as saved before could not be read" in caplog.text
    assert broken["content"]["cells"][0]["outputs"] == [], "unreadable: nothing carried, the dangling view removed"


def test_the_extension_hooks_jupyter_servers_contents_manager(tmp_path):
    """With jupyter_server's own FileContentsManager: the extension registers the hook, and a save of a
    notebook whose kernel has no models keeps the state the file had."""
    filemanager = pytest.importorskip("jupyter_server.services.contents.filemanager")
    assert gabic_jupyter._jupyter_server_extension_points() == [{"module": "gabic_jupyter"}]
    manager = filemanager.FileContentsManager(root_dir=str(tmp_path))

    class App:
        contents_manager = manager
        log = logging.getLogger("test-app")

    gabic_jupyter._load_jupyter_server_extension(App())
    first = notebook([[view("a")], [view("b")]], {"a": model("VBox", ["c"]), "c": model("Image")})
    manager.save({"type": "notebook", "format": "json", "content": first}, "n.ipynb")
    on_disk = json.loads((tmp_path / "n.ipynb").read_text())
    assert set(saved_state(on_disk)) == {"a", "c"}
    assert [len(c["outputs"]) for c in on_disk["cells"]] == [1, 0], "b had no model: its output was removed"
    manager.save({"type": "notebook", "format": "json", "content": notebook([[view("a")], []], None)}, "n.ipynb")
    assert set(saved_state(json.loads((tmp_path / "n.ipynb").read_text()))) == {"a", "c"}


def test_importing_the_extension_loads_no_torch():
    probe = "import sys, gabic_jupyter; print(sorted(m for m in ('torch', 'gabic', 'compressai') if m in sys.modules))"
    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "[]"
