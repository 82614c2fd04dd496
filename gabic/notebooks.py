"""Run gabic's notebooks headless: parameters injected after the ``parameters`` cell, a kernel
of this very interpreter, errors that name the notebook, the cell and the exception.

Used by ``gabic demo`` and by the tests. The notebooks are the ``notebooks/`` folder of a gabic
checkout: found beside the package when gabic is installed editable from one (``pip install -e
.``), or passed explicitly (``gabic demo --notebooks DIR``) when gabic is installed from a wheel.
nbclient, nbformat and jupyter_client (the ``notebooks`` extra) are imported by the functions that
run notebooks, so that ``import gabic.notebooks`` works without them.

It also knows what the notebooks open by default: notebook 01's checkpoint
(:func:`notebook01_checkpoint`) and the pair notebook 05 compares (:func:`default_pair`, which may
train a WACNN for it): orchestration that the library (:mod:`gabic.analysis`) leaves to its callers.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gabic.errors import GabicError, first_line
from gabic.evaluate import CHECKPOINT_SUFFIXES, checkpoints_by_architecture, find_checkpoints
from gabic.released import released_checkpoints
from gabic.train.like import fit_like, held_out_images

__all__ = [
    "NotebookError",
    "default_pair",
    "execute_notebook",
    "inject_parameters",
    "notebook01_checkpoint",
    "jupyter_notes_silenced",
    "notebook_paths",
    "notebooks_dir",
    "parameters_source",
]

log = logging.getLogger(__name__)

#: The tag of the cell that holds a notebook's parameters (papermill's convention).
PARAMETERS_TAG = "parameters"
#: The tag of the cell :func:`inject_parameters` adds after it.
INJECTED_TAG = "injected-parameters"


class NotebookError(GabicError):
    """A notebook failed: its name, the failing cell (index among the code cells, first line)
    and the exception, in one line; ``.notebook`` holds the partly executed notebook."""

    def __init__(self, message: str, notebook: Any = None):
        super().__init__(message)
        self.notebook = notebook


#: Where notebook 01 writes its best checkpoint, then where ``gabic demo`` puts its run's, from the
#: repository root: the default checkpoint of notebooks 02-04 (:func:`notebook01_checkpoint`).
NOTEBOOK01_CHECKPOINTS = ("results/runs/notebook01/best.pth.tar", "results/demo/runs/demo/best.pth.tar")


def notebook01_checkpoint(root: str | os.PathLike = "..") -> Path:
    """The checkpoint notebooks 02-04 use by default: notebook 01's best, else the demo's (the first
    of :data:`NOTEBOOK01_CHECKPOINTS` under ``root`` that exists; the first when none does, so that
    the error names where notebook 01 writes it). ``root`` is the repository root, ``..`` from
    ``notebooks/``."""
    candidates = [Path(root) / c for c in NOTEBOOK01_CHECKPOINTS]
    return next((c for c in candidates if c.is_file()), candidates[0])


def default_pair(
    first: str | os.PathLike | list[str | os.PathLike] | None = None,
    second: str | os.PathLike | list[str | os.PathLike] | None = None,
    released_dir: str | os.PathLike | None = None,
    root: str | os.PathLike = "..",
    steps: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> tuple[list[Path], list[Path], list[Path] | None]:
    """The GABIC and WACNN checkpoints to compare, and the images to compare them on.

    In order: ``first`` and ``second`` when both are given; else the released GABIC and WACNN
    checkpoints in ``released_dir`` when it holds both families (the catalogue's files,
    :func:`gabic.released.released_checkpoints`, checked against the lock; else any checkpoints
    there, :func:`gabic.evaluate.checkpoints_by_architecture`); else ``first`` (default: notebook 01's
    best checkpoint, else the demo's, :func:`notebook01_checkpoint` under ``root``)
    against a WACNN trained exactly the way that run was (:func:`gabic.train.fit_like`, in
    ``<run>-wacnn`` beside it; trained now when it has no ``best.pth.tar`` yet, with ``steps``
    when given).

    Returns:
        ``(first checkpoints, second checkpoints, images)``: ``images`` is the run's held-out
        photos (:func:`gabic.train.held_out_images`) for a trained pair, None otherwise (the
        caller's choice; the released models were trained on neither).

    Raises:
        GabicError: a checkpoint without its run's ``config.json`` when a WACNN has to be trained
            like it (give ``second`` then).
    """
    if first is not None and second is not None:
        return find_checkpoints(first), find_checkpoints(second), None
    if released_dir is not None and Path(released_dir).is_dir():
        groups: dict[str, list[Path]] = {}
        for entry, path in released_checkpoints(None, released_dir):  # the catalogue's, checked against the lock
            groups.setdefault(entry.architecture, []).append(path)
        if not ("gabic" in groups and "wacnn" in groups):  # any other checkpoints put there
            found = [p for p in Path(released_dir).iterdir() if p.is_file() and p.name.endswith(CHECKPOINT_SUFFIXES)]
            groups = checkpoints_by_architecture(sorted(found)) if found else {}
        if "gabic" in groups and "wacnn" in groups:
            log.info("comparing the released checkpoints in %s", released_dir)
            return groups["gabic"], groups["wacnn"], None
    gabic = find_checkpoints(first if first is not None else notebook01_checkpoint(root))
    run = gabic[0].parent
    if not (run / "config.json").is_file():
        raise GabicError(
            f"{gabic[0]}: no config.json of its run beside it to train a WACNN the same way; give the WACNN checkpoints too"
        )
    partner = run.parent / f"{run.name}-wacnn"
    if not (partner / "best.pth.tar").is_file():
        log.info("training a WACNN the way %s was trained, into %s", run, partner)
        fit_like(run, "wacnn", progress=progress, steps=steps, device=device)
    return gabic, [partner / "best.pth.tar"], held_out_images(run)


def notebooks_dir(folder: str | os.PathLike | None = None) -> Path:
    """The folder of gabic's notebooks: ``folder`` when given, else ``notebooks/`` of the source
    checkout gabic is installed from (editable). A GabicError says what to pass when neither is there."""
    if folder is not None:
        path = Path(folder)
        if not path.is_dir():
            raise GabicError(f"{path}: no such notebooks folder")
        return path
    path = Path(__file__).resolve().parents[1] / "notebooks"
    if not path.is_dir():
        raise GabicError(
            "the notebooks are not installed with gabic: pass the notebooks/ folder of a gabic checkout (gabic demo --notebooks DIR)"
        )
    return path


def notebook_paths(folder: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks (``01_*.ipynb`` ...) of :func:`notebooks_dir`, in order."""
    paths = sorted(p for p in notebooks_dir(folder).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise GabicError(f"{notebooks_dir(folder)}: no numbered notebooks (01_*.ipynb ...) in this folder")
    return paths


def parameters_source(parameters: dict[str, Any]) -> str:
    """Python assignments for ``parameters``: ``NAME = repr(value)`` per line (paths as strings)."""
    lines = []
    for name, value in parameters.items():
        if not name.isidentifier():
            raise ValueError(f"parameter name {name!r} is not a Python identifier")
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        elif isinstance(value, list | tuple):
            value = type(value)(os.fspath(v) if isinstance(v, os.PathLike) else v for v in value)
        lines.append(f"{name} = {value!r}")
    return "\n".join(lines)


def inject_parameters(nb: Any, parameters: dict[str, Any] | str) -> Any:
    """Insert a code cell tagged ``injected-parameters`` right after the notebook's
    ``parameters`` cell, holding ``parameters`` (a dict, see :func:`parameters_source`, or
    source text). Parameters not given keep the notebook's defaults. Returns ``nb``."""
    import nbformat

    index = [i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])]
    if len(index) != 1:
        raise GabicError(f"expected exactly one cell tagged {PARAMETERS_TAG!r}, found {len(index)}")
    source = parameters if isinstance(parameters, str) else parameters_source(parameters)
    cell = nbformat.v4.new_code_cell(source.strip(), metadata={"tags": [INJECTED_TAG]})
    nb.cells.insert(index[0] + 1, cell)
    return nb


def execute_notebook(
    path: str | os.PathLike,
    parameters: dict[str, Any] | str | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: int | None = 900,
    env: dict[str, str] | None = None,
    on_cell: Callable[[int, int, str], None] | None = None,
) -> Any:
    """Execute a notebook top to bottom in a fresh kernel of this interpreter; the kernel is shut
    down when the notebook ends, whatever the outcome.

    Args:
        path: the ``.ipynb`` file.
        parameters: overrides injected after the ``parameters`` cell (see :func:`inject_parameters`).
        cwd: the kernel's working directory (default: the notebook's folder).
        timeout: seconds allowed per cell (default 900); None: no limit (the demo's long cells).
        env: extra environment variables for the kernel (e.g. ``OMP_NUM_THREADS``).
        on_cell: called as ``on_cell(n, total, first_line)`` when the notebook's code cell ``n``
            (from 1, of ``total``) starts.

    Returns:
        The executed notebook (``nbformat`` node) with its outputs.

    Raises:
        NotebookError: a cell failed or timed out: ``"<notebook>: cell <n> (<first line>) failed:
        <exception>: <message>"``, with the partly executed notebook in ``.notebook``.
        KeyboardInterrupt: Ctrl-C (or SIGTERM) during a cell: the kernel is shut down first.
    """
    import nbclient
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if parameters:
        inject_parameters(nb, parameters)
    # No kernel directories: "python3" falls back to ipykernel's own spec, which runs
    # sys.executable, never the kernel of another environment that happens to be installed.
    # The async manager, as nbclient's own default: with the blocking one, a kernel that dies is never noticed.
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))
    if km.kernel_spec.argv[0] != sys.executable:
        raise GabicError(f"the python3 kernel runs {km.kernel_spec.argv[0]}, not this interpreter ({sys.executable})")
    kernel_env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1", **(env or {})}
    kernel_env.pop("MPLBACKEND", None)  # the kernel's inline backend draws the figures
    client = nbclient.NotebookClient(
        nb,
        km=km,
        kernel_name="python3",
        timeout=timeout,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(cwd or path.parent)}},
    )
    client.owns_km = True  # nbclient then stops the channels and the kernel when the notebook ends, error or not
    # The kernel's own start-up and shut-down notes (TCP on localhost, parent exited) go to a
    # file, not the user's terminal; its last lines are reported if the kernel dies.
    running = [0]  # index in nb.cells of the cell being executed, for the error messages
    code = _code_cells(nb)

    def started(cell: Any, cell_index: int) -> None:
        running[0] = cell_index
        if on_cell is not None and cell_index in code:
            on_cell(code.index(cell_index) + 1, len(code), _first_code_line(cell.source))

    client.on_cell_execute = started
    with tempfile.TemporaryFile() as kernel_log, jupyter_notes_silenced():  # nbclient's note on closing the ZMQ context
        try:
            client.execute(env=kernel_env, stdout=kernel_log, stderr=kernel_log)
        except Exception as err:
            if getattr(client, "_async_cleanup_kernel_future", None) is not None:
                # nbclient's own SIGINT/SIGTERM handler shut the kernel down; what follows (a dead
                # kernel, nbclient's second clean-up tripping on the first) is the interrupt
                raise KeyboardInterrupt from None
            raise _notebook_error(err, nb, path, running[0], timeout, kernel_log) from None
    return nb


