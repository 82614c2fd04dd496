"""Checking released checkpoint files: read as data against their manifest, and the lock file
(``<dest>/checkpoints.lock``) holding the SHA-256 of each file as first downloaded or found."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gabic.checkpoints import read_checkpoint
from gabic.errors import CheckpointError, GabicError
from gabic.files import write_atomic
from gabic.released.catalogue import DEFAULT_DEST, Entry, catalogue, entries, manifest_problems

__all__ = [
    "LOCK_NAME",
    "changed_message",
    "local_status",
    "read_lock",
    "released_checkpoints",
    "sha256_of",
    "verify_file",
    "write_lock",
]

log = logging.getLogger(__name__)

#: The lock file in the destination folder: the SHA-256 of every file as first downloaded.
LOCK_NAME = "checkpoints.lock"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(entry: Entry, path: Path, shown: str, data: dict[str, Any] | None = None) -> None:
    """The file is the one its published name says (its SHA-256 starts with the name's hex digits,
    for an entry whose name carries them: :attr:`Entry.sha256_prefix`; checked first, before the
    file is read), loads as data and matches its manifest; CheckpointError naming ``shown`` otherwise."""
    prefix = entry.sha256_prefix
    if prefix is not None:
        digest = sha256_of(path)
        if not digest.startswith(prefix):
            raise CheckpointError(
                f"{entry.name} ({shown}): its SHA-256 is {digest}, but its published name {entry.published_name} says it "
                f"starts with {prefix}: not the published file"
            )
    try:
        ckpt = read_checkpoint(path, mmap=True)  # never trusted: a downloaded file runs no code
    except CheckpointError as err:
        raise CheckpointError(f"{entry.name}: {str(err).replace(str(path), shown)}") from None
    problems = manifest_problems(ckpt["state_dict"], entry.manifest, data)
    if problems:
        raise CheckpointError(f"{entry.name} ({shown}): not the released {entry.architecture} checkpoint: " + "; ".join(problems))


def read_lock(dest: Path) -> dict[str, Any]:
    path = dest / LOCK_NAME
    if not path.exists():
        return {"about": "SHA-256 of each released checkpoint as first downloaded (gabic checkpoints download)", "files": {}}
    try:
        lock = json.loads(path.read_text())
        if not isinstance(lock.get("files"), dict):
            raise ValueError("no 'files'")
    except (OSError, ValueError, AttributeError) as err:
        raise GabicError(f"{path}: not a readable checkpoint lock ({err}); move it away to start a new one") from None
    return lock


def write_lock(dest: Path, lock: dict[str, Any]) -> None:
    write_atomic(dest / LOCK_NAME, (json.dumps(lock, indent=1, sort_keys=True) + "\n").encode())


def changed_message(entry: Entry, lock_path: Path, locked: dict[str, Any], now: str, what: str) -> str:
    return (
        f"{entry.name}: {what} differs from the one recorded in {lock_path} on {locked.get('recorded', '?')} "
        f"(SHA-256 {locked['sha256'][:16]}... then, {now[:16]}... now)"
    )


def local_status(dest: str | os.PathLike = DEFAULT_DEST, data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per catalogue entry: ``name, architecture, lambda, quality, source, file`` (the
    local file or None) and ``lock`` (``"locked"``: recorded in the lock, size as recorded;
    ``"size differs"``; ``"not locked"``: present but never downloaded by gabic; None: absent).
    Sizes only: the SHA-256 is compared when a file is used or downloaded again."""
    dest = Path(dest)
    lock = read_lock(dest)["files"] if (dest / LOCK_NAME).exists() else {}
    rows = []
    for e in entries(data=data):
        path = e.path(dest)
        state = None
        if path is not None:
            locked = lock.get(e.name)
            state = "not locked" if locked is None else "locked" if locked.get("bytes") == path.stat().st_size else "size differs"
        rows.append(
            {
                "name": e.name,
                "architecture": e.architecture,
                "lambda": e.lmbda,
                "quality": e.quality,
                "source": e.source,
                "file": path,
                "lock": state,
            }
        )
    return rows


def released_checkpoints(
    names: Sequence[str] | None = None, dest: str | os.PathLike = DEFAULT_DEST, data: dict[str, Any] | None = None
) -> list[tuple[Entry, Path]]:
    """The released checkpoints present in ``dest`` (of ``names``: entries, architectures or
    ``"all"``; None: all), each checked against the lock: a file recorded there must have its
    SHA-256; a file that is not (put there by hand) is checked against its manifest and then
    recorded, so that later uses find it unchanged.

    Raises:
        CheckpointError: a file that differs from the lock, or (unrecorded) is not data or does
            not match its manifest.
    """
    dest = Path(dest)
    data = data or catalogue()
    chosen = entries(names, data)
    present = [(e, p) for e in chosen if (p := e.path(dest)) is not None]
    if not present:
        return []
    lock = read_lock(dest)
    changed = False
    for entry, path in present:
        digest = sha256_of(path)
        locked = lock["files"].get(entry.name)
        if locked is None:
            verify_file(entry, path, str(path), data)
            lock["files"][entry.name] = {
                "file": path.name,
                "sha256": digest,
                "bytes": path.stat().st_size,
                "source": "found in the folder (not downloaded by gabic)",
                "recorded": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
            }
            changed = True
            log.info("%s: %s recorded in %s", entry.name, path, dest / LOCK_NAME)
        elif digest != locked["sha256"]:
            raise CheckpointError(
                changed_message(entry, dest / LOCK_NAME, locked, digest, str(path))
                + "; download it again (delete the file first) or restore it"
            )
    if changed:
        write_lock(dest, lock)
    return present
