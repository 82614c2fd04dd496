"""Writing files so that nothing half-written is ever left behind."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from gabic.errors import GabicError

__all__ = ["FIGURE_FORMATS", "OutputError", "atomic_open", "current_umask", "write_atomic"]

#: The figure files gabic writes (:func:`gabic.plots.save_figure`, ``gabic rd --formats``).
FIGURE_FORMATS: tuple[str, ...] = ("pdf", "svg", "png")


#: The errors that say the folder refuses new files (a read-only file system included).
_NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


class OutputError(GabicError, OSError):
    """An output that cannot be written, in one line naming the file asked for and its folder, never
    the temporary file :func:`atomic_open` writes first. Also an OSError with the cause's ``errno`` and
    ``strerror``, so code that catches OSError (or reads ``strerror``) works as before."""

    def __init__(self, message: str, cause: OSError):
        super().__init__(cause.errno, cause.strerror)
        self.message = message

    def __str__(self) -> str:
        return self.message


def current_umask() -> int:
    """The process's umask, read each call (a test or a caller may change it). From Linux's
    ``/proc/self/status`` when it has a ``Umask:`` line, which does not touch the umask; otherwise
    ``os.umask`` set to 022 and restored, a moment in which another thread would create files with umask 022."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _output_error(path: Path, err: OSError, step: str) -> OutputError:
    """The one-line error for ``err``, raised while ``step`` (``"folder"``, ``"create"`` or ``"rename"``)
    of writing ``path``; it names ``path`` and its folder, not the temporary file."""
    folder, reason = path.parent, err.strerror or type(err).__name__
    if step == "folder":
        what = f"cannot create the folder {err.filename or folder}"
    elif err.errno == errno.EISDIR or path.is_dir():
        what = "it is a folder"
    elif step == "create" and err.errno in _NOT_WRITABLE:
        what = f"the folder {folder} is not writable"
    elif step == "create":
        what = f"cannot create a file in the folder {folder}"
    else:
        what = f"cannot put the new file in place in the folder {folder}"
    return OutputError(f"cannot write {path}: {what} ({reason})", err)


@contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path`` for binary writing; rename it onto ``path``
    when the block ends without error, delete it otherwise.

    The file gets the permissions that ``open(path, "w")`` gives a new file, ``0o666 & ~umask``
    (not the 0600 of :func:`tempfile.mkstemp`), replacing those of any file it overwrites.

    Raises:
        OutputError: the folder cannot be created, or refuses the file (not writable, full...),
            or the file cannot be renamed onto ``path``; nothing is left behind. OSErrors raised
            inside the block pass through unchanged.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _output_error(path, err, "folder") from None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise _output_error(path, err, "create") from None
    try:
        if hasattr(os, "fchmod"):  # not on Windows before Python 3.13, where modes mean little
            try:
                os.fchmod(fd, 0o666 & ~current_umask())
            except OSError:  # a file system without modes (some network or FUSE mounts): keep its default
                pass
        with os.fdopen(fd, "wb") as f:
            yield f
        try:
            os.replace(tmp, path)
        except OSError as err:
            raise _output_error(path, err, "rename") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path) as f:
        f.write(data)
    return Path(path)