def _notebook_error(err: Exception, nb: Any, path: Path, running: int, timeout: int | None, kernel_log: Any) -> Exception:
    """The one-line error of a failed notebook (the exception itself when it is not nbclient's)."""
    import nbclient  # the notebooks extra, as in execute_notebook

    if isinstance(err, nbclient.exceptions.CellTimeoutError):
        return NotebookError(f"{path.name}: {_cell_name(nb, running)} timed out after {timeout} s ({err})", nb)
    if isinstance(err, nbclient.exceptions.CellExecutionError):
        return NotebookError(f"{path.name}: {_cell_name(nb, running)} failed: {err.ename}: {first_line(err.evalue)}", nb)
    if isinstance(err, nbclient.exceptions.DeadKernelError):
        kernel_log.seek(0)
        lines = [
            line for line in kernel_log.read().decode(errors="replace").splitlines() if line.strip() and "[IPKernelApp]" not in line
        ]
        tail = " | ".join(lines[-3:])
        return NotebookError(
            f"{path.name}: the kernel died during {_cell_name(nb, running)} (out of memory?){': ' + tail if tail else ''}", nb
        )
    return err


@contextmanager
def jupyter_notes_silenced() -> Iterator[None]:
    """Within the block, the Jupyter libraries' ``traitlets`` logger shows errors only (their
    notes on closing ZMQ contexts, images without alternative text...)."""
    logger = logging.getLogger("traitlets")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _code_cells(nb: Any) -> list[int]:
    """Indices in ``nb.cells`` of the notebook's own code cells (not the injected parameters)."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]


def _first_code_line(source: str) -> str:
    """The first line of a cell that is neither blank nor a magic, at most 60 characters."""
    return next((line for line in source.splitlines() if line.strip() and not line.startswith("%")), "").strip()[:60]


def _cell_name(nb: Any, index: int) -> str:
    """``cell <n> (<first line>)`` of ``nb.cells[index]``; n counts the notebook's own code cells
    from 1 (the injected parameters cell is not counted)."""
    code = _code_cells(nb)
    if index not in code:
        return "the injected parameters" if 0 <= index < len(nb.cells) else "a cell"
    return f"cell {code.index(index) + 1} ({_first_code_line(nb.cells[index].source)})"
