"""`gabic demo`: notebooks 01-04 in order, figures and an index page; failures named, nothing half-written."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import torch

from gabic.notebooks import NotebookError, execute_notebook, notebooks_dir
from gabic.results import load
from tests.conftest import run_cli

pytest.importorskip("nbclient")
pytest.importorskip("nbconvert")

NOTEBOOKS = ["01_train_small", "02_evaluate_checkpoints", "03_rd_curves", "04_knn_attention", "05_what_the_graph_buys"]


@pytest.mark.slow
def test_quick_demo_writes_notebooks_figures_and_index(capsys, tmp_path, monkeypatch):
    out = tmp_path / "demo"
    code, stdout, err = run_cli(capsys, "demo", "--quick", "--out", out, "--device", "cpu", "--threads", "1")
    assert code == 0, err
    for i, name in enumerate(NOTEBOOKS, 1):
        assert f"[{i}/5] {name}.ipynb ..." in stdout
        assert re.search(rf"\[{i}/5\] {name}\.ipynb done in \d+ s", stdout)
        assert re.search(rf"\[{i}/5\] {name}\.ipynb · cell 1/\d+ \(.+\) · 0:\d\d", stdout), "the running cell and its time"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"], "no partial folder left"
    assert "demo: 1 CPU thread (" in err
    assert "zmq" not in err and "Traceback" not in err and "IPKernelApp" not in err, err

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
    prefixes = ("01_training", "01_before_after", "02_reconstruction_", "04_window_", "04_matrix_", "rd_psnr-rgb_double")
    for prefix in (*prefixes, "05_report", "05_bits", "05_tiles", "05_redundancy", "05_attention"):
        assert any(s.startswith(prefix) for s in pngs), prefix
    for f in (out / "results").glob("*.json"):
        load(f)  # valid results files
    assert {p.stem for p in (out / "figures").glob("*.csv")} >= {"01_training", "05_tiles"}, "the data beside the figures"
    report = json.loads((out / "results" / "05_report" / "report.json").read_text())
    assert report["curves"][1]["meta"]["model"] == "wacnn" and list(report["pairs"][0]["images"]) == ["rocket.jpg"]
    wacnn = json.loads((out / "runs" / "demo-wacnn" / "config.json").read_text())
    gabic = json.loads((out / "runs" / "demo" / "config.json").read_text())
    assert {k: v for k, v in wacnn.items() if k not in ("model", "name", "runs_dir", "options")} == {
        k: v for k, v in gabic.items() if k not in ("model", "name", "runs_dir", "options")
    }, "the WACNN is trained the way the GABIC was"
    assert wacnn["options"] == {k: v for k, v in gabic["options"].items() if k in ("N", "M", "num_slices")}, "at the same sizes"
    summary = json.loads((out / "summary.json").read_text())
    assert [r["notebook"] for r in summary["notebooks"]] == [f"{n}.ipynb" for n in NOTEBOOKS]
    assert summary["figures"] == sorted(f"{s}.png" for s in pngs)
    assert summary["threads"] == 1 and "rocket.jpg" in summary["dataset"]

    # the learned codec is measured on the test photo, which played no part in training or in choosing
    # the checkpoint (validation is on crops of the training photos), and the figure says so
    learned = [load(f) for f in (out / "results").glob("*.json") if load(f)["meta"].get("model") == "gabic"]
    assert len(learned) == 2  # notebook 02's and 03's
    assert all(list(c["per_image"]) == ["rocket.jpg"] and c["meta"]["image_set"]["num_images"] == 1 for c in learned)
    assert "(1 image of test-photos)" in (out / "figures" / "bd_psnr-rgb.md").read_text()
    assert [Path(p).name for p in gabic["extra"]["test_images"]] == ["rocket.jpg"]
    assert "rocket.jpg" not in " ".join(gabic["extra"]["validation_images"])
    # what the runs record exists where the demo put it; no folder a user types has a space
    for run in ("demo", "demo-wacnn"):
        config = json.loads((out / "runs" / run / "config.json").read_text())
        assert Path(config["runs_dir"]) == (out / "runs").resolve() and Path(config["runs_dir"]).is_dir()
    assert not [p for p in out.rglob("*") if " " in p.name]

    page = (out / "index.html").read_text()
    links = re.findall(r"(?:src|href)='([^']+)'", page)
    assert len(links) > 2 * len(pngs)
    assert [link for link in links if not (out / link).is_file()] == [], "every link of index.html points at a file"
    assert all(f"figures/{s}.png" in links for s in pngs)


@pytest.fixture
def photos(tmp_path, sample_paths):
    """A dataset folder, so that the stand-in notebook 01 need not say which photos it held out."""
    import shutil

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(sample_paths[3], folder / sample_paths[3].name)
    return folder


def _stand_in(calls: list, fail_at: int | None = None, error: BaseException | None = None):
    """A stand-in for execute_notebook: records the notebook, raises ``error`` at call ``fail_at``."""

    def run(path, parameters, **kwargs):
        calls.append(path.name)
        if len(calls) == fail_at:
            raise error
        return _tiny_notebook()

    return run


def test_failed_notebook_is_named_and_nothing_half_written(capsys, tmp_path, monkeypatch, photos):
    import gabic.demo

    out = tmp_path / "demo"
    out.mkdir()
    (out / "old.txt").write_text("the previous demo")
    calls = []
    error = NotebookError("02_evaluate_checkpoints.ipynb: cell 3 (curves = evaluate_checkpoints(...)) failed: CheckpointError: bad")
    monkeypatch.setattr(gabic.demo, "execute_notebook", _stand_in(calls, 2, error))
    code, stdout, err = run_cli(capsys, "demo", "--out", out, "--device", "cpu", "--dataset", photos)
    assert code == 1
    assert "02_evaluate_checkpoints.ipynb: cell 3 (curves = evaluate_checkpoints(...)) failed: CheckpointError: bad" in err
    assert f"finished notebooks kept in {tmp_path / 'demo-partial'}/: gabic demo --resume continues" in err
    assert "[2/5] 02_evaluate_checkpoints.ipynb ..." in stdout and "[3/5]" not in stdout
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"], "the previous demo is untouched"
    assert (tmp_path / "demo-partial" / "notebooks" / "01_train_small.ipynb").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "demo-partial", "photos"]


def test_an_interrupted_demo_resumes_from_the_first_unfinished_notebook(capsys, tmp_path, monkeypatch, photos):
    import gabic.demo

    out = tmp_path / "demo"
    calls = []
    monkeypatch.setattr(gabic.demo, "execute_notebook", _stand_in(calls, 3, KeyboardInterrupt()))
    code, _, err = run_cli(capsys, "demo", "--out", out, "--device", "cpu", "--dataset", photos)
    assert code == 130 and f"kept in {out}-partial/; continue with gabic demo --resume" in err
    assert not out.exists() and json.loads((tmp_path / "demo-partial" / "progress.json").read_text()).keys() == {
        "01_train_small.ipynb",
        "02_evaluate_checkpoints.ipynb",
    }
    calls.clear()
    monkeypatch.setattr(gabic.demo, "execute_notebook", _stand_in(calls))
    code, stdout, err = run_cli(capsys, "demo", "--out", out, "--device", "cpu", "--dataset", photos, "--resume")
    assert code == 0, err
    assert calls == ["03_rd_curves.ipynb", "04_knn_attention.ipynb", "05_what_the_graph_buys.ipynb"], "the finished notebooks are kept"
    assert "[1/5] 01_train_small.ipynb kept from the partial run" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert [r.get("reused", False) for r in summary["notebooks"]] == [True, True, False, False, False]
    assert not (tmp_path / "demo-partial").exists()


def test_resume_reruns_notebooks_whose_parameters_changed(capsys, tmp_path, monkeypatch, photos):
    import gabic.demo

    out = tmp_path / "demo"
    calls = []
    monkeypatch.setattr(gabic.demo, "execute_notebook", _stand_in(calls, 3, NotebookError("03: failed")))
    assert run_cli(capsys, "demo", "--out", out, "--device", "cpu", "--dataset", photos)[0] == 1
    calls.clear()
    monkeypatch.setattr(gabic.demo, "execute_notebook", _stand_in(calls))
    code, _, _ = run_cli(capsys, "demo", "--out", out, "--device", "cpu", "--dataset", photos, "--resume", "--quick")
    assert code == 0 and len(calls) == 5, "other parameters: nothing is reused"


def test_threads_follow_the_cores_and_the_load(capsys, tmp_path, monkeypatch, photos):
    import gabic.demo

    assert [gabic.demo.demo_threads(c, load) for c, load in ((2, 0.1), (2, 1.0), (4, 1.2), (2, 3.5), (8, 0.4))] == [2, 1, 3, 1, 8]
    monkeypatch.setattr(gabic.demo, "machine_load", lambda: (2, 3.5))
    seen = []

    def record(path, parameters, **kwargs):
        seen.append((kwargs["env"], parameters.get("WORKERS")))
        return _tiny_notebook()

    monkeypatch.setattr(gabic.demo, "execute_notebook", record)
    code, _, err = run_cli(capsys, "demo", "--out", tmp_path / "demo", "--device", "cpu", "--dataset", photos)
    assert code == 0
    assert "the machine is busy: load 3.5 on 2 cores; the demo uses 1 thread(s)" in err
    assert all(env["OMP_NUM_THREADS"] == "1" for env, _ in seen) and seen[2][1] == 1  # notebook 03's codec workers


def _tiny_notebook():
    import nbformat

    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])


def _two_cell_notebook(path, code: str):
    """A notebook of a parameters cell (``X = 1``) and ``code``, written to ``path``."""
    import nbformat

    cells = [nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell(code)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_the_kernel_is_shut_down_when_its_notebook_ends(tmp_path):
    path = _two_cell_notebook(tmp_path / "pid.ipynb", "import os\nos.getpid()")
    cells = []
    done = execute_notebook(path, {"X": 2}, cwd=tmp_path, timeout=None, on_cell=lambda *a: cells.append(a))
    pid = int(done.cells[-1].outputs[0]["data"]["text/plain"])
    assert cells == [(1, 2, "X = 1"), (2, 2, "import os")]
    for _ in range(50):  # the kernel process is gone (a moment for the OS to reap it)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the kernel (pid {pid}) still runs after its notebook ended")


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
    path = _two_cell_notebook(tmp_path / "dies.ipynb", "import os\nos._exit(3)")
    with pytest.raises(NotebookError, match=r"^dies\.ipynb: the kernel died during cell 2 \(import os\)"):
        execute_notebook(path, {"X": 2}, cwd=tmp_path, timeout=60)
