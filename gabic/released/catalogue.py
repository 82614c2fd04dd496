"""The catalogue of released checkpoints and the manifests their files must match (package data
in ``gabic/catalogue/``): entries by name or architecture, what was never released."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from compressai.zoo.pretrained import rename_key

from gabic.checkpoints import current_key
from gabic.errors import GabicError

__all__ = [
    "CATALOGUE_ENV",
    "DEFAULT_DEST",
    "DOWNLOADS",
    "UPDATE_BUFFERS",
    "Entry",
    "catalogue",
    "catalogue_source",
    "entries",
    "manifest_problems",
    "missing",
]

#: Where released checkpoints go (from the working folder; the repository's ``checkpoints/``).
DEFAULT_DEST = Path("checkpoints")
#: Entropy-coder tables whose shapes depend on whether ``update()`` ran before the file was saved
#: (a checkpoint saved during training has them empty): their keys are checked, not their shapes.
#: The CompressAI zoo's files hold every one of them (CompressAI's own loader,
#: ``compressai.zoo.image._load_model`` -> ``from_state_dict`` -> ``load_state_dict``, is strict
#: and resizes these buffers from the file's), so no key is optional for them either.
UPDATE_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length", "scale_table")
#: How an entry's ``url`` is fetched (its ``"download"``): ``"gdown"`` (the default: Google Drive
#: addresses, whose confirmation page gdown handles) or ``"http"`` (a plain HTTP(S) GET, as the
#: CompressAI zoo serves its files).
DOWNLOADS = ("gdown", "http")
#: torch.hub's convention for a file name that carries the first hex digits of its SHA-256
#: (``mbt2018-mean-3-723404a8.pth.tar``: ``723404a8``), ``torch.hub.HASH_REGEX``.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")
#: The environment variable naming another catalogue file (a mirror).
CATALOGUE_ENV = "GABIC_CATALOGUE"


@dataclass(frozen=True)
class Entry:
    """One released checkpoint of the catalogue.

    Attributes:
        name: the catalogue's name (``"gabic_q1"``, ``"cnn_0018"``, ``"stf_0483"``, ``"mbt2018-mean_q3"``).
        architecture: ``"gabic"``, ``"wacnn"``, ``"stf"``, ``"mbt2018-mean"`` or ``"cheng2020-anchor"``.
        lmbda: the rate-distortion lambda its source states, None where it states none.
        quality: the label its authors use (``"q1"``, ``"cnn_0018"``; ``"q3"`` for the zoo's quality 3).
        source: the key of the catalogue's ``sources`` (who published it, where it says so).
        file: its file name in the destination folder.
        aliases: other names the same file goes by (as the authors distribute it).
        manifest: the family of ``manifests.json`` it must match.
        url: where it is fetched (a Google Drive ``uc?id=`` address, a CompressAI zoo address), or
            None for an archive member.
        page: the page its source links to.
        archive: the catalogue's archive that holds it (None for a file of its own).
        member: its file name inside that archive.
        download: how ``url`` is fetched, one of :data:`DOWNLOADS` (default ``"gdown"``).
        sha256_in_name: the file name in ``url`` carries the first hex digits of the file's SHA-256
            (torch.hub's convention, as the CompressAI zoo names its files): a file whose SHA-256
            does not start with them is refused (:attr:`sha256_prefix`).
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
    download: str = "gdown"
    sha256_in_name: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def published_name(self) -> str | None:
        """The file name in its ``url`` (``mbt2018-mean-3-723404a8.pth.tar``), None without one."""
        return (Path(urlsplit(self.url).path).name or None) if self.url else None

    @property
    def sha256_prefix(self) -> str | None:
        """The first hex digits of the file's SHA-256 that its published name carries
        (``sha256_in_name``), None where the catalogue does not say it carries them."""
        if not self.sha256_in_name:
            return None
        m = _HASH_IN_NAME.search(self.published_name or "")
        if m is None:
            raise GabicError(
                f"{self.name}: the catalogue says its file name carries its SHA-256, but {self.url} ends in no '-<hex digits>.'"
            )
        return m.group(1)

    def path(self, dest: str | os.PathLike = DEFAULT_DEST) -> Path | None:
        """Its file in ``dest`` (under its own name or an alias), None when absent."""
        for name in (self.file, *self.aliases):
            if (Path(dest) / name).is_file():
                return Path(dest) / name
        return None


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
    known |= {"download", "sha256_in_name"}
    download = item.get("download", "gdown")
    if download not in DOWNLOADS:
        raise GabicError(f"{item['name']}: the catalogue's download {download!r} is none of {', '.join(DOWNLOADS)}")
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
        download=download,
        sha256_in_name=bool(item.get("sha256_in_name", False)),
        extra={k: v for k, v in item.items() if k not in known},
    )


def entries(names: Iterable[str] | None = None, data: dict[str, Any] | None = None) -> list[Entry]:
    """The catalogue's entries named by ``names``: entry names (``"cnn_0018"``), architectures
    (``"gabic"``, ``"mbt2018-mean"``: all of theirs) or ``"all"``; None: all. In catalogue order,
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


def _normal(key: str) -> str:
    """The name a key is compared under: the CompressAI zoo's renaming of its older names
    (``module.`` prefixes, ``.downsample.`` -> ``.skip.``, ``entropy_bottleneck._matrices.K`` ->
    ``_matrixK``; :func:`compressai.zoo.pretrained.rename_key`), then CompressAI's current names of
    the legacy entropy-bottleneck keys (``_matrixK`` -> ``matrices.K``)."""
    return current_key(rename_key(key))


def _shown(key: str) -> str:
    """The name a key is reported under: its own, less ``module.``, legacy entropy-bottleneck names current."""
    return current_key(key.removeprefix("module."))


def manifest_problems(state_dict: dict[str, Any], family: str, data: dict[str, Any] | None = None) -> list[str]:
    """How a state_dict differs from the manifest of ``family``: keys missing, keys unexpected,
    shapes that differ (``module.`` prefixes, the legacy entropy-bottleneck names and the CompressAI
    zoo's older names are normalised on both sides, see :func:`_normal`; the shapes of the
    entropy-coder tables, :data:`UPDATE_BUFFERS`, are not compared). An empty list: it matches.

    The manifests are those shipped with gabic (``gabic/catalogue/manifests.json``: the released
    models' keys and shapes), or a catalogue's own ``"manifests"`` (``{family: {"keys": [[key,
    shape], ...]}}``) when ``data`` has them, as a mirror of other checkpoints would."""
    manifests = {**_manifests(), **((data or {}).get("manifests") or {})}
    if family not in manifests:
        raise GabicError(f"no manifest for {family!r}: the manifests are {', '.join(manifests)}")
    expected = {_normal(k): (_shown(k), tuple(shape)) for k, shape in manifests[family]["keys"]}
    given = {_normal(k): (_shown(k), tuple(getattr(v, "shape", ()))) for k, v in state_dict.items()}
    problems = []
    absent = [shown for k, (shown, _) in expected.items() if k not in given]
    extra = [shown for k, (shown, _) in given.items() if k not in expected]
    if absent:
        problems.append(f"{len(absent)} key(s) missing (first: {absent[0]})")
    if extra:
        problems.append(f"{len(extra)} unexpected key(s) (first: {extra[0]})")
    shapes = [
        f"{given[k][0]} is {list(given[k][1])}, the manifest says {list(s)}"
        for k, (_, s) in expected.items()
        if k in given and given[k][1] != s and k.rsplit(".", 1)[-1] not in UPDATE_BUFFERS
    ]
    if shapes:
        problems.append(f"{len(shapes)} shape(s) differ (first: {shapes[0]})")
    return problems


def catalogue_source(entry: Entry, data: dict[str, Any] | None = None) -> str:
    """The repository an entry's source is (``https://github.com/Googolxx/STF``)."""
    return (data or catalogue()).get("sources", {}).get(entry.source, {}).get("repository", entry.source)
