"""The notebooks: committed clean, and run top to bottom, headless, with small parameters.

Each notebook is executed with nbclient in a fresh kernel of *this* interpreter (``python3``
resolved to ``sys.executable``, whatever kernelspecs the user or the machine has installed),
with the working directory in a temporary folder and small parameters injected after its
``parameters`` cell (:mod:`gabic.notebooks`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

#: Small parameters per notebook: every cell runs, in seconds on 2 CPU cores.
SMALL_PARAMETERS = {
    "01_train_small.ipynb": """
PRESET = "small-cpu"
MODEL = "gabic"
LMBDA = 0.0130
KNN = 9
N, M, NUM_SLICES = 16, 16, 2
PATCH_SIZE, BATCH_SIZE = 64, 1
STEPS = 4
VAL_INTERVAL = 2
DEVICE = "cpu"
RUN_NAME = "notebook01"
RUNS_DIR = {runs_dir!r}
FIGURES_DIR = {figures_dir!r}
""",
    "02_evaluate_checkpoints.ipynb": """
CHECKPOINTS = [{checkpoints!r}]
RELEASED_DIR = {released!r}
DATASET = {dataset!r}
DEVICE = "cpu"
SHOW_IMAGE = 1
CROP_SIZE = 32
OUT_DIR = {out_dir!r}
FIGURES_DIR = {figures_dir!r}
""",
    "03_rd_curves.ipynb": """
DATASET = None
CODECS = ["jpeg", "webp"]
QUALITIES = {{"jpeg": [20, 60], "webp": [30, 70]}}
CHECKPOINTS = [{checkpoint!r}, {missing!r}]
WORKERS = 2
DEVICE = "cpu"
OUT_DIR = {out_dir!r}
RESULTS_DIR = {results_dir!r}
""",
    "04_knn_attention.ipynb": """
CHECKPOINT = {checkpoint!r}
IMAGE = None
CROP = 64
BLOCK = "g_a.4"
HEAD = "mean"
KS = [3, 9]
REAL_CODING = True
DEVICE = "cpu"
OUT_DIR = {out_dir!r}
RESULTS_DIR = {results_dir!r}
""",
    "05_what_the_graph_buys.ipynb": """
GABIC_CHECKPOINTS = {gabic!r}
WACNN_CHECKPOINTS = {wacnn!r}
RELEASED_DIR = None
IMAGES = {images!r}
TRAIN_STEPS = None
TILE = 64
BLOCK = "g_a.8"
HEAD = 0
DEVICE = "cpu"
OUT_DIR = {out_dir!r}
RESULTS_DIR = {results_dir!r}
""",
}


def parameters_cells(nb) -> list:
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def run_notebook(path: Path, parameters: str, cwd: Path, timeout: int = 300):
    """Execute ``path`` with ``parameters`` injected after its parameters cell; return the notebook.

    Raises :class:`gabic.notebooks.NotebookError` naming the cell when a cell fails.
    """
    from gabic.notebooks import execute_notebook

    return execute_notebook(path, parameters, cwd=cwd, timeout=timeout, env={"OMP_NUM_THREADS": "1"})


def outputs_of(cell, mime: str) -> list:
    return [o for o in cell.get("outputs", []) if mime in o.get("data", {})]


@pytest.fixture
def kernel_env(monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws the figures
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's frozen-modules note
    # One torch thread in the kernel: on a busy 2-core runner, two OpenMP threads fighting other
    # processes made a tiny training step 100 times slower (8 s instead of 0.08 s).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def execute(name: str, tmp_path: Path, **fields) -> tuple[list, Path]:
    """Run notebook ``name`` with its small parameters (``fields`` filled in) in an empty
    working directory; return its code cells and that directory. No cell may fail."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    nb = run_notebook(NOTEBOOKS / name, SMALL_PARAMETERS[name].format(**{k: str(v) for k, v in fields.items()}), cwd)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [o for c in code for o in c.outputs if o.output_type == "error"] == []
    stderr = "".join(o.get("text", "") for c in code for o in c.outputs if o.get("name") == "stderr")
    assert "Traceback" not in stderr
    assert list(cwd.iterdir()) == [], "the notebook wrote into its working directory"
    return code, cwd


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [None] * len(code), "execution counts left in"
    assert [i for i, c in enumerate(code) if c.outputs] == [], "outputs left in"
    assert len(parameters_cells(nb)) == 1, "exactly one cell tagged 'parameters'"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "a title first"


