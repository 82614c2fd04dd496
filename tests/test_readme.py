"""The README's examples work as written: its Python section runs in a fresh interpreter, and the
checkpoint files its commands name are the ones ``gabic checkpoints download`` writes."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image

from gabic.checkpoints import save_checkpoint
from tests.conftest import small_model

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _section(heading: str) -> str:
    start = README.index(f"\n## {heading}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_python_section_runs_in_a_fresh_interpreter(tmp_path, sample_paths):
    """Every line of the code block, then every ``gabic.…(…)`` call the section's text shows, with the
    files they name in place: the catalogue's ``checkpoints/gabic_q3.pth.tar`` (a small GABIC here) and
    ``data/kodak/kodim23.png`` (a sample photo here)."""
    section = _section("In Python")
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    calls = re.findall(r"`(gabic\.[\w.]+\(.*?\))`", section)
    assert 'gabic.results.load("bpg444")' in calls and "gabic.results.list_published()" in calls
    released = re.findall(r"`(gabic\.released\.\w+)\(", README)  # needs the downloaded files: checked to resolve
    assert released
    script = "\n".join([code, *calls, *(f"assert callable({name})" for name in released)])
    (tmp_path / "checkpoints").mkdir()
    save_checkpoint(small_model("gabic"), tmp_path / "checkpoints" / "gabic_q3.pth.tar", lmbda=0.025)
    (tmp_path / "data" / "kodak").mkdir(parents=True)
    Image.open(sample_paths[0]).convert("RGB").crop((0, 0, 256, 192)).save(tmp_path / "data" / "kodak" / "kodim23.png")
    res = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]


def test_checkpoint_files_the_readme_names_are_the_ones_the_catalogue_writes():
    catalogue = json.loads((ROOT / "gabic" / "catalogue" / "checkpoints.json").read_text())
    files = [e["file"] for e in catalogue["checkpoints"]]
    code = "\n".join(re.findall(r"```(?:bash|python)\n(.*?)```", README, flags=re.S))
    named = set(re.findall(r"checkpoints/([\w*.-]+\.pth\.tar)", code))
    assert named, "the README's commands name checkpoint files"
    for name in named:
        assert any(fnmatch.fnmatch(f, name) for f in files), f"{name}: not a file gabic checkpoints download writes"
