"""Image data: folders of images as datasets, the Kodak test set (download + verify), the embedded
sample photographs.

- :class:`ImageFolder`: random training patches or whole test images from a folder of images.
- :func:`download_kodak`, :func:`verify_kodak`, :func:`kodak_hashes`: the 24 Kodak images, checked
  by the SHA-256 of their decoded pixels (shipped in ``gabic/kodak_pixels.sha256``), so a file
  re-encoded by a mirror still verifies and a changed pixel never does.
- :func:`samples`: four real photographs shipped with the package, for tests and demos.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import logging
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Literal
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin
from urllib.request import Request, urlopen

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from gabic._version import __version__
from gabic.checks import check_choice, check_int, is_int
from gabic.errors import DataError
from gabic.files import write_atomic
from gabic.images import image_to_tensor, load_image, to_rgb

__all__ = [
    "IMAGE_EXTENSIONS",
    "KODAK_NAMES",
    "KODAK_URL",
    "SAMPLE_NAMES",
    "ImageFolder",
    "download_kodak",
    "kodak_hashes",
    "list_images",
    "pixel_sha256",
    "sample_split",
    "samples",
    "verify_kodak",
]

log = logging.getLogger(__name__)

#: File extensions read as images in a dataset folder.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff", ".webp")

#: The embedded photographs (public domain or CC0; see gabic/sample_images/README.md).
SAMPLE_NAMES = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")

#: Where the Kodak images are downloaded from (Rich Franzen's copy of the Kodak PhotoCD set).
KODAK_URL = "https://r0k.us/graphics/kodak/kodak/"
#: The 24 Kodak images (768x512, six of them 512x768), the usual test set of learned image compression.
KODAK_NAMES = tuple(f"kodim{i:02d}.png" for i in range(1, 25))
#: Default destination of :func:`download_kodak` (``data/`` is ignored by git).
KODAK_DEST = Path("data/kodak")

#: The shipped table of decoded-pixel hashes of the Kodak images (a package resource).
_KODAK_HASH_FILE = "kodak_pixels.sha256"
#: A Kodak PNG is about 0.5-0.7 MB; a response larger than this is not one.
_MAX_DOWNLOAD_BYTES = 16 * 2**20

#: An expected image: sha256 of its decoded pixels and its size (width, height), or None to skip the size check.
Expected = tuple[str, tuple[int, int] | None]


def samples() -> list[Path]:
    """Paths of the embedded real colour photographs, which need no network.

    astronaut (512x512), chelsea (451x300), coffee (600x400), rocket (640x427), from
    scikit-image's public-domain and CC0 data.
    """
    root = resources.files("gabic") / "sample_images"
    return [Path(str(root / name)) for name in SAMPLE_NAMES]


def sample_split() -> dict[str, list[Path]]:
    """The roles of the sample photos when a run trains on them (:func:`gabic.train.fit`'s default data).

    ``{"train": [astronaut, chelsea, coffee], "test": [rocket]}``: a run trains on the first three and
    validates on crops of them (:data:`gabic.train.loop.VALIDATION_CROP`); the test photo plays no part
    in training or in choosing a checkpoint, so the notebooks and the demo measure the run on it.
    """
    photos = samples()
    return {"train": photos[:-1], "test": photos[-1:]}


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files of a folder (not recursive), sorted by name.

    Raises :class:`~gabic.errors.DataError` naming the folder when it does not exist, is
    not a folder, or holds no file with an extension of ``IMAGE_EXTENSIONS``.
    """
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise DataError(f"{folder}: no images (looked for {', '.join(IMAGE_EXTENSIONS)})")
    return images


# --------------------------------------------------------------------------------------------
# ImageFolder
# --------------------------------------------------------------------------------------------


def _patch_hw(patch_size: int | tuple[int, int]) -> tuple[int, int]:
    """``patch_size`` as ``(height, width)``; ValueError unless positive integers."""
    if is_int(patch_size):
        hw = (patch_size, patch_size)
    elif isinstance(patch_size, (tuple, list)) and len(patch_size) == 2:
        hw = tuple(patch_size)
    else:
        raise ValueError(f"patch_size must be an int or a (height, width) pair, got {patch_size!r}")
    if not all(is_int(v) and v > 0 for v in hw):
        raise ValueError(f"patch_size must be positive integers, got {patch_size!r}")
    return int(hw[0]), int(hw[1])


def _padding(width: int, height: int, patch: tuple[int, int], mode: str) -> tuple[int, int, int, int]:
    """Zeros to add around a ``width`` x ``height`` image before cropping ``patch = (h, w)``:
    ``(left, top, right, bottom)``.

    ``"patch"``: only images smaller than the patch are padded, just enough to hold it, with
    the image centred (the odd pixel goes right/bottom). ``"square"``: the original GABIC
    training's ``SquarePad``: every image is padded to a square of side
    ``max(width, height, max(patch))`` plus one pixel more on each side (so its crops can hold
    zero bands even when the image is larger than the patch).
    """
    ph, pw = patch
    if mode == "square":
        side = max(width, height, ph, pw)
        h_pad = (side - width) // 2 + 1
        v_pad = (side - height) // 2 + 1
        return h_pad, v_pad, h_pad, v_pad
    extra_w, extra_h = max(pw - width, 0), max(ph - height, 0)
    return extra_w // 2, extra_h // 2, extra_w - extra_w // 2, extra_h - extra_h // 2


class ImageFolder(Dataset):
    """The images of a folder (see :func:`list_images`), as training patches or whole test images.

    Args:
        folder: a folder of images (not recursive); default (None): the embedded sample photos
            (:func:`samples`).
        split: ``"train"``: item ``i`` is a random ``patch_size`` crop of image ``i``, a float
            tensor ``(3, h, w)`` in [0, 1] (batches stack to ``(B, 3, h, w)``). ``"test"``: item
            ``i`` is the whole image, ``(3, H, W)`` in [0, 1] (sizes differ: use ``batch_size=1``),
            or its central ``centre_crop`` square when that is given and the image is larger.
        patch_size: crop size for ``"train"``, an int or ``(h, w)``; default 256 (the paper's).
            Ignored for ``"test"``.
        seed: None (default): crops are drawn from torch's global random generator (DataLoader
            workers each get their own seed). An int >= 0: the crop of item ``i`` is a fixed
            function of ``(seed, epoch, i)`` (through :class:`numpy.random.SeedSequence`), the
            same in any process, worker count or batch order, so training can be resumed exactly;
            call :meth:`set_epoch` at the start of each epoch to get new crops.
        pad: how images smaller than the patch are zero-padded before cropping. ``"patch"``
            (default): only images smaller than the patch, just enough, image centred.
            ``"square"``: as the published GABIC training (its ``SquarePad``): every image padded
            to a square of side ``max(W, H, max(patch))`` plus one pixel more on each side.
            Either way, one log message (INFO, once per process) per image smaller than the patch.

    Raises :class:`~gabic.errors.DataError` when the folder is missing or holds no image;
    reading an item raises :class:`~gabic.errors.ImageError` naming a file that is not a
    readable image (or is under 16 pixels on a side).

    Note:
        DataLoader workers hold a copy of the dataset made when they start: with
        ``persistent_workers=True`` a later :meth:`set_epoch` does not reach them.
    """

    def __init__(
        self,
        folder: str | os.PathLike | None = None,
        split: Literal["train", "test"] = "train",
        patch_size: int | tuple[int, int] = 256,
        seed: int | None = None,
        pad: Literal["patch", "square"] = "patch",
        centre_crop: int | None = None,
    ) -> None:
        check_choice(split, ("train", "test"), "split")
        check_choice(pad, ("patch", "square"), "pad")
        seed = check_int(seed, "seed", 0, also=(None,))
        self.folder = Path(folder) if folder is not None else None
        self.paths: list[Path] = list_images(folder) if folder is not None else samples()
        self.split = split
        self.patch_size = _patch_hw(patch_size)
        self.seed = seed
        self.pad = pad
        self.centre_crop = check_int(centre_crop, "centre_crop", 16, also=(None,))
        self.epoch = 0
        self._noted: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        """Use the crops of ``epoch`` (only matters with a ``seed``)."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = epoch

    def __getitem__(self, index: int) -> Tensor:
        """Item ``index``: ``(3, h, w)`` patch (train) or ``(3, H, W)`` image (test), float in [0, 1]."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index = index % len(self)
        path = self.paths[index]
        img, notes = load_image(path)
        first = index not in self._noted
        self._noted.add(index)
        if first and notes:
            log.debug("%s: %s", path, "; ".join(notes))
        if self.split == "test":
            if self.centre_crop is not None:
                w, h = img.size
                cw, ch = min(w, self.centre_crop), min(h, self.centre_crop)
                left, top = (w - cw) // 2, (h - ch) // 2
                img = img.crop((left, top, left + cw, top + ch))
            return image_to_tensor(img)[0]
        return self._crop(img, index, path, first)

    def _crop(self, img: Image.Image, index: int, path: Path, first: bool) -> Tensor:
        ph, pw = self.patch_size
        w, h = img.size
        left, top, right, bottom = _padding(w, h, self.patch_size, self.pad)
        if first and (w < pw or h < ph):
            padded = (w + left + right, h + top + bottom)
            log.info("%s: %dx%d is smaller than the %dx%d patch; zero-padded to %dx%d", path, w, h, pw, ph, *padded)
        span_y = h + top + bottom - ph + 1
        span_x = w + left + right - pw + 1
        if self.seed is None:
            y = int(torch.randint(span_y, ()).item())
            x = int(torch.randint(span_x, ()).item())
        else:
            state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(2, dtype=np.uint64)
            y, x = int(state[0]) % span_y, int(state[1]) % span_x
        # Box in image coordinates; PIL fills what lies outside the image with zeros.
        x0, y0 = x - left, y - top
        return image_to_tensor(img.crop((x0, y0, x0 + pw, y0 + ph)))[0]

    def __repr__(self) -> str:
        where = str(self.folder) if self.folder is not None else "samples"
        size = f", centre_crop={self.centre_crop}" if self.centre_crop else ""
        size = size if self.split == "test" else f", patch_size={self.patch_size}, pad={self.pad!r}"
        return f"ImageFolder({where!r}, split={self.split!r}{size}, seed={self.seed}, {len(self)} images)"


# --------------------------------------------------------------------------------------------
# Kodak
# --------------------------------------------------------------------------------------------


def pixel_sha256(img: Image.Image) -> str:
    """SHA-256 (hex) of an image's decoded pixels: 8-bit RGB, row-major ``H x W x 3`` bytes.

    Independent of how the file was encoded (PNG compression level, chunks, metadata); any PIL
    mode is converted to RGB first (see :func:`gabic.images.to_rgb`).
    """
    rgb, _ = to_rgb(img)
    return hashlib.sha256(np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)).tobytes()).hexdigest()


