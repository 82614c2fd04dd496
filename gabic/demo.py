"""``gabic demo``: notebooks 01-05 run headless, in order, and an index page of what they made.

01 trains a small GABIC on the embedded sample photos (the CPU preset; the paper's on a GPU), 02
evaluates its best checkpoint with real coding, 03 draws its RD curve beside JPEG, HEVC intra,
WebP and AVIF measured here and the published anchors, 04 looks inside its kNN attention, 05
trains a WACNN the same way and compares the two (bits per region, redundancy, attention;
``results/05_report/``). The learned codec is measured on images that played no part in its
training: the Kodak images when ``data/kodak`` (in the working folder) holds them (``gabic data
kodak``), else the test photo of the sample photos (:func:`gabic.data.sample_split`), which
notebook 01's run used neither for training nor for validation; the codecs on the same images.

The output folder receives the executed notebooks (``.ipynb`` and ``.html``), the figures
(``figures/*.png`` and ``.pdf``, the data behind each as CSV), the results files
(``results/*.json``), the runs (``runs/demo/``, ``runs/demo-wacnn/``), ``summary.json`` and an
``index.html`` that shows them. Everything is written into ``<out>-partial/`` first and moved into
place at the end: a failed or interrupted run leaves ``<out>-partial/`` with the notebooks that
finished (``gabic demo --resume`` continues from the first one that did not, reusing the others
when their parameters are the same), never a half-updated ``<out>``. Cells have no time limit
(training is long on a busy machine); the kernels get as many threads as the machine has cores,
fewer when it is already busy, and each is shut down when its notebook ends. nbformat and
nbconvert (the ``notebooks`` extra) are imported where the executed notebooks are saved.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import os
import platform
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gabic._version import __version__
from gabic.data import KODAK_DEST, list_images
from gabic.device import resolve_device
from gabic.errors import GabicError
from gabic.files import write_atomic
from gabic.notebooks import NotebookError, execute_notebook, jupyter_notes_silenced, notebook_paths, parameters_source
from gabic.train.like import held_out_images

__all__ = ["QUICK", "demo_parameters", "demo_threads", "run_demo"]

log = logging.getLogger(__name__)

#: Tiny settings for ``--quick``: every cell runs, in about two minutes on 2 CPU cores.
QUICK = {
    "01": {"N": 16, "M": 16, "NUM_SLICES": 2, "PATCH_SIZE": 64, "BATCH_SIZE": 1, "STEPS": 4, "VAL_INTERVAL": 2},
    "03": {"CODECS": ["jpeg", "webp"], "QUALITIES": {"jpeg": [20, 60], "webp": [30, 70]}},
    "04": {"CROP": 64, "KS": [3, 9]},
}

#: The folder, beside ``out``, where a demo works until it has finished.
PARTIAL_SUFFIX = "-partial"
#: The folder of the images the learned codec saw neither in training nor in validation, when the
#: demo trains on the sample photos (its name is the image set's name on the figures).
TEST_PHOTOS = "test-photos"


def _kodak() -> Path | None:
    """``data/kodak`` (where ``gabic data kodak`` puts the images, from the working folder) when it
    holds the 24 images, else None."""
    folder = KODAK_DEST.resolve()
    try:
        return folder if len(list_images(folder)) == 24 else None
    except GabicError:
        return None


def _cpu_times() -> tuple[float, float] | None:
    """``(busy, total)`` jiffies of all CPUs since boot, from /proc/stat (Linux), else None."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def machine_load(interval: float = 0.5) -> tuple[int, float]:
    """``(cores this process may use, cores busy now)``: the busy share of all CPUs over
    ``interval`` seconds (Linux), else the load average of the last minute. The load average lags
    a minute behind (a test run that just ended still shows), so the sample comes first."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    before = _cpu_times()
    if before is not None:
        time.sleep(interval)
        after = _cpu_times()
        if after is not None and after[1] > before[1]:
            return cores, (os.cpu_count() or cores) * (after[0] - before[0]) / (after[1] - before[1])
    return cores, os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def demo_threads(cores: int, load: float) -> int:
    """The threads the demo's kernels and codec workers use: every core on an idle machine; on a
    busy one the cores the load leaves free (at least one), so that gabic adds no more runnable
    threads than there are cores: OpenMP threads that outnumber the cores wait on each other and
    slow everything down, the other jobs too."""
    return max(1, min(cores, cores - round(load))) if load >= 0.5 else cores


def demo_parameters(work: Path, dataset: Path | None, device: str, quick: bool, threads: int = 1) -> dict[str, dict[str, Any]]:
    """The parameters injected into each notebook (by its two-digit prefix), all paths under ``work``.

    ``dataset`` is where 02-05 measure the trained model (None: the run's test photo, copied to
    ``work/test-photos`` once notebook 01 has run)."""
    best = work / "runs" / "demo" / "best.pth.tar"
    figures, results = work / "figures", work / "results"
    evaluation = dataset if dataset is not None else work / TEST_PHOTOS
    params = {
        "01": {"RUN_NAME": "demo", "RUNS_DIR": work / "runs", "FIGURES_DIR": figures, "DEVICE": device},
        "02": {
            "CHECKPOINTS": [best],
            "RELEASED_DIR": None,
            "DATASET": evaluation,
            "DEVICE": device,
            "OUT_DIR": results,
            "FIGURES_DIR": figures,
        },
        "03": {
            "CHECKPOINTS": [best],
            "DATASET": evaluation,
            "DEVICE": device,
            "OUT_DIR": figures,
            "RESULTS_DIR": results,
            "WORKERS": threads,
        },
        "04": {"CHECKPOINT": best, "DEVICE": device, "OUT_DIR": figures, "RESULTS_DIR": results},
        "05": {
            "GABIC_CHECKPOINTS": best,
            "WACNN_CHECKPOINTS": None,  # a WACNN trained the way notebook 01's run was, in runs/demo-wacnn
            "RELEASED_DIR": None,
            "IMAGES": evaluation,
            "DEVICE": device,
            "OUT_DIR": figures,
            "RESULTS_DIR": results,
        },
    }
    if dataset is None:
        params["04"]["IMAGE"] = None  # set to the first test photo once notebook 01 has run
    if quick:
        for key, extra in QUICK.items():
            params[key] |= extra
    return params


def _held_out(work: Path) -> list[Path]:
    """Copy the test photos of notebook 01's run (its ``config.json``: used neither for training nor
    for validation) to ``work/test-photos``; return the copies."""
    names = held_out_images(work / "runs" / "demo")
    folder = work / TEST_PHOTOS
    folder.mkdir(exist_ok=True)
    copies = []
    for name in names:
        shutil.copy2(name, folder / Path(name).name)
        copies.append(folder / Path(name).name)
    return copies


def _fingerprint(notebook: Path, parameters: dict[str, Any]) -> str:
    """What a finished notebook's outputs depend on: its file and the parameters it got."""
    h = hashlib.sha256(notebook.read_bytes())
    h.update(parameters_source(parameters).encode())
    return h.hexdigest()[:16]


