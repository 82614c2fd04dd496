"""Downloading released checkpoints: gdown (resumable, with a progress bar), archives unpacked,
every file verified before it is put in place and recorded in the lock."""

from __future__ import annotations

import datetime
import logging
import os
import shutil
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gabic.errors import CheckpointError, GabicError
from gabic.files import atomic_open
from gabic.released.catalogue import DEFAULT_DEST, Entry, catalogue, entries
from gabic.released.lock import LOCK_NAME, changed_message, read_lock, sha256_of, verify_file, write_lock

__all__ = ["STAGING", "download"]

log = logging.getLogger(__name__)

#: Where downloads are staged (inside the destination, so the final move is a rename).
STAGING = ".downloading"


def _fetch(url: str, output: Path, quiet: bool) -> None:
    """gdown, resumable, into ``output``; network failures as one GabicError line."""
    import gdown  # imported here: only downloads need it (and its requests session)
    import requests

    try:
        gdown.download(url=url, output=str(output), quiet=quiet, resume=True)
    except requests.exceptions.ConnectionError as err:
        host = url.split("/")[2] if "//" in url else url
        raise GabicError(f"offline: cannot reach {host} to download {output.name} ({type(err).__name__})") from None
    except requests.exceptions.RequestException as err:
        raise GabicError(f"downloading {output.name} from {url} failed: {type(err).__name__}: {err}") from None
    except Exception as err:  # gdown's own errors: Drive refused the file, a download cut short
        if type(err).__module__.startswith("gdown"):
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise GabicError(f"downloading {output.name} from {url} failed: {type(err).__name__}: {first}") from None
        raise


def _extract(archive: Path, member: str, output: Path, shown: str) -> None:
    """Copy the archive member whose file name is ``member`` to ``output``."""
    try:
        with zipfile.ZipFile(archive) as z:
            names = [n for n in z.namelist() if Path(n).name == member]
            if not names:
                raise GabicError(f"{shown}: holds no {member} (it has {len(z.namelist())} files)")
            with z.open(names[0]) as src, atomic_open(output) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except zipfile.BadZipFile as err:
        archive.unlink(missing_ok=True)  # a broken download: the next try starts afresh
        raise GabicError(f"{shown}: not a zip archive ({err}); the download was incomplete or is not the archive") from None


def download(
    names: Sequence[str],
    dest: str | os.PathLike = DEFAULT_DEST,
    accept_changed: bool = False,
    quiet: bool = False,
    data: dict[str, Any] | None = None,
    on_file: Callable[[Entry, Path, str], None] | None = None,
) -> list[Path]:
    """Download released checkpoints into ``dest``, verified, and record them in its lock file.

    Args:
        names: entry names, architectures or ``"all"`` (see :func:`entries`).
        dest: the destination folder (created; default ``checkpoints``).
        accept_changed: take a file whose SHA-256 differs from the lock's (it changed upstream)
            and record the new one. Default False: refuse it and keep the file in place.
        quiet: no progress bars.
        data: a catalogue (default :func:`catalogue`).
        on_file: called as ``on_file(entry, path, what)`` per entry, ``what`` one of
            ``"verified"`` (already there, unchanged), ``"downloaded"``.

    Each file is fetched with gdown into ``<dest>/.downloading/`` (an interrupted download
    resumes there), unpacked when it is an archive member, read as data (nothing in it runs), its
    keys and shapes compared with the manifest, its SHA-256 compared with the lock (or recorded
    there), and only then moved into place. An archive is fetched once for all its members and
    removed when they are in place.

    Returns:
        The paths of the entries' files in ``dest``.

    Raises:
        GabicError: an unknown name, offline, a failed download, an archive without the file.
        CheckpointError: a file that is not data, does not match its manifest, or changed
            upstream (unless ``accept_changed``); nothing of it is put in place.
    """
    data = data or catalogue()
    chosen = entries(names, data)
    dest = Path(dest)
    created = not dest.exists()
    staging = dest / STAGING
    staging.mkdir(parents=True, exist_ok=True)
    try:
        return _download(chosen, dest, staging, data, accept_changed, quiet, on_file)
    finally:  # partial downloads stay for a resume; empty folders this call made go
        if staging.is_dir() and not any(staging.iterdir()):
            staging.rmdir()
        if created and dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()


def _download(
    chosen: list[Entry],
    dest: Path,
    staging: Path,
    data: dict[str, Any],
    accept_changed: bool,
    quiet: bool,
    on_file: Callable[[Entry, Path, str], None] | None,
) -> list[Path]:
    lock = read_lock(dest)
    lock_path = dest / LOCK_NAME
    archives: dict[str, Path] = {}
    written: list[Path] = []
    try:
        for entry in chosen:
            existing = entry.path(dest)
            locked = lock["files"].get(entry.name)
            if existing is not None and locked is not None:
                digest = sha256_of(existing)
                if digest == locked["sha256"]:
                    log.info("%s: %s is there and unchanged", entry.name, existing)
                    written.append(existing)
                    if on_file:
                        on_file(entry, existing, "verified")
                    continue
                raise CheckpointError(
                    changed_message(entry, lock_path, locked, digest, f"{existing}")
                    + "; it changed on disk: delete it to download it again"
                )
            candidate = staging / entry.file
            if entry.archive is not None:
                spec = data.get("archives", {}).get(entry.archive)
                if spec is None:
                    raise GabicError(f"{entry.name}: the catalogue has no archive {entry.archive!r}")
                if entry.archive not in archives:
                    archive = staging / spec.get("file", f"{entry.archive}.zip")
                    log.info("downloading %s (%s) for %s", archive.name, spec.get("page") or spec["url"], entry.name)
                    _fetch(spec["url"], archive, quiet)
                    archives[entry.archive] = archive
                _extract(archives[entry.archive], entry.member or entry.file, candidate, archives[entry.archive].name)
            else:
                if entry.url is None:
                    raise GabicError(f"{entry.name}: the catalogue gives no address for it")
                log.info("downloading %s (%s)", entry.name, entry.page or entry.url)
                _fetch(entry.url, candidate, quiet)
            try:
                verify_file(entry, candidate, f"the file downloaded from {entry.page or entry.url or entry.archive}", data)
            except CheckpointError:
                candidate.unlink(missing_ok=True)  # not kept: a bad file is never put in place
                raise
            digest = sha256_of(candidate)
            if locked is not None and digest != locked["sha256"] and not accept_changed:
                candidate.unlink(missing_ok=True)
                raise CheckpointError(
                    changed_message(entry, lock_path, locked, digest, "the file downloaded now")
                    + ": it changed upstream. Nothing was replaced; download it with --accept-changed (accept_changed=True) to take it"
                )
            final = dest / entry.file
            os.replace(candidate, final)
            lock["files"][entry.name] = {
                "file": entry.file,
                "sha256": digest,
                "bytes": final.stat().st_size,
                "source": entry.page or entry.url or data.get("archives", {}).get(entry.archive, {}).get("page"),
                "recorded": datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat(),
            }
            write_lock(dest, lock)
            written.append(final)
            if on_file:
                on_file(entry, final, "downloaded")
    finally:  # a fetched archive is not kept: a later call fetches it again (its partial download, if any, stays)
        for archive in archives.values():
            archive.unlink(missing_ok=True)
    return written