def _parse_hashes(text: str, source: str) -> dict[str, tuple[str, tuple[int, int]]]:
    """Parse ``sha256  name  WIDTHxHEIGHT`` lines ('#' comments and blank lines skipped)."""
    table: dict[str, tuple[str, tuple[int, int]]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            digest, name, size = parts
            w, h = (int(v) for v in size.lower().split("x"))
            if len(digest) != 64:
                raise ValueError
            int(digest, 16)
        except ValueError:
            raise DataError(f"{source}:{lineno}: expected 'sha256  name  WIDTHxHEIGHT', got {line!r}") from None
        table[name] = (digest.lower(), (w, h))
    return table


def kodak_hashes() -> dict[str, tuple[str, tuple[int, int]]]:
    """The shipped table ``{name: (sha256 of the decoded pixels, (width, height))}`` of the 24 Kodak images.

    Read from the package resource ``gabic/kodak_pixels.sha256`` (works from an installed wheel).
    """
    res = resources.files("gabic") / _KODAK_HASH_FILE
    try:
        text = res.read_text(encoding="utf-8")
    except OSError as err:
        raise DataError(f"{_KODAK_HASH_FILE}: cannot read the shipped Kodak hash table ({err}); is gabic installed fully?") from None
    return _parse_hashes(text, _KODAK_HASH_FILE)


def _expected(hashes: Mapping[str, str | Expected] | None) -> dict[str, Expected]:
    """Normalise a hash table: values may be a bare sha256 or ``(sha256, (w, h) | None)``."""
    table = kodak_hashes() if hashes is None else hashes
    out: dict[str, Expected] = {}
    for name, value in table.items():
        digest, size = (value, None) if isinstance(value, str) else value
        out[name] = (digest.lower(), tuple(size) if size is not None else None)
    if not out:
        raise ValueError("hashes is empty: nothing to download or verify")
    return out


def _check_bytes(data: bytes, expected: Expected) -> str | None:
    """What is wrong with an encoded image against ``expected``, or None when its pixels match."""
    digest, size = expected
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            got_size = im.size
            got = pixel_sha256(im)
    except UnidentifiedImageError:
        return "not an image"
    except Image.DecompressionBombError as err:
        return str(err)
    except (OSError, SyntaxError, ValueError) as err:
        return f"cannot decode the image ({err}); truncated or corrupted"
    if size is not None and got_size != size:
        return f"image is {got_size[0]}x{got_size[1]}, expected {size[0]}x{size[1]}"
    if got != digest:
        return f"pixels do not match (sha256 {got[:12]}..., expected {digest[:12]}...)"
    return None


def _check_file(path: Path, expected: Expected) -> str | None:
    try:
        data = path.read_bytes()
    except OSError as err:
        return f"cannot read ({err.strerror or err})"
    return _check_bytes(data, expected)


def verify_kodak(folder: str | os.PathLike = KODAK_DEST, hashes: Mapping[str, str | Expected] | None = None) -> list[str]:
    """Check a folder of Kodak images against their decoded-pixel hashes; needs no network.

    Args:
        folder: the folder (default ``data/kodak``).
        hashes: ``{name: sha256}`` or ``{name: (sha256, (width, height))}``; default:
            :func:`kodak_hashes` (the 24 Kodak images).

    Returns:
        One line per problem, each naming the file: missing, unreadable, wrong size, pixels that
        differ, or an extra image file (which would silently join an evaluation over the folder).
        Empty when the folder holds exactly the expected images, all verified.
    """
    folder = Path(folder)
    expected = _expected(hashes)
    if not folder.is_dir():
        return [f"{folder}: no such folder"]
    problems = []
    for name, exp in expected.items():
        path = folder / name
        problem = "missing" if not path.is_file() else _check_file(path, exp)
        if problem:
            problems.append(f"{path}: {problem}")
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and path.name not in expected:
            problems.append(f"{path}: unexpected image (not one of the {len(expected)} expected)")
    return problems


class _TooLarge(Exception):
    pass


#: Kinds of a failed image in :func:`download_kodak`'s summary: pixels that do not verify, a file
#: that is no readable image; other kinds are written as they are after the names (": HTTP 404 Not Found").
_MISMATCH, _UNREADABLE = "mismatch", "unreadable"
#: Failures that another try may not meet: a dropped connection, a busy or failing server.
_INTERRUPTED, _TRANSIENT_HTTP = ": download interrupted", (": HTTP 5", ": HTTP 429 ", ": HTTP 408 ")
#: The problems of :func:`_check_bytes` that mean "another image", not "no image".
_MISMATCH_PROBLEMS = ("pixels do not match", "image is ")


def _check_dest(dest: Path) -> None:
    """Refuse a destination that can be no folder (it, or a folder above it, is a file), before any download."""
    if dest.exists() and not dest.is_dir():
        raise DataError(f"{dest}: exists and is not a folder; give a folder for the images")
    for parent in dest.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DataError(f"{dest}: {parent} is a file, not a folder; give a folder for the images")
            return


def _some_names(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and 3 more``."""
    if len(names) <= 2:
        return " and ".join(names)
    return f"{names[0]}, {names[1]} and {len(names) - 2} more"


def _failure_summary(failures: list[tuple[str, str, str]], total: int, done: list[Path], dest: Path, which: str) -> str:
    """One short line on the images that failed: how many, a name or two per kind of failure, and
    where the verified ones are (only when some are, in ``dest``). Each file's details go to
    ``log.debug`` (``gabic -v``)."""
    groups: dict[str, list[str]] = {}
    for name, kind, detail in failures:
        log.debug("%s: %s", name, detail)
        groups.setdefault(kind, []).append(name)
    parts = []
    for kind, names in groups.items():
        one = len(names) == 1
        if kind == _MISMATCH:
            verb = "does not match" if one else "do not match"
            parts.append(f"{_some_names(names)} {verb} the {which} pixels (sha256 of the decoded pixels)")
        elif kind == _UNREADABLE:
            parts.append(f"{_some_names(names)} {'is not a readable image' if one else 'are not readable images'}")
        else:
            parts.append(f"{_some_names(names)}{kind}")
    if done and dest.is_dir():
        kept = f"the {len(done)} that verified {'is' if len(done) == 1 else 'are'} in {dest}"
    else:
        kept = "nothing was kept"
    retry = "; run again to retry" if any(kind == _INTERRUPTED or kind.startswith(_TRANSIENT_HTTP) for kind in groups) else ""
    return f"{len(failures)} of {total} images failed: {'; '.join(parts)}; {kept}{retry}"


def _fetch(url: str, timeout: float) -> bytes:
    """GET ``url`` (at most ``_MAX_DOWNLOAD_BYTES``)."""
    request = Request(url, headers={"User-Agent": f"gabic/{__version__} (python urllib)"})
    with urlopen(request, timeout=timeout) as response:
        data = response.read(_MAX_DOWNLOAD_BYTES + 1)
    if len(data) > _MAX_DOWNLOAD_BYTES:
        raise _TooLarge
    return data


def download_kodak(
    dest: str | os.PathLike = KODAK_DEST,
    base_url: str = KODAK_URL,
    hashes: Mapping[str, str | Expected] | None = None,
    timeout: float = 30,
    progress: bool = True,
) -> list[Path]:
    """Download the 24 Kodak images into ``dest`` and verify each one's decoded pixels.

    Each file ``base_url + name`` is fetched with urllib, decoded and checked against the
    SHA-256 of its RGB pixels (and its size) from ``hashes``; only a file that verifies is
    written, atomically. Files already in ``dest`` that verify are not downloaded again (so with
    all 24 present this needs no network and only verifies); one that does not verify is
    downloaded again and replaced.

    Args:
        dest: destination folder, created if needed (default ``data/kodak``).
        base_url: where the files are (default :data:`KODAK_URL`).
        hashes: ``{name: sha256}`` or ``{name: (sha256, (width, height))}``: the files to get;
            default :func:`kodak_hashes` (kodim01.png .. kodim24.png).
        timeout: seconds to wait for the server on each connection and read (default 30).
        progress: show a tqdm progress bar (default True).

    Returns:
        The paths of all the verified images in ``dest``, sorted by name.

    Raises:
        DataError: before any download, when ``dest`` (or a folder above it) is a file; when the
            server cannot be reached (offline, DNS, refused, timed out): says so and where to put
            the files by hand; or, after trying every file, when some downloads failed or did not
            verify: one short line, how many and a name or two per kind of failure (none of them
            is left in ``dest``); each file's problem is logged at DEBUG (``gabic -v``).
    """
    dest = Path(dest)
    _check_dest(dest)
    expected = _expected(hashes)
    base = base_url if base_url.endswith("/") else base_url + "/"
    names = sorted(expected)
    done: list[Path] = []
    todo: list[str] = []
    for name in names:
        path = dest / name
        if path.exists():
            problem = _check_file(path, expected[name])
            if problem is None:
                done.append(path)
                continue
            log.warning("%s: %s; downloading it again", path, problem)
        todo.append(name)
    if not todo:
        log.info("%d images already in %s, all verified", len(done), dest)
        return done

    log.info("downloading %d images from %s into %s", len(todo), base, dest)
    failures: list[tuple[str, str, str]] = []  # (name, kind of failure for the summary, details for log.debug)
    for name in tqdm(todo, desc="Kodak", unit="image", disable=not progress):
        url = urljoin(base, name)
        try:
            data = _fetch(url, timeout)
        except HTTPError as err:
            failures.append((name, f": HTTP {err.code} {err.reason}", f"HTTP {err.code} {err.reason} from {url}"))
            continue
        except (URLError, TimeoutError) as err:  # connecting failed, or the server stopped answering
            reason = getattr(err, "reason", err)
            if isinstance(reason, TimeoutError) or isinstance(err, TimeoutError):
                reason = f"no answer in {timeout:g} s"
            have = f" ({len(done)} of {len(names)} already there and verified)" if done else ""
            raise DataError(
                f"could not reach the server for {url} ({reason}); are you offline? "
                f"Download {names[0]} .. {names[-1]} by hand (from {base} or another copy of the same images) "
                f"into {dest.resolve()}{have}, then run this again: files already there are verified, not downloaded"
            ) from None
        except (http.client.HTTPException, OSError) as err:  # connection dropped, incomplete read
            failures.append((name, _INTERRUPTED, f"download interrupted ({type(err).__name__}: {err})"))
            continue
        except _TooLarge:
            size = f"larger than {_MAX_DOWNLOAD_BYTES // 2**20} MiB"
            failures.append((name, f": response {size}", f"response {size} from {url}; not an image of this set"))
            continue
        problem = _check_bytes(data, expected[name])
        if problem is not None:
            failures.append((name, _MISMATCH if problem.startswith(_MISMATCH_PROBLEMS) else _UNREADABLE, problem))
            continue
        done.append(write_atomic(dest / name, data))

    if failures:
        raise DataError(_failure_summary(failures, len(names), done, dest, "published" if hashes is None else "expected"))
    log.info("%d images verified in %s", len(done), dest)
    extra = [p.name for p in dest.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and p.name not in expected]
    if extra:
        names_extra = ", ".join(sorted(extra))
        log.warning("%s also holds other images (%s): an evaluation over the folder would include them", dest, names_extra)
    return sorted(done)
