"""Downloading released checkpoints: gdown for Google Drive, a plain HTTP(S) GET (urllib) for the
CompressAI zoo, both resumable with a progress bar; archives unpacked; every file verified before
it is put in place and recorded in the lock."""

from __future__ import annotations

import datetime
import http.client
import logging
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tqdm.auto import tqdm

from gabic.errors import CheckpointError, GabicError
from gabic.files import atomic_open
from gabic.released.catalogue import DEFAULT_DEST, Entry, catalogue, entries
from gabic.released.lock import LOCK_NAME, changed_message, read_lock, sha256_of, verify_file, write_lock

__all__ = ["STAGING", "download"]

log = logging.getLogger(__name__)

#: Where downloads are staged (inside the destination, so the final move is a rename).
STAGING = ".downloading"
#: Seconds a plain HTTP(S) download waits to connect, and for each read.
HTTP_TIMEOUT = 60


def _fetch(url: str, output: Path, quiet: bool, how: str = "gdown") -> None:
    """Fetch ``url`` into ``output``, resumable, ``how`` the catalogue's ``download`` (``"gdown"``
    or ``"http"``); network failures as one GabicError line."""
    if how == "http":
        _fetch_http(url, output, quiet)
    else:
        _fetch_gdown(url, output, quiet)


def _fetch_http(url: str, output: Path, quiet: bool, resume: bool = True) -> None:
    """A plain HTTP(S) GET (urllib) into ``output``: the bytes go to ``<output>.part`` (a progress
    bar unless ``quiet``), which becomes ``output`` only when all the bytes the server announced
    have arrived. A ``.part`` left by an interrupted download is continued with a ``Range``
    request (a server that answers with the whole file starts it again)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise GabicError(f"{output.name}: the catalogue's address {url} is not an http(s) address")
    part = output.with_name(output.name + ".part")
    start = part.stat().st_size if resume and part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    total = None
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            if response.status != 206:  # the whole file (a server without ranges, or no range asked)
                start = 0
            length = response.headers.get("Content-Length", "")
            total = start + int(length) if length.isdigit() else None
            with (
                open(part, "ab" if start else "wb") as f,
                tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=output.name, disable=quiet) as bar,
            ):
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:  # the part on disk does not fit the file (any more): start again
            part.unlink(missing_ok=True)
            return _fetch_http(url, output, quiet, resume=False)
        raise GabicError(f"downloading {output.name} from {url} failed: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise GabicError(f"offline: cannot reach {parts.netloc} to download {output.name} ({type(err.reason).__name__})") from None
    except (OSError, http.client.HTTPException) as err:  # cut off while reading: the part stays for the next try
        raise GabicError(
            f"downloading {output.name} from {url} failed: {type(err).__name__}: {err}; the next download resumes"
        ) from None
    got = part.stat().st_size
    if total is not None and got != total:
        raise GabicError(
            f"downloading {output.name} from {url} failed: the connection closed after {got} of {total} bytes; "
            "the next download resumes"
        )
    os.replace(part, output)
    return None


def _fetch_gdown(url: str, output: Path, quiet: bool) -> None:
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

    Each file is fetched into ``<dest>/.downloading/`` (an interrupted download resumes there)
    with gdown or, where the catalogue says ``"download": "http"`` (the CompressAI zoo), a plain
    HTTP(S) GET; unpacked when it is an archive member; its SHA-256 compared with the hex digits
    its published name carries, where it carries them (``"sha256_in_name"``, torch.hub's
    convention: ``mbt2018-mean-3-723404a8.pth.tar``); read as data (nothing in it runs); its keys
    and shapes compared with the manifest; its SHA-256 compared with the lock (or recorded there);
    and only then moved into place. An archive is fetched once for all its members and removed
    when they are in place. ``accept_changed`` does not override the name's digits: a file that
    is not the one its name says is never taken.

    Returns:
        The paths of the entries' files in ``dest``.

    Raises:
        GabicError: an unknown name, offline, a failed download, an archive without the file.
        CheckpointError: a file whose SHA-256 does not start with its name's digits, that is not
            data, does not match its manifest, or changed upstream (unless ``accept_changed``);
            nothing of it is put in place or recorded.
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
                    _fetch(spec["url"], archive, quiet, spec.get("download", "gdown"))
                    archives[entry.archive] = archive
                _extract(archives[entry.archive], entry.member or entry.file, candidate, archives[entry.archive].name)
            else:
                if entry.url is None:
                    raise GabicError(f"{entry.name}: the catalogue gives no address for it")
                log.info("downloading %s (%s)", entry.name, entry.page or entry.url)
                _fetch(entry.url, candidate, quiet, entry.download)
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
