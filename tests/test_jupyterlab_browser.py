"""The notebooks' widgets in JupyterLab in a real browser (headless Debian Chromium, driven by Playwright).

For each notebook with an interactive figure: copy it, with its small parameters (those of
``tests/test_notebooks.py``), into an empty folder; serve that folder with ``jupyter lab`` on
127.0.0.1 with a token; open the notebook in headless Chromium; run all cells; check that every code
cell ran without an error; check, at each of :data:`SCREENS`, from the page, that the widgets show
their pictures at their own pixel size (no stretching), that each figure's smallest text is at least
9 px on screen (the size its PNG records, ``gabic.widgets._base.SMALLEST_TEXT_KEY``, times the scale
the page shows it at), and that no control's text is clipped and no two controls overlap (bounding
boxes); move the widget's slider with the keyboard and check that the figure (the PNG in the
``ipywidgets.Image``) changes; twice, save the notebook, shut its kernel down, open it again and
check that every widget output shows again, pictures included, with no "Error displaying widget:
model not found" (the widget state saved with the notebook: gabic's JupyterLab default,
``jupyter-config/lab-overrides.json``, and its server extension ``gabic_jupyter``, which keeps the
state through the save of a reopened notebook). Screenshots of the page and the figure go to the test's
``tmp_path`` and, when the environment variable ``GABIC_SCREENSHOTS`` names a folder, there too.

Needs Debian's ``chromium`` (``.ci/run`` installs it) and the ``playwright`` package; skipped without them.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.browser import JupyterLab, NotebookPage, chromium, digest, unavailable

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipywidgets")

from tests.test_notebooks import NOTEBOOKS, SMALL_PARAMETERS  # noqa: E402

WHY_NOT = unavailable()

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")]

#: The notebooks with an interactive figure, and the description of the slider moved (None: the first enabled one).
SLIDERS = {
    "03_rd_curves.ipynb": "quality",
    "04_knn_attention.ipynb": "k",
}

#: The laptop screens a researcher reads the widgets on, and a desktop's: CSS pixels of the browser's page.
SCREENS = ((1280, 800), (1440, 900), (1920, 1080))

#: The smallest text a widget's figure may show, in CSS pixels on the page.
MIN_TEXT_PX = 9.0

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: Where gabic's install puts its JupyterLab default settings and enables its server extension
#: (pyproject.toml's shared data).
INSTALLED = (
    Path(sys.prefix) / "share/jupyter/lab/settings/overrides.d/gabic.json",
    Path(sys.prefix) / "etc/jupyter/jupyter_server_config.d/gabic.json",
)

#: Seconds allowed per step on a busy 2-core runner (each run takes far less).
OPEN_TIMEOUT, RUN_TIMEOUT, IMAGE_TIMEOUT = 120, 300, 60


def small_fields(tmp_path: Path) -> dict[str, str]:
    """The fields the small parameters of ``tests/test_notebooks.py`` may use (each notebook uses some):
    a small GABIC checkpoint (alone in the folder ``checkpoints``), a checkpoint path that does not exist
    (``missing``) and empty output folders."""
    from gabic.checkpoints import save_checkpoint
    from tests.conftest import small_model

    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    save_checkpoint(small_model("gabic"), checkpoints / "small-gabic.pth.tar", lmbda=0.0130)
    fields = {"checkpoint": checkpoints / "small-gabic.pth.tar", "checkpoints": checkpoints, "missing": tmp_path / "nope.pth.tar"}
    fields |= {f"{d}_dir": tmp_path / d for d in ("out", "figures", "results", "runs")}
    return {k: str(v) for k, v in fields.items()}


def copy_with_small_parameters(name: str, folder: Path, fields: dict[str, str]) -> Path:
    """The notebook, its small parameters injected after its parameters cell (as the headless tests
    and ``gabic demo`` do), written to ``folder``."""
    from gabic.notebooks import inject_parameters

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    try:
        inject_parameters(nb, SMALL_PARAMETERS[name].format(**fields))
    except KeyError as err:
        raise AssertionError(f"the small parameters of {name} use {{{err.args[0]}}}: add it to small_fields() in {__file__}") from None
    path = folder / name
    nbformat.write(nb, path)
    return path


@pytest.fixture
def screenshots(tmp_path, request):
    """The folder of this test's screenshots (``<notebook stem>-*.png``); copied to ``$GABIC_SCREENSHOTS`` at
    the end, failed or not, replacing that notebook's screenshots of an earlier run."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    yield folder
    if target := os.environ.get("GABIC_SCREENSHOTS"):
        target = Path(target)
        target.mkdir(parents=True, exist_ok=True)
        for old in target.glob(f"{Path(request.node.callspec.params['name']).stem}-*.png"):
            old.unlink()
        for f in folder.iterdir():
            shutil.copy2(f, target / f.name)


