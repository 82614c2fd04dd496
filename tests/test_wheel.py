"""gabic installed from a wheel (not editable) works from any folder: the published curves, the
sample photos and the Kodak table ship as package data; the demo asks for the notebooks. The
JupyterLab default that saves widget state with a notebook, and the server config that enables
gabic_jupyter, ship as shared data, and this environment (an editable install) has them too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: gabic's JupyterLab default settings and the server config that enables gabic_jupyter, and where an
#: install puts them under the environment's prefix.
LAB_OVERRIDES = ROOT / "jupyter-config" / "lab-overrides.json"
OVERRIDES_AT = Path("share/jupyter/lab/settings/overrides.d/gabic.json")
SERVER_CONFIG = ROOT / "jupyter-config" / "server-config.json"
SERVER_CONFIG_AT = Path("etc/jupyter/jupyter_server_config.d/gabic.json")
WIDGETS_PLUGIN = "@jupyter-widgets/jupyterlab-manager:plugin"


def test_lab_overrides_set_a_setting_the_widget_manager_has():
    """The file names the widget manager's plugin and a boolean setting its own schema (shipped by
    jupyterlab_widgets) declares, and this environment's install put it where JupyterLab reads it."""
    overrides = json.loads(LAB_OVERRIDES.read_text())
    assert overrides == {WIDGETS_PLUGIN: {"saveState": True}}
    schema = Path(sys.prefix) / "share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager/schemas"
    schema = schema / WIDGETS_PLUGIN.replace(":", "/").replace("/plugin", "/plugin.json")
    if not schema.exists():
        pytest.skip(f"jupyterlab_widgets is not installed here ({schema} is missing): pip install 'gabic[notebooks]'")
    properties = json.loads(schema.read_text())["properties"]
    assert properties["saveState"]["type"] == "boolean" and properties["saveState"]["default"] is False
    installed = Path(sys.prefix) / OVERRIDES_AT
    assert installed.exists(), f"{installed} is missing: gabic was not installed with pip install -e . (README)"
    assert json.loads(installed.read_text()) == overrides


def test_server_config_enables_the_extension_and_is_installed():
    config = json.loads(SERVER_CONFIG.read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"gabic_jupyter": True}}}
    installed = Path(sys.prefix) / SERVER_CONFIG_AT
    assert installed.exists(), f"{installed} is missing: gabic was not installed with pip install -e . (README)"
    assert json.loads(installed.read_text()) == config


def _run(cmd: list, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_wheel_in_a_fresh_environment(tmp_path):
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, ROOT], cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("gabic-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "gabic/published/vtm.json" in names and "gabic/published/README.md" in names
    assert "gabic/kodak_pixels.sha256" in names and "gabic/sample_images/astronaut.png" in names
    assert not any(n.startswith(("tests/", "notebooks/", "results/")) for n in names)
    data = f"gabic-{wheel.name.split('-')[1]}.data/data"
    assert sorted(n for n in names if n.startswith(data)) == sorted(f"{data}/{p}" for p in (OVERRIDES_AT, SERVER_CONFIG_AT))
    assert "gabic_jupyter/__init__.py" in names

    # A fresh environment: gabic from the wheel, its dependencies (torch...) from this one's
    # site-packages, read as a plain path so that this environment's editable gabic stays out.
    venv = tmp_path / "venv"
    made = _run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    assert json.loads((venv / OVERRIDES_AT).read_text()) == json.loads(LAB_OVERRIDES.read_text())
    assert json.loads((venv / SERVER_CONFIG_AT).read_text()) == json.loads(SERVER_CONFIG.read_text())

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = "import gabic, gabic.results as r; print(gabic.__file__); print(r.load('vtm')['name']); print(len(r.list_published()))"
    shown = _run([python, "-c", probe], cwd=elsewhere)
    assert shown.returncode == 0, shown.stderr
    where, name, count = shown.stdout.split("\n")[:3]
    assert where.startswith(str(site)) and name and int(count) == 63

    gabic = venv / "bin" / "gabic"
    rd = _run([gabic, "rd", "vtm", "stf_mse", "--out", elsewhere / "figures", "--formats", "png"], cwd=elsewhere)
    assert rd.returncode == 0, rd.stderr
    assert (elsewhere / "figures" / "rd_psnr-rgb_single.png").stat().st_size > 1000
    codecs = _run([gabic, "codecs"], cwd=elsewhere)
    assert codecs.returncode == 0 and "jpeg" in codecs.stdout, codecs.stderr
    demo = _run([gabic, "demo", "--out", elsewhere / "demo"], cwd=elsewhere)
    assert demo.returncode == 1 and "gabic demo --notebooks DIR" in demo.stderr and "Traceback" not in demo.stderr
    notebooks = _run([gabic, "demo", "--out", elsewhere / "demo", "--notebooks", elsewhere / "none"], cwd=elsewhere)
    assert notebooks.returncode == 1 and "none: no such notebooks folder" in notebooks.stderr
    assert not (elsewhere / "demo").exists()