def _progress(work: Path) -> dict[str, Any]:
    try:
        return json.loads((work / "progress.json").read_text())
    except (OSError, ValueError):
        return {}


def run_demo(
    out: str | os.PathLike = "results/demo",
    quick: bool = False,
    device: str = "auto",
    dataset: str | os.PathLike | None = None,
    on_notebook: Callable[[int, int, str, float | None], None] | None = None,
    notebooks: str | os.PathLike | None = None,
    resume: bool = False,
    on_cell: Callable[[int, int, str], None] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Run notebooks 01-05 headless and write their outputs and an ``index.html`` to ``out``.

    Args:
        out: the output folder (replaced at the end of a successful run).
        quick: tiny settings (:data:`QUICK`) that check an installation in about two minutes.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        dataset: a folder of images for notebooks 02-03; default None: ``data/kodak`` when it holds
            the 24 Kodak images, else the sample photos notebook 01 held out (never images it
            trained on).
        on_notebook: called as ``on_notebook(i, n, name, seconds)`` before each notebook
            (``seconds`` None) and after it (``seconds`` -1 for a notebook reused by ``resume``).
        notebooks: the folder of the notebooks; default None: ``notebooks/`` of the gabic
            checkout (see :func:`gabic.notebooks.notebooks_dir`).
        resume: continue the run left in ``<out>-partial/``: the notebooks that finished there
            with the same parameters are kept; the rest run. Default False: start over.
        on_cell: called as ``on_cell(n, total, first_line)`` when a notebook's code cell starts.
        threads: CPU threads of the kernels and codec workers; default None: :func:`demo_threads`
            of the machine's cores and load.

    Returns:
        The summary written to ``summary.json``: notebooks with their run times, figures,
        results files, dataset, device, threads and load, versions.

    Raises:
        NotebookError: a notebook failed (naming it, the cell and the error); the finished
            notebooks are kept in ``<out>-partial/``.
        KeyboardInterrupt: Ctrl-C; the kernel is shut down and the finished notebooks are kept.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GabicError(f"{out}: exists and is not a folder")
    resolve_device(device)  # a bad device fails here, not in notebook 01
    dataset = _kodak() if dataset is None else Path(dataset).resolve()
    if dataset is not None:
        list_images(dataset)  # a missing or empty folder fails here
    paths = notebook_paths(notebooks)
    cores, load = machine_load()
    threads = threads or demo_threads(cores, load)
    log.info("demo: %d CPU thread%s (%d cores, %.1f busy before it starts)", threads, "s" * (threads > 1), cores, load)
    if load > cores - 0.5:
        log.warning(
            "the machine is busy: load %.1f on %d cores; the demo uses %d thread(s) and will take longer", load, cores, threads
        )

    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.with_name(out.name + PARTIAL_SUFFIX).resolve()
    done = _progress(work) if resume else {}
    if work.exists() and not resume:
        log.info("%s: a partial demo from before: starting over (gabic demo --resume continues it)", work)
        shutil.rmtree(work)
    elif resume and not done:
        log.info("%s: nothing to resume: starting from notebook 01", work)
    for sub in ("notebooks", "figures", "results"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    params = demo_parameters(work, dataset, device, quick, threads)
    kernel_env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    rows, reusing, held_out = [], True, []
    started = time.perf_counter()
    for i, path in enumerate(paths, 1):
        key = path.name[:2]
        if dataset is None and key != "01" and not held_out:
            held_out = _held_out(work)
        if dataset is None and key == "04":
            params["04"]["IMAGE"] = held_out[0]
        fingerprint = _fingerprint(path, params.get(key, {}))
        previous = done.get(path.name)
        reusing = reusing and previous is not None and previous.get("fingerprint") == fingerprint
        if on_notebook:
            on_notebook(i, len(paths), path.name, None)
        if reusing:
            rows.append({"notebook": path.name, "seconds": previous["seconds"], "reused": True})
            if on_notebook:
                on_notebook(i, len(paths), path.name, -1)
            continue
        t0 = time.perf_counter()
        try:
            nb = execute_notebook(path, params.get(key, {}), cwd=work, timeout=None, env=kernel_env, on_cell=on_cell)
        except NotebookError as err:
            if err.notebook is not None:
                _save_notebook(err.notebook, work / "notebooks" / path.name)
            raise NotebookError(f"{err} (finished notebooks kept in {work}/: gabic demo --resume continues)", err.notebook) from None
        seconds = round(time.perf_counter() - t0, 1)
        _save_notebook(nb, work / "notebooks" / path.name)
        done[path.name] = {"fingerprint": fingerprint, "seconds": seconds}
        write_atomic(work / "progress.json", (json.dumps(done, indent=2) + "\n").encode())
        rows.append({"notebook": path.name, "seconds": seconds})
        if on_notebook:
            on_notebook(i, len(paths), path.name, seconds)
    summary = {
        "gabic": __version__,
        "quick": quick,
        "device": str(resolve_device(device)),
        "machine": f"{platform.machine()}, {cores} CPU cores, {load:.1f} busy at the start",
        "threads": threads,
        "dataset": str(dataset)
        if dataset
        else f"the test photo(s), used neither in training nor in validation: {', '.join(p.name for p in held_out)}",
        "seconds": round(time.perf_counter() - started, 1),
        "notebooks": rows,
        "figures": sorted(p.name for p in (work / "figures").glob("*.png")),
        "results": sorted(p.name for p in (work / "results").glob("*.json")),
    }
    write_atomic(work / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    write_atomic(work / "index.html", _index_html(work, summary).encode())
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    _relocate_runs(out, work)
    return summary


def _relocate_runs(out: Path, work: Path) -> None:
    """Make the runs' ``config.json`` name the folders where they are now (``out``), not where the
    demo worked (``work``, gone once it moved into place)."""
    old, new = str(work), str(out.resolve())

    def moved(value: Any) -> Any:
        if isinstance(value, str) and (value == old or value.startswith(old + os.sep)):
            return new + value[len(old) :]
        if isinstance(value, list):
            return [moved(v) for v in value]
        if isinstance(value, dict):
            return {k: moved(v) for k, v in value.items()}
        return value

    for config in sorted((out / "runs").glob("*/config.json")):
        saved = json.loads(config.read_text())
        write_atomic(config, (json.dumps(moved(saved), indent=2, default=str)).encode())


def _save_notebook(nb: Any, path: Path) -> None:
    """The executed notebook as ``.ipynb`` and as a self-contained ``.html``."""
    import nbformat

    write_atomic(path, nbformat.writes(nb).encode())
    try:
        from nbconvert import HTMLExporter

        with warnings.catch_warnings(), jupyter_notes_silenced():  # nbconvert's notes (images without alternative text)
            warnings.simplefilter("ignore")
            body, _ = HTMLExporter().from_notebook_node(nb)
        write_atomic(path.with_suffix(".html"), body.encode())
    except Exception as err:  # noqa: BLE001 - the HTML copy is a convenience; the .ipynb is kept
        log.warning("%s: no HTML copy (%s)", path.name, err)


_SECTIONS = [
    ("01", "Training a small GABIC"),
    ("02", "Evaluating the checkpoint: reconstructions"),
    ("rd", "Rate-distortion curves"),
    ("04", "Inside the kNN attention"),
    ("05", "What the graph buys: GABIC against WACNN"),
]


def _index_html(work: Path, summary: dict[str, Any]) -> str:
    """A static page: the notebooks with their run times, then every figure (PNG, linked to its
    PDF) by notebook, then the results files."""
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>gabic demo</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "img{max-width:100%;border:1px solid #ddd;margin:.5em 0}figure{margin:1.5em 0}"
        "td,th{padding:.2em .8em;text-align:left}</style></head><body>",
        f"<h1>gabic demo</h1><p>gabic {e(summary['gabic'])} on {e(summary['machine'])}, device {e(summary['device'])}; "
        f"images: {e(summary['dataset'])}; {summary['seconds']:.0f} s in all"
        f"{' (quick settings: tiny model and sweeps)' if summary['quick'] else ''}.</p>",
        "<h2>Notebooks</h2><table><tr><th>notebook</th><th>run time</th><th></th></tr>",
    ]
    for row in summary["notebooks"]:
        name = row["notebook"]
        stem = Path(name).stem
        parts.append(
            f"<tr><td>{e(name)}</td><td>{row['seconds']:.0f} s</td><td><a href='notebooks/{e(stem)}.html'>HTML</a> · "
            f"<a href='notebooks/{e(name)}'>ipynb</a></td></tr>"
        )
    parts.append("</table>")
    figures = [Path(f).stem for f in summary["figures"]]
    for prefix, title in _SECTIONS:
        mine = [f for f in figures if f.startswith(prefix) or (prefix == "rd" and f.startswith(("03", "rd_")))]
        if not mine:
            continue
        parts.append(f"<h2>{e(title)}</h2>")
        for stem in mine:
            pdf = f" · <a href='figures/{e(stem)}.pdf'>PDF</a>" if (work / "figures" / f"{stem}.pdf").exists() else ""
            parts.append(f"<figure><img src='figures/{e(stem)}.png' alt='{e(stem)}'><figcaption>{e(stem)}{pdf}</figcaption></figure>")
    tables = sorted((work / "figures").glob("*.md"))
    if tables:
        parts.append("<h2>BD tables</h2><ul>")
        parts += [f"<li><a href='figures/{e(t.name)}'>{e(t.name)}</a></li>" for t in tables]
        parts.append("</ul>")
    parts.append("<h2>Results files</h2><ul>")
    parts += [f"<li><a href='results/{e(r)}'>{e(r)}</a></li>" for r in summary["results"]]
    parts.append("</ul></body></html>")
    return "\n".join(parts)
