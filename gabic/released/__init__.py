"""The released checkpoints of GABIC, WACNN and STF, and the CompressAI zoo's mbt2018-mean and
cheng2020-anchor: a catalogue, a verified download, a lock file.

The catalogue (``gabic/catalogue/checkpoints.json``, package data) lists every checkpoint the
authors released, where it is published (a Google Drive file, a member of one archive, or a
CompressAI zoo address), the lambda its source states (None where it states none), its authors'
quality label, and the state-dict manifest it must match (``gabic/catalogue/manifests.json``);
it also says what was never released (:func:`missing`). :func:`download` fetches entries with
gdown (which handles Google Drive's confirmation page) or, for the zoo, a plain HTTP(S) GET
(urllib), both with a progress bar and resuming an interrupted download, unpacks archives, and
verifies each file before it is put in place: a zoo file's SHA-256 starts with the hex digits
its name carries (torch.hub's convention), it loads as data (no code runs,
:func:`gabic.checkpoints.read_checkpoint`), its keys and shapes are the manifest's, and its
SHA-256 is recorded in ``<dest>/checkpoints.lock`` on the first download and compared on every
later download and use (:func:`released_checkpoints`), so a file that changed upstream or on
disk is reported, never used silently. :func:`evaluate_released` measures every entry of a family
found locally through :func:`gabic.evaluate.evaluate_checkpoints`, one curve per architecture.

``GABIC_CATALOGUE`` (a path to a catalogue JSON) replaces the shipped catalogue, for a mirror.

- :mod:`gabic.released.catalogue`: :func:`catalogue`, :func:`entries`, :func:`missing`,
  :func:`manifest_problems`;
- :mod:`gabic.released.lock`: the lock file, :func:`local_status`, :func:`released_checkpoints`;
- :mod:`gabic.released.download`: :func:`download`;
- :mod:`gabic.released.evaluate`: :func:`evaluate_released`, :func:`label_released`.
"""

from __future__ import annotations

from gabic.released.catalogue import (
    CATALOGUE_ENV,
    DEFAULT_DEST,
    DOWNLOADS,
    UPDATE_BUFFERS,
    Entry,
    catalogue,
    catalogue_source,
    entries,
    manifest_problems,
    missing,
)
from gabic.released.download import STAGING, download
from gabic.released.evaluate import evaluate_released, label_released
from gabic.released.lock import LOCK_NAME, local_status, released_checkpoints

__all__ = [
    "CATALOGUE_ENV",
    "DEFAULT_DEST",
    "DOWNLOADS",
    "LOCK_NAME",
    "STAGING",
    "UPDATE_BUFFERS",
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