@pytest.mark.parametrize("name", sorted(SLIDERS))
def test_widget_figure_follows_slider_in_jupyterlab(name, tmp_path, screenshots):
    if not (NOTEBOOKS / name).exists():
        pytest.skip(f"notebooks/{name} does not exist yet")
    assert name in SMALL_PARAMETERS, f"tests/test_notebooks.py has no SMALL_PARAMETERS for {name}"
    stem = Path(name).stem
    shot = screenshots.joinpath
    root = tmp_path / "lab"
    root.mkdir()
    copy_with_small_parameters(name, root, small_fields(tmp_path))

    kernel_env = {
        "MPLBACKEND": None,  # the kernel's inline backend draws the figures
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # debugpy's frozen-modules note
        "OMP_NUM_THREADS": "1",  # see tests/test_notebooks.py: two OpenMP threads on a busy 2-core runner crawl
    }
    with (
        JupyterLab(root, tmp_path / "home", env=kernel_env, timeout=OPEN_TIMEOUT) as lab,
        chromium(tmp_path / "chromium-profile") as browser,
    ):
        page = browser.pages[0] if browser.pages else browser.new_page()
        notebook = NotebookPage(page, lab, name)
        failure = shot(f"{stem}-failure.png")

        clock = [("start", time.monotonic())]
        opened = notebook.open(OPEN_TIMEOUT, failure_shot=failure)
        clock.append(("open", time.monotonic()))
        assert opened["kernel"] == "python3", opened
        assert lab.api("kernelspecs")["kernelspecs"]["python3"]["spec"]["argv"][0] == sys.executable, "the kernel is this interpreter"

        ran = notebook.run_all(RUN_TIMEOUT, failure_shot=failure)
        clock.append(("run all", time.monotonic()))
        assert all(isinstance(n, int) for n in ran["executionCounts"]), ran

        widget, slider, img = notebook.explorer(SLIDERS[name], IMAGE_TIMEOUT)
        problems, smallest = {}, {}
        for width, height in SCREENS:  # the widget as a laptop shows it: pictures at their size, no clipped or overlapping control
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(500)  # JupyterLab lays the notebook out again
            widgets = page.locator(".jp-OutputArea-output").filter(has=page.locator("img.widget-image"))
            for i in range(widgets.count()):  # every explorer of the notebook (03: the RD and the quality explorer)
                widgets.nth(i).evaluate("(e) => e.scrollIntoView({block: 'start'})")
                page.screenshot(path=shot(f"{stem}-{width}x{height}-{i + 1}.png"))
                found = notebook.layout_problems(widgets.nth(i))
                for j, picture in enumerate(widgets.nth(i).locator("img.widget-image").all()):
                    if picture.is_visible() and (px := notebook.smallest_text(picture)) is not None:
                        smallest[f"{width}x{height}, widget {i + 1}, figure {j + 1}"] = px
                        if px < MIN_TEXT_PX:
                            found.append(f"figure {j + 1}: its smallest text is {px:.1f} px on screen, under {MIN_TEXT_PX}")
                if found:
                    problems[f"{width}x{height}, widget {i + 1}"] = found
        assert not problems, f"{name}: the widget at the screen sizes (screenshots {stem}-WxH-N.png): {problems}"
        assert len(smallest) >= len(SCREENS), f"{name}: no figure that records its text size was shown: {smallest}"
        widget.evaluate("(e) => e.scrollIntoView({block: 'center'})")  # the controls and the figure on the screenshots
        page.screenshot(path=shot(f"{stem}-1-executed.png"))
        widget.screenshot(path=shot(f"{stem}-widget-before.png"))
        src, before = img.get_attribute("src"), notebook.image_bytes(img)
        assert before.startswith(b"\x89PNG"), "the widget shows a PNG"
        shot(f"{stem}-figure-before.png").write_bytes(before)

        old, new = notebook.move_slider(slider)
        notebook.wait_for_new_image(img, src, IMAGE_TIMEOUT)
        after = notebook.image_bytes(img)
        clock.append(("slider", time.monotonic()))
        shot(f"{stem}-figure-after.png").write_bytes(after)
        widget.screenshot(path=shot(f"{stem}-widget-after.png"))
        page.screenshot(path=shot(f"{stem}-2-slider-moved.png"))
        assert after.startswith(b"\x89PNG")
        assert digest(after) != digest(before), f"the figure did not change when the slider moved from {old} to {new}"
        assert notebook.state()["errors"] == [], "an error appeared in the outputs after the slider moved"

        # Saved, its kernel shut down, and opened again with a new kernel, twice, as a researcher comes
        # back to it: JupyterLab saves the widget state with the notebook (gabic's install sets this
        # default, jupyter-config/lab-overrides.json), so the explorers show again, pictures and all, and
        # no "Error displaying widget: model not found". The reopened notebook is saved again before it
        # is closed, as autosave does, while its new kernel has none of the models: gabic's server
        # extension (gabic_jupyter, jupyter-config/server-config.json) keeps their saved state.
        before_save = notebook.widget_outputs(IMAGE_TIMEOUT, failure_shot=failure)
        for visit in (1, 2):
            notebook.save(IMAGE_TIMEOUT, failure_shot=failure)
            saved = nbformat.read(root / name, as_version=4)
            state = saved.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
            assert state, f"visit {visit}: no widget state saved in {name}: are {INSTALLED} installed (pip install -e .)?"
            outputs = [o for c in saved.cells for o in c.get("outputs", [])]
            views = [o.data[WIDGET_VIEW]["model_id"] for o in outputs if WIDGET_VIEW in o.get("data", {})]
            assert len(views) == before_save["outputs"] and set(views) <= set(state), f"visit {visit}: outputs name models not saved"
            assert lab.end_sessions(), "the notebook's kernel was running"
            clock.append((f"save {visit}", time.monotonic()))
            notebook.open(OPEN_TIMEOUT, failure_shot=failure)
            reopened = notebook.widget_outputs(IMAGE_TIMEOUT, failure_shot=failure)
            clock.append((f"reopen {visit}", time.monotonic()))
            shown = page.locator(".jp-OutputArea-output").filter(has=page.locator("img.widget-image"))
            if shown.count():
                shown.last.evaluate("(e) => e.scrollIntoView({block: 'start'})")
            page.screenshot(path=shot(f"{stem}-3-reopened-{visit}.png"))
            assert reopened["errors"] == [], f"{name} reopened ({visit}): {reopened['errors']} (screenshot {stem}-3-reopened-*.png)"
            seen = (reopened["outputs"], reopened["images"])
            assert seen == (before_save["outputs"], before_save["images"]), (visit, before_save, reopened)
        print(
            f"{name}: " + ", ".join(f"{step} {t - clock[i][1]:.1f} s" for i, (step, t) in enumerate(clock[1:])),
            f"slider {old} -> {new}, smallest text on screen {min(smallest.values()):.1f} px, "
            f"{reopened['outputs']} widget outputs shown again after each of two reopenings",
        )

    left = sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    assert left == [name], "the notebook wrote into its working directory"
