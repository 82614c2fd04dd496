"""``gabic demo``: notebooks 01-04 run headless, in order, and an index page of what they made.

01 trains a small GABIC on the embedded sample photos (the CPU preset; the paper's on a GPU),
02 evaluates its best checkpoint with real coding, 03 draws its RD curve beside JPEG, HEVC
intra, WebP and AVIF measured here and the published anchors, 04 looks inside its kNN
attention. The photos are the embedded samples, or the Kodak images when ``data/kodak`` (in the working
folder) holds them (``gabic data kodak``).

The output folder receives the executed notebooks (``.ipynb`` and ``.html``), the figures
(``figures/*.png`` and ``.pdf``), the results files (``results/*.json``), ``summary.json`` and
an ``index.html`` that shows them. Everything is written into a temporary folder first and
moved into place at the end: a failed run leaves ``<out>-failed/`` with the failed notebook,
never a half-updated ``<out>``. nbformat and nbconvert (the ``notebooks`` extra) are imported where
the executed notebooks are saved.
"""

from __future__ import annotations

import html
import json
import logging
import os
import platform
import shutil
import tempfile
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
from gabic.notebooks import NotebookError, execute_notebook, jupyter_notes_silenced, notebook_paths

__all__ = ["QUICK", "demo_parameters", "run_demo"]

log = logging.getLogger(__name__)

#: Tiny settings for ``--quick``: every cell runs, in about two minutes on 2 CPU cores.
QUICK = {
    "01": {"N": 16, "M": 16, "NUM_SLICES": 2, "PATCH_SIZE": 64, "BATCH_SIZE": 1, "STEPS": 4, "VAL_INTERVAL": 2},
    "03": {"CODECS": ["jpeg", "webp"], "QUALITIES": {"jpeg": [20, 60], "webp": [30, 70]}},
    "04": {"CROP": 64, "KS": [3, 9]},
}


def _kodak() -> Path | None:
    """``data/kodak`` (where ``gabic data kodak`` puts the images, from the working folder) when it
    holds the 24 images, else None."""
    folder = KODAK_DEST.resolve()
    try:
        return folder if len(list_images(folder)) == 24 else None
    except GabicError:
        return None


def demo_parameters(work: Path, dataset: Path | None, device: str, quick: bool) -> dict[str, dict[str, Any]]:
    """The parameters injected into each notebook (by its two-digit prefix), all paths under ``work``."""
    best = work / "runs" / "demo" / "best.pth.tar"
    figures, results = work / "figures", work / "results"
    params = {
        "01": {"RUN_NAME": "demo", "RUNS_DIR": work / "runs", "FIGURES_DIR": figures, "DEVICE": device},
        "02": {
            "CHECKPOINTS": [best],
            "RELEASED_DIR": None,
            "DATASET": dataset,
            "DEVICE": device,
            "OUT_DIR": results,
            "FIGURES_DIR": figures,
        },
        "03": {"CHECKPOINTS": [best], "DATASET": dataset, "DEVICE": device, "OUT_DIR": figures, "RESULTS_DIR": results},
        "04": {"CHECKPOINT": best, "DEVICE": device, "OUT_DIR": figures, "RESULTS_DIR": results},
    }
    if quick:
        for key, extra in QUICK.items():
            params[key] |= extra
    return params


def run_demo(
    out: str | os.PathLike = "results/demo",
    quick: bool = False,
    device: str = "auto",
    dataset: str | os.PathLike | None = None,
    on_notebook: Callable[[int, int, str, float | None], None] | None = None,
    notebooks: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Run notebooks 01-04 headless and write their outputs and an ``index.html`` to ``out``.

    Args:
        out: the output folder (replaced at the end of a successful run).
        quick: tiny settings (:data:`QUICK`) that check an installation in about two minutes.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        dataset: a folder of images for notebooks 02 and 03; default None: ``data/kodak`` when
            it holds the 24 Kodak images, else the embedded sample photos.
        on_notebook: called as ``on_notebook(i, n, name, seconds)`` before each notebook
            (``seconds`` None) and after it.
        notebooks: the folder of the notebooks; default None: ``notebooks/`` of the gabic
            checkout (see :func:`gabic.notebooks.notebooks_dir`).

    Returns:
        The summary written to ``summary.json``: notebooks with their run times, figures,
        results files, dataset, device, versions.

    Raises:
        NotebookError: a notebook failed (naming it, the cell and the error); the partial
            output is in ``<out>-failed/``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GabicError(f"{out}: exists and is not a folder")
    try:
        resolve_device(device)  # a bad device fails here, not in notebook 01
    except ValueError as err:
        raise GabicError(f"--device: {err}") from None
    if dataset is None:
        dataset = _kodak()
    else:
        dataset = Path(dataset).resolve()
        list_images(dataset)  # a missing or empty folder fails here
    notebooks = notebook_paths(notebooks)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent)).resolve()
    for sub in ("notebooks", "figures", "results"):
        (work / sub).mkdir()
    params = demo_parameters(work, dataset, device, quick)
    rows = []
    started = time.perf_counter()
    try:
        for i, path in enumerate(notebooks, 1):
            if on_notebook:
                on_notebook(i, len(notebooks), path.name, None)
            t0 = time.perf_counter()
            try:
                nb = execute_notebook(path, params.get(path.name[:2], {}), cwd=work, timeout=1800)
            except NotebookError as err:
                if err.notebook is not None:
                    _save_notebook(err.notebook, work / "notebooks" / path.name)
                failed = out.with_name(out.name + "-failed")
                shutil.rmtree(failed, ignore_errors=True)
                work.rename(failed)
                raise NotebookError(f"{err} (partial output in {failed}/)", err.notebook) from None
            seconds = time.perf_counter() - t0
            _save_notebook(nb, work / "notebooks" / path.name)
            rows.append({"notebook": path.name, "seconds": round(seconds, 1)})
            if on_notebook:
                on_notebook(i, len(notebooks), path.name, seconds)
        summary = {
            "gabic": __version__,
            "quick": quick,
            "device": str(resolve_device(device)),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            "dataset": str(dataset) if dataset else "the embedded sample photos",
            "seconds": round(time.perf_counter() - started, 1),
            "notebooks": rows,
            "figures": sorted(p.name for p in (work / "figures").glob("*.png")),
            "results": sorted(p.name for p in (work / "results").glob("*.json")),
        }
        write_atomic(work / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
        write_atomic(work / "index.html", _index_html(work, summary).encode())
    except BaseException:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    work.rename(out)
    return summary


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
