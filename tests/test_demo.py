"""`gabic demo`: notebooks 01-04 in order, figures and an index page; failures named, nothing half-written."""

from __future__ import annotations

import json
import re

import pytest
import torch

from gabic.notebooks import NotebookError, execute_notebook, notebooks_dir
from gabic.results import load
from tests.conftest import run_cli

pytest.importorskip("nbclient")
pytest.importorskip("nbconvert")

NOTEBOOKS = ["01_train_small", "02_evaluate_checkpoints", "03_rd_curves", "04_knn_attention"]


@pytest.mark.slow
def test_quick_demo_writes_notebooks_figures_and_index(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "demo"
    code, stdout, err = run_cli(capsys, "demo", "--quick", "--out", out, "--device", "cpu")
    assert code == 0, err
    for i, name in enumerate(NOTEBOOKS, 1):
        assert f"[{i}/4] {name}.ipynb ..." in stdout
        assert re.search(rf"\[{i}/4\] {name}\.ipynb done in \d+ s", stdout)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"], "no temporary or failed folders left"

    notebooks = sorted(p.name for p in (out / "notebooks").iterdir())
    assert notebooks == sorted(f"{n}.{e}" for n in NOTEBOOKS for e in ("html", "ipynb"))
    for n in NOTEBOOKS:
        nb = json.loads((out / "notebooks" / f"{n}.ipynb").read_text())
        code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(c["execution_count"] for c in code_cells), f"{n}: every cell ran"
        assert not [o for c in code_cells for o in c["outputs"] if o["output_type"] == "error"]

    pngs = {p.stem for p in (out / "figures").glob("*.png")}
    pdfs = {p.stem for p in (out / "figures").glob("*.pdf")}
    assert pngs == pdfs, "every figure as PNG and PDF"
    for prefix in ("01_training", "01_before_after", "02_reconstruction_", "04_window_", "04_matrix_", "rd_psnr-rgb_double"):
        assert any(s.startswith(prefix) for s in pngs), prefix
    for f in (out / "results").glob("*.json"):
        load(f)  # valid results files
    summary = json.loads((out / "summary.json").read_text())
    assert [r["notebook"] for r in summary["notebooks"]] == [f"{n}.ipynb" for n in NOTEBOOKS]
    assert summary["figures"] == sorted(f"{s}.png" for s in pngs)

    page = (out / "index.html").read_text()
    links = re.findall(r"(?:src|href)='([^']+)'", page)
    assert len(links) > 2 * len(pngs)
    assert [link for link in links if not (out / link).is_file()] == [], "every link of index.html points at a file"
    assert all(f"figures/{s}.png" in links for s in pngs)


def test_failed_notebook_is_named_and_nothing_half_written(capsys, tmp_path, monkeypatch):
    import gabic.demo

    out = tmp_path / "demo"
    out.mkdir()
    (out / "old.txt").write_text("the previous demo")
    calls = []

    def fail_second(path, parameters, **kwargs):
        calls.append(path.name)
        if len(calls) == 2:
            raise NotebookError(f"{path.name}: cell 3 (curves = evaluate_checkpoints(...)) failed: CheckpointError: bad")
        return _tiny_notebook()

    monkeypatch.setattr(gabic.demo, "execute_notebook", fail_second)
    code, stdout, err = run_cli(capsys, "demo", "--out", out, "--device", "cpu")
    assert code == 1
    assert "02_evaluate_checkpoints.ipynb: cell 3 (curves = evaluate_checkpoints(...)) failed: CheckpointError: bad" in err
    assert f"partial output in {tmp_path / 'demo-failed'}/" in err
    assert "[2/4] 02_evaluate_checkpoints.ipynb ..." in stdout and "[3/4]" not in stdout
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"], "the previous demo is untouched"
    assert (tmp_path / "demo-failed" / "notebooks" / "01_train_small.ipynb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "demo-failed"]


def _tiny_notebook():
    import nbformat

    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])


def test_notebook_error_names_the_cell(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    missing = tmp_path / "missing.pth.tar"
    with pytest.raises(NotebookError) as info:
        execute_notebook(notebooks_dir() / "04_knn_attention.ipynb", {"CHECKPOINT": missing, "OUT_DIR": tmp_path}, cwd=tmp_path)
    message = str(info.value)
    assert message.startswith("04_knn_attention.ipynb: cell 2 (from pathlib import Path) failed: CheckpointError: ")
    assert f"{missing}: no such checkpoint file" in message
    assert info.value.notebook is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--dataset", "{tmp}/nothing"), "nothing: no such folder"),
        (("--device", "tpu"), "device must be 'auto', 'cpu' or 'cuda[:i]', got 'tpu'"),
    ],
)
def test_demo_bad_input_fails_before_running(capsys, tmp_path, args, message):
    out = tmp_path / "demo"
    code, stdout, err = run_cli(capsys, "demo", "--out", out, *(a.format(tmp=tmp_path) for a in args))
    assert code == 1 and message in err and stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_demo_cuda_without_a_gpu(capsys, tmp_path):
    code, _, err = run_cli(capsys, "demo", "--out", tmp_path / "demo", "--device", "cuda")
    assert code == 1 and "CUDA is not available" in err


def test_dead_kernel_is_named(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("import os\nos._exit(3)"),
        ]
    )
    path = tmp_path / "dies.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(NotebookError, match=r"^dies\.ipynb: the kernel died during cell 2 \(import os\)"):
        execute_notebook(path, {"X": 2}, cwd=tmp_path, timeout=60)
