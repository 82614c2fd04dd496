"""Files gabic writes: the permissions a plain ``open`` would give, and one clear line for a folder that refuses them."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gabic.checkpoints import save_checkpoint  # noqa: E402
from gabic.errors import GabicError  # noqa: E402
from gabic.files import OutputError, atomic_open, current_umask, write_atomic  # noqa: E402
from gabic.plots import save_figure  # noqa: E402
from tests.conftest import run_cli, small_model  # noqa: E402


@pytest.fixture
def umask() -> Iterator[None]:
    """Restore the process's umask after the test (the test sets its own)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="no POSIX modes")
@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, expected):
    os.umask(mask)
    assert current_umask() == mask
    data = write_atomic(tmp_path / "a" / "data.bin", b"gabic")
    ckpt = save_checkpoint(small_model("gabic"), tmp_path / "small.pth.tar", lmbda=0.013)
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    figures = save_figure(fig, tmp_path / "figures" / "rd", formats=("png", "svg"))
    paths = [data, ckpt, *figures]
    assert {p: _mode(p) for p in paths} == {p: expected for p in paths}
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="no POSIX modes")
def test_overwriting_a_private_file_gives_the_umask_mode(tmp_path, umask):
    os.umask(0o022)
    target = tmp_path / "results.json"
    target.write_bytes(b"old")
    target.chmod(0o600)
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new" and _mode(target) == 0o644


@pytest.fixture
def refusing(monkeypatch, tmp_path) -> Path:
    """A folder in which ``tempfile.mkstemp`` fails as in a folder without write permission
    (the tests run as root, for whom chmod stops nothing)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # noqa: A002 - tempfile's own name
        if dir is not None and Path(dir) == folder:
            tmp = folder / f"{kwargs.get('prefix', '')}3dtlee6x{kwargs.get('suffix', '')}"
            raise PermissionError(errno.EPERM, "Operation not permitted", str(tmp))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return folder


def test_unwritable_folder_names_the_output_not_the_temporary(refusing):
    target = refusing / "x.gabic"
    with pytest.raises(OutputError) as info:
        write_atomic(target, b"data")
    err = info.value
    assert str(err) == f"cannot write {target}: the folder {refusing} is not writable (Operation not permitted)"
    assert ".tmp" not in str(err) and err.__cause__ is None and err.__suppress_context__
    assert isinstance(err, GabicError) and isinstance(err, OSError)
    assert err.errno == errno.EPERM and err.strerror == "Operation not permitted"
    assert list(refusing.iterdir()) == []


def test_failed_rename_names_the_output_and_leaves_nothing(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(src), None, str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    target = tmp_path / "out.json"
    with pytest.raises(
        OutputError, match=r"^cannot write .*out\.json: cannot put the new file in place in the folder .* \(Permission denied\)$"
    ):
        write_atomic(target, b"{}")
    assert list(tmp_path.iterdir()) == []


def test_folder_that_cannot_be_created_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(OutputError, match=rf"^cannot write {blocker}/x\.gabic: cannot create the folder {blocker} \(File exists\)$"):
        write_atomic(blocker / "x.gabic", b"data")


def test_errors_inside_the_block_pass_through_unchanged(tmp_path):
    with pytest.raises(OSError, match="disk full") as info, atomic_open(tmp_path / "x.bin") as f:
        f.write(b"part")
        raise OSError(errno.ENOSPC, "disk full")
    assert not isinstance(info.value, OutputError)
    assert list(tmp_path.iterdir()) == []


def test_cli_compress_into_unwritable_folder_prints_one_line(capsys, refusing, sample_paths, gabic_ckpt):
    photo = next(p for p in sample_paths if p.name == "coffee.png")
    target = refusing / "x.gabic"
    code, out, err = run_cli(capsys, "compress", photo, target, "--checkpoint", gabic_ckpt, "--device", "cpu")
    lines = err.strip().splitlines()
    assert code == 1 and out == ""
    assert lines == [f"gabic: error: cannot write {target}: the folder {refusing} is not writable (Operation not permitted)"], err
    assert ".tmp" not in err
    assert list(refusing.iterdir()) == []