def test_every_notebook_has_small_parameters():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(SMALL_PARAMETERS)


@pytest.mark.slow
def test_01_train_small_runs(tmp_path, kernel_env):
    runs, figures = tmp_path / "runs", tmp_path / "figures"
    code, _ = execute("01_train_small.ipynb", tmp_path, runs_dir=runs, figures_dir=figures)

    run = runs / "notebook01"
    for f in ("best.pth.tar", "last.pth.tar", "history.json", "config.json"):
        assert (run / f).is_file(), f
    assert sorted(p.name for p in figures.iterdir()) == [
        f"01_{n}.{e}" for n in ("before_after", "training") for e in ("csv", "pdf", "png")
    ]
    (train,) = [c for c in code if "= fit(" in c.source]
    plots = outputs_of(train, "image/png")
    assert len(plots) == 1, "one live figure, updated in place"
    (after,) = [c for c in code if "= load_checkpoint(" in c.source]
    assert outputs_of(after, "image/png"), "the before/after reconstructions"
    printed = "".join(o.get("text", "") for o in after.outputs if o.output_type == "stream")
    assert f"checkpoint: {(run / 'best.pth.tar').resolve()}" in printed


@pytest.mark.slow
def test_02_evaluate_checkpoints_runs(tmp_path, kernel_env, sample_paths):
    from gabic.checkpoints import save_checkpoint
    from gabic.images import load_image
    from gabic.results import load
    from tests.conftest import small_model

    ours, released, dataset = tmp_path / "ours", tmp_path / "released", tmp_path / "images"
    for folder in (ours, released, dataset):
        folder.mkdir()
    save_checkpoint(small_model("gabic", seed=0), ours / "best.pth.tar", lmbda=0.0130)
    save_checkpoint(small_model("gabic", seed=1), released / "q2.pth.tar", lmbda=0.0250)
    save_checkpoint(small_model("wacnn"), released / "wacnn.pth.tar")
    for path in sample_paths[:2]:
        load_image(path)[0].crop((0, 0, 96, 80)).save(dataset / f"{path.stem}.png")
    out = tmp_path / "out"
    figures = tmp_path / "figures"
    code, _ = execute(
        "02_evaluate_checkpoints.ipynb",
        tmp_path,
        checkpoints=ours,
        released=released,
        dataset=dataset,
        out_dir=out,
        figures_dir=figures,
    )

    written = sorted(p.name for p in out.iterdir())
    assert written == ["gabic-n32-m40-num-slices4.json", "wacnn-n32-m40-num-slices4.json"]
    gabic = load(out / written[0])
    assert sorted(gabic["meta"]["lambda"]) == [0.0130, 0.0250] and gabic["meta"]["num_images"] == 2
    (recon,) = [c for c in code if "reconstruction_figure(" in c.source and "import" not in c.source]
    assert len(outputs_of(recon, "image/png")) == 3, "one figure per checkpoint"
    stems = {p.stem for p in figures.iterdir()}
    assert stems == {
        "02_reconstruction_gabic-n32-m40-num-slices4_best",
        "02_reconstruction_gabic-n32-m40-num-slices4_q2",
        "02_reconstruction_wacnn-n32-m40-num-slices4_wacnn",
        "02_stream_sizes_gabic-n32-m40-num-slices4",
        "02_stream_sizes_wacnn-n32-m40-num-slices4",
    }
    assert len(list(figures.iterdir())) == 3 * len(stems), "PDF and PNG, and the data as CSV"
    (sizes,) = [c for c in code if "stream_size_figure(curve)" in c.source]
    assert len(outputs_of(sizes, "image/png")) == 2, "one figure per curve"
    (tables,) = [c for c in code if "per_image_frame(curve)" in c.source]
    assert len(outputs_of(tables, "text/html")) == 2


