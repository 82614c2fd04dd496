"""Run gabic's notebooks headless: parameters injected after the ``parameters`` cell, a kernel
of this very interpreter, errors that name the notebook, the cell and the exception.

Used by ``gabic demo`` and by the tests. The notebooks are the ``notebooks/`` folder of a gabic
checkout: found beside the package when gabic is installed editable from one (``pip install -e
.``), or passed explicitly (``gabic demo --notebooks DIR``) when gabic is installed from a wheel.
nbclient, nbformat and jupyter_client (the ``notebooks`` extra) are imported by the functions that
run notebooks, so that ``import gabic.notebooks`` works without them.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gabic.errors import GabicError

__all__ = [
    "NotebookError",
    "execute_notebook",
    "inject_parameters",
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
    timeout: int = 900,
    env: dict[str, str] | None = None,
) -> Any:
    """Execute a notebook top to bottom in a fresh kernel of this interpreter.

    Args:
        path: the ``.ipynb`` file.
        parameters: overrides injected after the ``parameters`` cell (see :func:`inject_parameters`).
        cwd: the kernel's working directory (default: the notebook's folder).
        timeout: seconds allowed per cell (default 900).
        env: extra environment variables for the kernel (e.g. ``OMP_NUM_THREADS``).

    Returns:
        The executed notebook (``nbformat`` node) with its outputs.

    Raises:
        NotebookError: a cell failed or timed out: ``"<notebook>: cell <n> (<first line>) failed:
        <exception>: <message>"``, with the partly executed notebook in ``.notebook``.
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
        nb, km=km, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": str(cwd or path.parent)}}
    )
    # The kernel's own start-up and shut-down notes (TCP on localhost, parent exited) go to a
    # file, not the user's terminal; its last lines are reported if the kernel dies.
    running = [0]  # index in nb.cells of the cell being executed, for the error messages
    client.on_cell_execute = lambda cell, cell_index: running.__setitem__(0, cell_index)
    with tempfile.TemporaryFile() as kernel_log, jupyter_notes_silenced():  # nbclient's note on closing the ZMQ context
        try:
            client.execute(env=kernel_env, stdout=kernel_log, stderr=kernel_log)
        except nbclient.exceptions.CellTimeoutError as err:
            raise NotebookError(f"{path.name}: {_cell_name(nb, running[0])} timed out after {timeout} s ({err})", nb) from None
        except nbclient.exceptions.CellExecutionError as err:
            raise NotebookError(
                f"{path.name}: {_cell_name(nb, running[0])} failed: {err.ename}: {_first_line(err.evalue)}", nb
            ) from None
        except nbclient.exceptions.DeadKernelError:
            kernel_log.seek(0)
            lines = [
                line
                for line in kernel_log.read().decode(errors="replace").splitlines()
                if line.strip() and "[IPKernelApp]" not in line
            ]
            tail = " | ".join(lines[-3:])
            raise NotebookError(
                f"{path.name}: the kernel died during {_cell_name(nb, running[0])} (out of memory?){': ' + tail if tail else ''}", nb
            ) from None
    return nb


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


def _cell_name(nb: Any, index: int) -> str:
    """``cell <n> (<first line>)`` of ``nb.cells[index]``; n counts the notebook's own code cells
    from 1 (the injected parameters cell is not counted)."""
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    if index not in code:
        return "the injected parameters" if 0 <= index < len(nb.cells) else "a cell"
    source = nb.cells[index].source
    first = next((line for line in source.splitlines() if line.strip() and not line.startswith("%")), "").strip()
    return f"cell {code.index(index) + 1} ({first[:60]})"


def _first_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""
