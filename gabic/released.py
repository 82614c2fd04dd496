"""The released checkpoints of GABIC, WACNN and STF: a catalogue, a verified download, a lock file.

The catalogue (``gabic/catalogue/checkpoints.json``, package data) lists every checkpoint the
authors released, where it is published (a Google Drive file, or a member of one archive), the
lambda its source states (None where it states none), its authors' quality label, and the
state-dict manifest it must match (``gabic/catalogue/manifests.json``); it also says what was
never released (:func:`missing`). :func:`download` fetches entries with gdown (which handles
Google Drive's confirmation page; a progress bar, and an interrupted download resumes), unpacks
archives, and verifies each file before it is put in place: it loads as data (no code runs,
:func:`gabic.checkpoints.read_checkpoint`), its keys and shapes are the manifest's, and its
SHA-256 is recorded in ``<dest>/checkpoints.lock`` on the first download and compared on every
later download and use (:func:`released_checkpoints`), so a file that changed upstream or on
disk is reported, never used silently. :func:`evaluate_released` measures every entry of a family
found locally through :func:`gabic.evaluate.evaluate_checkpoints`.

``GABIC_CATALOGUE`` (a path to a catalogue JSON) replaces the shipped catalogue, for a mirror.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import shutil
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gabic.checkpoints import current_key, read_checkpoint
from gabic.errors import CheckpointError, GabicError
from gabic.evaluate import evaluate_checkpoints
from gabic.files import atomic_open, write_atomic
from gabic.names import display_name

__all__ = [
    "DEFAULT_DEST",
    "LOCK_NAME",
    "Entry",
    "catalogue",
    "catalogue_source",
    "download",
    "entries",
    "evaluate_released",
    "label_released",
    "local_status",
    "manifest_problems",
    "missing",
    "released_checkpoints",
]

log = logging.getLogger(__name__)

#: Where released checkpoints go (from the working folder; the repository's ``checkpoints/``).
DEFAULT_DEST = Path("checkpoints")
#: The lock file in the destination folder: the SHA-256 of every file as first downloaded.
LOCK_NAME = "checkpoints.lock"
#: Where downloads are staged (inside the destination, so the final move is a rename).
STAGING = ".downloading"
#: Entropy-coder tables whose shapes depend on whether ``update()`` ran before the file was saved
#: (a checkpoint saved during training has them empty): their keys are checked, not their shapes.
UPDATE_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")
#: The environment variable naming another catalogue file (a mirror).
CATALOGUE_ENV = "GABIC_CATALOGUE"


@dataclass(frozen=True)
class Entry:
    """One released checkpoint of the catalogue.

    Attributes:
        name: the catalogue's name (``"gabic_q1"``, ``"cnn_0018"``, ``"stf_0483"``).
        architecture: ``"gabic"``, ``"wacnn"`` or ``"stf"``.
        lmbda: the rate-distortion lambda its source states, None where it states none.
        quality: the label its authors use (``"q1"``, ``"cnn_0018"``).
        source: the key of the catalogue's ``sources`` (who published it, where it says so).
        file: its file name in the destination folder.
        aliases: other names the same file goes by (as the authors distribute it).
        manifest: the family of ``manifests.json`` it must match.
        url: where gdown fetches it (a Google Drive ``uc?id=`` address), or None for an archive member.
        page: the page its source links to.
        archive: the catalogue's archive that holds it (None for a file of its own).
        member: its file name inside that archive.
    """

    name: str
    architecture: str
    lmbda: float | None
    quality: str
    source: str
    file: str
    aliases: tuple[str, ...] = ()
    manifest: str = ""
    url: str | None = None
    page: str | None = None
    archive: str | None = None
    member: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def path(self, dest: str | os.PathLike = DEFAULT_DEST) -> Path | None:
        """Its file in ``dest`` (under its own name or an alias), None when absent."""
        for name in (self.file, *self.aliases):
            if (Path(dest) / name).is_file():
                return Path(dest) / name
        return None


# ---------------------------------------------------------------------------------------- catalogue
def catalogue(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The catalogue: ``path``, else the file named by ``$GABIC_CATALOGUE``, else the shipped one."""
    path = path or os.environ.get(CATALOGUE_ENV)
    try:
        text = Path(path).read_text() if path else (resources.files("gabic") / "catalogue" / "checkpoints.json").read_text()
        data = json.loads(text)
    except (OSError, ValueError) as err:
        raise GabicError(f"{path or 'the shipped catalogue'}: not a readable checkpoint catalogue ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("checkpoints"), list):
        raise GabicError(f"{path or 'the shipped catalogue'}: not a checkpoint catalogue (no list 'checkpoints')")
    return data


def _entry(item: dict[str, Any]) -> Entry:
    known = {"name", "architecture", "lambda", "quality", "source", "file", "aliases", "manifest", "url", "page", "archive", "member"}
    return Entry(
        name=item["name"],
        architecture=item["architecture"],
        lmbda=item.get("lambda"),
        quality=item.get("quality", item["name"]),
        source=item.get("source", ""),
        file=item.get("file", f"{item['name']}.pth.tar"),
        aliases=tuple(item.get("aliases", ())),
        manifest=item.get("manifest", item["architecture"]),
        url=item.get("url"),
        page=item.get("page"),
        archive=item.get("archive"),
        member=item.get("member"),
        extra={k: v for k, v in item.items() if k not in known},
    )


def entries(names: Iterable[str] | None = None, data: dict[str, Any] | None = None) -> list[Entry]:
    """The catalogue's entries named by ``names``: entry names (``"cnn_0018"``), architectures
    (``"gabic"``, ``"wacnn"``, ``"stf"``: all of theirs) or ``"all"``; None: all. In catalogue order,
    each once.

    Raises:
        GabicError: a name that is none of these, listing what there is.
    """
    data = data or catalogue()
    every = [_entry(item) for item in data["checkpoints"]]
    if names is None:
        return every
    chosen: list[Entry] = []
    for name in names:
        hits = every if name == "all" else [e for e in every if name in (e.name, e.architecture)]
        if not hits:
            known = ", ".join(sorted({e.architecture for e in every})) + "; " + ", ".join(e.name for e in every)
            raise GabicError(f"no released checkpoint {name!r}: give all, an architecture or a name ({known})")
        chosen += [e for e in hits if e not in chosen]
    return [e for e in every if e in chosen]


def missing(data: dict[str, Any] | None = None) -> list[str]:
    """What the authors did not release, as the catalogue records it (one sentence each)."""
    return list((data or catalogue()).get("missing", []))


def _manifests() -> dict[str, Any]:
    return json.loads((resources.files("gabic") / "catalogue" / "manifests.json").read_text())["families"]


# ---------------------------------------------------------------------------------------- checks
def _normal(key: str) -> str:
    key = key.removeprefix("module.")
    return current_key(key)


def manifest_problems(state_dict: dict[str, Any], family: str, data: dict[str, Any] | None = None) -> list[str]:
    """How a state_dict differs from the manifest of ``family``: keys missing, keys unexpected,
    shapes that differ (``module.`` prefixes and the legacy entropy-bottleneck names are
    normalised on both sides; the shapes of the entropy-coder tables, :data:`UPDATE_BUFFERS`, are
    not compared). An empty list: it matches.

    The manifests are those shipped with gabic (``gabic/catalogue/manifests.json``: the released
    models' keys and shapes), or a catalogue's own ``"manifests"`` (``{family: {"keys": [[key,
    shape], ...]}}``) when ``data`` has them, as a mirror of other checkpoints would."""
    manifests = {**_manifests(), **((data or {}).get("manifests") or {})}
    if family not in manifests:
        raise GabicError(f"no manifest for {family!r}: the manifests are {', '.join(manifests)}")
    expected = {_normal(k): tuple(shape) for k, shape in manifests[family]["keys"]}
    given = {_normal(k): tuple(getattr(v, "shape", ())) for k, v in state_dict.items()}
    problems = []
    absent = [k for k in expected if k not in given]
    extra = [k for k in given if k not in expected]
    if absent:
        problems.append(f"{len(absent)} key(s) missing (first: {absent[0]})")
    if extra:
        problems.append(f"{len(extra)} unexpected key(s) (first: {extra[0]})")
    shapes = [
        f"{k} is {list(given[k])}, the manifest says {list(s)}"
        for k, s in expected.items()
        if k in given and given[k] != s and k.rsplit(".", 1)[-1] not in UPDATE_BUFFERS
    ]
    if shapes:
        problems.append(f"{len(shapes)} shape(s) differ (first: {shapes[0]})")
    return problems


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(entry: Entry, path: Path, shown: str, data: dict[str, Any] | None = None) -> None:
    """The file loads as data and matches its manifest; CheckpointError naming ``shown`` otherwise."""
    try:
        ckpt = read_checkpoint(path, mmap=True)  # never trusted: a downloaded file runs no code
    except CheckpointError as err:
        raise CheckpointError(f"{entry.name}: {str(err).replace(str(path), shown)}") from None
    problems = manifest_problems(ckpt["state_dict"], entry.manifest, data)
    if problems:
        raise CheckpointError(f"{entry.name} ({shown}): not the released {entry.architecture} checkpoint: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------- lock
def _read_lock(dest: Path) -> dict[str, Any]:
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


def _write_lock(dest: Path, lock: dict[str, Any]) -> None:
    write_atomic(dest / LOCK_NAME, (json.dumps(lock, indent=1, sort_keys=True) + "\n").encode())


def _changed(entry: Entry, lock_path: Path, locked: dict[str, Any], now: str, what: str) -> str:
    return (
        f"{entry.name}: {what} differs from the one recorded in {lock_path} on {locked.get('recorded', '?')} "
        f"(SHA-256 {locked['sha256'][:16]}... then, {now[:16]}... now)"
    )


# ---------------------------------------------------------------------------------------- status
def local_status(dest: str | os.PathLike = DEFAULT_DEST, data: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per catalogue entry: ``name, architecture, lambda, quality, source, file`` (the
    local file or None) and ``lock`` (``"locked"``: recorded in the lock, size as recorded;
    ``"size differs"``; ``"not locked"``: present but never downloaded by gabic; None: absent).
    Sizes only: the SHA-256 is compared when a file is used or downloaded again."""
    dest = Path(dest)
    lock = _read_lock(dest)["files"] if (dest / LOCK_NAME).exists() else {}
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


# ---------------------------------------------------------------------------------------- download
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
    lock = _read_lock(dest)
    lock_path = dest / LOCK_NAME
    archives: dict[str, Path] = {}
    written: list[Path] = []
    try:
        for entry in chosen:
            existing = entry.path(dest)
            locked = lock["files"].get(entry.name)
            if existing is not None and locked is not None:
                digest = _sha256(existing)
                if digest == locked["sha256"]:
                    log.info("%s: %s is there and unchanged", entry.name, existing)
                    written.append(existing)
                    if on_file:
                        on_file(entry, existing, "verified")
                    continue
                raise CheckpointError(
                    _changed(entry, lock_path, locked, digest, f"{existing}") + "; it changed on disk: delete it to download it again"
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
                _verify(entry, candidate, f"the file downloaded from {entry.page or entry.url or entry.archive}", data)
            except CheckpointError:
                candidate.unlink(missing_ok=True)  # not kept: a bad file is never put in place
                raise
            digest = _sha256(candidate)
            if locked is not None and digest != locked["sha256"] and not accept_changed:
                candidate.unlink(missing_ok=True)
                raise CheckpointError(
                    _changed(entry, lock_path, locked, digest, "the file downloaded now")
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
            _write_lock(dest, lock)
            written.append(final)
            if on_file:
                on_file(entry, final, "downloaded")
    finally:  # a fetched archive is not kept: a later call fetches it again (its partial download, if any, stays)
        for archive in archives.values():
            archive.unlink(missing_ok=True)
    return written


# ---------------------------------------------------------------------------------------- use
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
    lock = _read_lock(dest)
    changed = False
    for entry, path in present:
        digest = _sha256(path)
        locked = lock["files"].get(entry.name)
        if locked is None:
            _verify(entry, path, str(path), data)
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
                _changed(entry, dest / LOCK_NAME, locked, digest, str(path))
                + "; download it again (delete the file first) or restore it"
            )
    if changed:
        _write_lock(dest, lock)
    return present


def evaluate_released(
    names: Sequence[str] | str,
    dataset: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    dest: str | os.PathLike = DEFAULT_DEST,
    device: str = "auto",
    progress: bool = True,
    data: dict[str, Any] | None = None,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """RD curves of the released checkpoints of ``names`` (e.g. ``"gabic"``) found in ``dest``,
    through :func:`gabic.evaluate.evaluate_checkpoints` (real coding over ``dataset``), each point
    labelled with its catalogue entry (``meta["release"]``) and the lambda its source states
    (``meta["lambda"]``, where the file itself says none); the curve is named "<architecture>
    (released)".

    Raises:
        GabicError: none of them is in ``dest`` (saying how to download them).
        CheckpointError: as :func:`released_checkpoints`.
    """
    names = [names] if isinstance(names, str) else list(names)
    data = data or catalogue()
    present = released_checkpoints(names, dest, data)
    for name in names:
        if present and not any(name in ("all", e.name, e.architecture) for e, _ in present):
            log.warning("%s: not in %s (gabic checkpoints download %s); evaluating the others", name, dest, name)
    if not present:
        raise GabicError(
            f"no released checkpoint of {', '.join(names)} in {dest}: "
            f"download them first (gabic checkpoints download {' '.join(names)})"
        )
    curves = evaluate_checkpoints([p for _, p in present], dataset, device=device, progress=progress, **overrides)
    return _label(curves, present, data)


def label_released(
    curves: list[dict[str, Any]], dest: str | os.PathLike = DEFAULT_DEST, data: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Label the points of ``curves`` (from :func:`gabic.evaluate.evaluate_checkpoints`) that were
    measured on released checkpoints in ``dest``: ``meta["release"]`` (the entry's name, None for
    other points), ``meta["quality_label"]``, and the lambda the source states where the file says
    none; a curve of released checkpoints only is named "<architecture> (released)". The files
    are checked against the lock first (:func:`released_checkpoints`). Returns ``curves``, changed
    in place."""
    data = data or catalogue()
    return _label(curves, released_checkpoints(None, dest, data), data)


def _label(curves: list[dict[str, Any]], present: list[tuple[Entry, Path]], data: dict[str, Any]) -> list[dict[str, Any]]:
    by_path = {Path(p).resolve(): e for e, p in present}
    for curve in curves:
        meta = curve["meta"]
        found = [by_path.get(Path(c).resolve()) for c in meta["checkpoint"]]
        if not any(found):
            continue
        meta["release"] = [e.name if e else None for e in found]
        meta["quality_label"] = [e.quality if e else None for e in found]
        meta["lambda"] = [given if given is not None or e is None else e.lmbda for given, e in zip(meta["lambda"], found, strict=True)]
        if all(found):
            meta["source"] = "released checkpoints: " + ", ".join(sorted({catalogue_source(e, data) for e in found}))
            curve["name"] = f"{display_name(meta.get('model', found[0].architecture))} (released)"
    return curves


def catalogue_source(entry: Entry, data: dict[str, Any] | None = None) -> str:
    """The repository an entry's source is (``https://github.com/Googolxx/STF``)."""
    return (data or catalogue()).get("sources", {}).get(entry.source, {}).get("repository", entry.source)