@pytest.mark.slow
def test_03_rd_curves_runs(tmp_path, kernel_env):
    from gabic.checkpoints import save_checkpoint
    from gabic.results import load
    from tests.conftest import small_model

    checkpoint, out, results = tmp_path / "small-gabic.pth.tar", tmp_path / "figures", tmp_path / "results"
    save_checkpoint(small_model("gabic"), checkpoint, lmbda=0.0130)
    missing = tmp_path / "nope.pth.tar"
    code, _ = execute("03_rd_curves.ipynb", tmp_path, checkpoint=checkpoint, missing=missing, out_dir=out, results_dir=results)

    assert sorted(p.name for p in results.iterdir()) == ["03_gabic-n32-m40-num-slices4.json", "03_jpeg.json", "03_webp.json"]
    jpeg = load(results / "03_jpeg.json")
    assert sorted(jpeg["meta"]["quality"]) == [20, 60] and jpeg["meta"]["num_images"] == 4
    assert load(results / "03_gabic-n32-m40-num-slices4.json")["meta"]["lambda"] == [0.0130]
    figures = {
        f"rd_{m}_{w}.{e}" for m in ("psnr-rgb", "ms-ssim-db-rgb") for w in ("single", "double") for e in ("pdf", "svg", "png", "csv")
    }
    tables = {f"bd_{m}.{e}" for m in ("psnr-rgb", "ms-ssim-db-rgb") for e in ("md", "tex", "csv")}
    assert {p.name for p in out.iterdir()} == figures | tables
    (checkpoints,) = [c for c in code if "find_checkpoints(" in c.source and "import" not in c.source]
    printed = "".join(o.get("text", "") for o in checkpoints.outputs if o.output_type == "stream")
    assert "skipped:" in printed and "nope.pth.tar" in printed
    (rd,) = [c for c in code if "rd_figure(curves" in c.source]
    assert outputs_of(rd, "image/png")
    (hover,) = [c for c in code if "rd_plotly(" in c.source and "import" not in c.source]
    assert outputs_of(hover, "application/vnd.plotly.v1+json")
    for app in ("rd_explorer(", "quality_explorer("):
        (cell,) = [c for c in code if app in c.source and "import" not in c.source]
        assert outputs_of(cell, "application/vnd.jupyter.widget-view+json"), app
    (bd,) = [c for c in code if "bd_markdown(" in c.source and "import" not in c.source]
    table = "".join(o["data"]["text/markdown"] for o in outputs_of(bd, "text/markdown"))
    assert "BPG 4:4:4 (x265) (published)" in table and "[anchor]" not in table


@pytest.mark.slow
def test_04_knn_attention_runs(tmp_path, kernel_env):
    from gabic.checkpoints import save_checkpoint
    from gabic.results import load
    from tests.conftest import small_model

    checkpoint, out = tmp_path / "small-gabic.pth.tar", tmp_path / "figures"
    save_checkpoint(small_model("gabic"), checkpoint, lmbda=0.0130)
    results = tmp_path / "results"
    code, _ = execute("04_knn_attention.ipynb", tmp_path, checkpoint=checkpoint, out_dir=out, results_dir=results)

    exported = sorted(p.name for p in out.iterdir())
    stems = ["04_grid_g_a.4", "04_window_g_a.4", "04_matrix_g_a.4", "04_statistics", "04_k_sweep"]
    data = [f"{s}.csv" for s in stems if s != "04_statistics"]
    data += ["04_statistics.statistics.csv", *(f"04_statistics.frequency_{b}.csv" for b in ("g_a.4", "g_a.8", "g_s.0", "g_s.5"))]
    assert exported == sorted([f"{s}.{e}" for s in stems for e in ("pdf", "png")] + data)
    assert all((out / f).read_bytes().startswith(b"%PDF") for f in exported if f.endswith(".pdf"))
    sweep = load(results / "04_k_sweep.json")
    assert sweep["meta"]["knn"] == [3, 9] and sweep["meta"]["estimate"] == "bitstream"
    figures = [c for c in code if c.source.rstrip().endswith("fig")]
    assert len(figures) == 5 and all(outputs_of(c, "image/png") for c in figures)
    (explorer,) = [c for c in code if "attention_explorer(" in c.source and "import" not in c.source]
    assert outputs_of(explorer, "application/vnd.jupyter.widget-view+json"), "the explorer widget is displayed"


@pytest.mark.slow
def test_05_what_the_graph_buys_runs(tmp_path, kernel_env, sample_paths):
    from gabic.analysis.report import load_report
    from gabic.checkpoints import save_checkpoint
    from gabic.images import as_rgb, center_crop
    from tests.conftest import small_model

    gabic, wacnn = tmp_path / "gabic.pth.tar", tmp_path / "wacnn.pth.tar"
    save_checkpoint(small_model("gabic"), gabic, lmbda=0.0130)
    save_checkpoint(small_model("wacnn"), wacnn, lmbda=0.0130)
    images = tmp_path / "images"
    images.mkdir()
    center_crop(as_rgb(sample_paths[0]), 128).save(images / "crop.png")
    out, results = tmp_path / "figures", tmp_path / "results"
    code, _ = execute(
        "05_what_the_graph_buys.ipynb", tmp_path, gabic=gabic, wacnn=wacnn, images=images, out_dir=out, results_dir=results
    )

    stems = [
        "05_report",
        "05_bits",
        "05_bits_gabic",
        "05_slice_bits",
        "05_tiles",
        "05_redundancy",
        "05_residual_correlation",
        "05_attention",
    ]
    stems.append("05_attention_maps_g_a.8")
    exported = {p.name for p in out.iterdir()}
    for stem in stems:
        assert {f"{stem}.pdf", f"{stem}.png"} <= exported, stem
        assert any(n.startswith(f"{stem}.") and n.endswith(".csv") for n in exported), f"{stem}: the data beside the figure"
    report = load_report(results / "05_report" / "report.json")
    assert report["pairs"][0]["first"] == str(gabic) and list(report["pairs"][0]["images"]) == ["crop.png"]
    figures = [c for c in code if c.source.rstrip().endswith("fig") or "draw_report(report)" in c.source]
    assert len(figures) == 9 and all(outputs_of(c, "image/png") for c in figures)
    (explorer,) = [c for c in code if "comparison_explorer(" in c.source and "import" not in c.source]
    assert outputs_of(explorer, "application/vnd.jupyter.widget-view+json"), "the explorer widget is displayed"


def test_notebooks_02_to_04_default_to_notebook_01_then_to_the_demo(tmp_path):
    """After ``gabic demo`` the notebooks open with their defaults: they find the demo's checkpoint."""
    from gabic.notebooks import NOTEBOOK01_CHECKPOINTS, notebook01_checkpoint

    root = tmp_path / "repo"
    own, demo = (root / c for c in NOTEBOOK01_CHECKPOINTS)
    assert notebook01_checkpoint(root) == own, "nothing yet: the error names notebook 01's place"
    demo.parent.mkdir(parents=True)
    demo.write_bytes(b"x")
    assert notebook01_checkpoint(root) == demo
    own.parent.mkdir(parents=True)
    own.write_bytes(b"x")
    assert notebook01_checkpoint(root) == own
    for name in ("02_evaluate_checkpoints.ipynb", "03_rd_curves.ipynb", "04_knn_attention.ipynb"):
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        (params,) = parameters_cells(nb)
        assert "CHECKPOINT" in params.source and "None" in params.source
        assert any('notebook01_checkpoint("..")' in c.source for c in nb.cells if c.cell_type == "code"), name


@pytest.mark.slow
def test_04_with_its_defaults_finds_the_demo_checkpoint(tmp_path, kernel_env):
    from gabic.checkpoints import save_checkpoint
    from tests.conftest import small_model

    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    demo = root / "results" / "demo" / "runs" / "demo" / "best.pth.tar"
    save_checkpoint(small_model("gabic"), demo)
    params = 'CROP = 64\nKS = [3]\nDEVICE = "cpu"\nOUT_DIR = "../figures"\nRESULTS_DIR = "../results/evaluations"\n'
    nb = run_notebook(NOTEBOOKS / "04_knn_attention.ipynb", params, root / "notebooks")
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert (root / "figures" / "04_window_g_a.4.png").is_file()
