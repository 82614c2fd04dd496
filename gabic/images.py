"""Reading images as 8-bit RGB, converting to tensors, padding for the codecs.

Any PIL mode is accepted and converted to RGB; what the conversion changes (an alpha
channel dropped, 16-bit samples reduced to 8 bits, grayscale replicated) is returned as
notes so the caller can say so, and so are a file's frames after the first (not read) and
an EXIF orientation (not applied: the pixels are coded as stored).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from compressai.ops import compute_padding
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from gabic.checks import is_int
from gabic.errors import ImageError

log = logging.getLogger(__name__)

__all__ = [
    "MIN_IMAGE_SIDE",
    "PAD_MULTIPLE",
    "ImageLike",
    "as_image_tensor",
    "as_rgb",
    "center_crop",
    "crop",
    "image_to_tensor",
    "load_image",
    "pad",
    "pad_offset",
    "pixels_only",
    "tensor_to_image",
    "to_rgb",
]

#: The codecs downsample by 64 (y at 1/16, z at 1/64); images are padded to a multiple of it.
PAD_MULTIPLE = 64
#: Smallest side accepted: below one latent position (16 px) the codec would code padding only.
MIN_IMAGE_SIDE = 16

_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}

#: One image, as the functions that code, measure or capture an image take it: a path to an image
#: file, a PIL image in any mode, or a float tensor ``(3, H, W)`` or ``(1, 3, H, W)`` with values
#: in [0, 1]. :func:`as_rgb` and :func:`as_image_tensor` convert any of them.
ImageLike = str | os.PathLike | Image.Image | Tensor

_IMAGE_LIKE = "a path or a PIL image, or a float tensor (3, H, W) or (1, 3, H, W) with values in [0, 1]"


def to_rgb(img: Image.Image) -> tuple[Image.Image, list[str]]:
    """Convert any PIL image to 8-bit RGB; return it and notes on what was changed or dropped."""
    mode = img.mode
    notes: list[str] = []
    if mode == "RGB":
        return img, notes
    if mode == "P":
        has_alpha = "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
        notes.append("palette expanded to RGB")
        mode = img.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if mode == "F":
            scale = 255.0 if arr.size and np.nanmax(arr) <= 1.0 else 1.0
            notes.append("32-bit float samples converted to 8 bits")
        else:
            peak = float(arr.max()) if arr.size else 0.0
            scale = 255.0 / 65535.0 if peak > 255 or mode.startswith("I;16") else 1.0
            notes.append("16-bit samples reduced to 8 bits" if scale != 1.0 else "32-bit integer samples read as 8-bit")
        arr = np.clip(np.rint(np.nan_to_num(arr) * scale), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, mode="L")
        mode = "L"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        notes.append("alpha channel dropped")
    if mode in ("L", "LA", "1", "La"):
        notes.append("grayscale replicated to RGB")
    elif mode not in ("RGB", "RGBA", "RGBa", "P"):
        notes.append(f"converted from {mode} to RGB")
    return img.convert("RGB"), notes


#: EXIF orientation -> (how viewers show the stored pixels, what gabic does not do to them).
_EXIF_ORIENTATIONS = {
    2: ("mirrored left to right", "mirrored"),
    3: ("rotated 180 degrees", "rotated"),
    4: ("mirrored top to bottom", "mirrored"),
    5: ("transposed (mirrored across the top-left to bottom-right diagonal)", "transposed"),
    6: ("rotated 90 degrees clockwise", "rotated"),
    7: ("transversed (mirrored across the top-right to bottom-left diagonal)", "transversed"),
    8: ("rotated 90 degrees counter-clockwise", "rotated"),
}
_EXIF_ORIENTATION_TAG = 0x0112


def _frames_note(im: Image.Image) -> str | None:
    """A note when a just-opened file holds more than one frame (only the first is coded), else None.

    Leaves ``im`` on its first frame.
    """
    kind = "animated" if im.format in ("GIF", "PNG", "WEBP") else "multi-frame"
    try:
        frames = int(getattr(im, "n_frames", 1))
    except (OSError, EOFError, SyntaxError, ValueError) as err:  # a damaged frame after the first
        log.debug("%s: cannot count the frames: %s", getattr(im, "filename", "image"), err)
        im.seek(0)
        return f"{kind} {im.format}: its frames cannot be counted (one after the first is damaged?), the first is coded"
    if frames > 1:
        im.seek(0)
        return f"{kind} {im.format}: {frames} frames, the first is coded"
    return None


def _orientation_note(im: Image.Image) -> str | None:
    """A note when the file's EXIF orientation asks viewers to turn or mirror it (gabic codes the stored pixels), else None."""
    try:
        value = im.getexif().get(_EXIF_ORIENTATION_TAG)
    except Exception as err:  # noqa: BLE001 - damaged EXIF: the pixels are still read; only the note is lost
        log.debug("%s: cannot read the EXIF data: %s", getattr(im, "filename", "image"), err)
        return None
    if value is None or value == 1:
        return None
    if value not in _EXIF_ORIENTATIONS:
        return f"EXIF orientation {value} (not a valid value; viewers may turn it): coded as stored"
    shown, undone = _EXIF_ORIENTATIONS[value]
    return f"EXIF orientation {value} (viewers show it {shown}): coded as stored, not {undone}"


def load_image(path: str | os.PathLike) -> tuple[Image.Image, list[str]]:
    """Read an image file as 8-bit RGB: the pixels as stored, of the first frame.

    Returns the image and notes on what differs from the file as a viewer shows it: the
    conversion (see :func:`to_rgb`), a file of several frames (an animated GIF: only the first
    is read) and an EXIF orientation other than 1 (the pixels are not turned, so that they are
    those other tools read). Raises :class:`~gabic.errors.ImageError` naming the file when it is
    missing, not an image, truncated, or smaller than ``MIN_IMAGE_SIDE`` pixels on a side.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    try:
        with Image.open(path) as im:
            file_notes = [note for note in (_frames_note(im), _orientation_note(im)) if note]
            im.load()
            img, notes = to_rgb(im)
            notes = file_notes + notes
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image (PIL cannot identify its format)") from None
    except Image.DecompressionBombError as err:
        raise ImageError(f"{path}: {err}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: cannot decode the image ({err}); is it truncated or corrupted?") from None
    w, h = img.size
    if min(w, h) < MIN_IMAGE_SIDE:
        raise ImageError(f"{path}: image is {w}x{h}; the codecs need at least {MIN_IMAGE_SIDE} pixels on each side")
    return img, notes


def pixels_only(image: Image.Image) -> Image.Image:
    """The image's 8-bit RGB pixels in a fresh PIL image: no metadata, no file name or format.

    Returns ``image`` itself when it already is such an image.
    """
    if type(image) is Image.Image and image.mode == "RGB" and not image.info:
        return image
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return Image.frombytes("RGB", rgb.size, rgb.tobytes())


def _image_tensor(x: Tensor) -> Tensor:
    """An image tensor ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1] as ``(1, 3, H, W)`` float32 on the
    CPU, detached (not copied when it already is one); ValueError naming the shape, dtype or range
    that is not an image's."""
    given = tuple(x.shape)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"image must be a (3, H, W) or (1, 3, H, W) tensor, got shape {given}")
    if x.shape[0] != 1:
        raise ValueError(f"image must be one image (batch of 1), got a batch of {x.shape[0]}")
    if not x.is_floating_point():
        raise ValueError(f"image must be a float tensor with values in [0, 1], got dtype {x.dtype}")
    x = x.detach().float().cpu()
    if x.numel():
        lo, hi = x.min().item(), x.max().item()
        if not (lo >= 0.0 and hi <= 1.0):  # NaN fails too
            raise ValueError(f"image must have values in [0, 1], got values in {lo:.4g}..{hi:.4g}")
    return x


def _what(image: object) -> str:
    """What was given, for an error: the type's name and, for an array, its shape."""
    shape = getattr(image, "shape", None)
    return f"{type(image).__name__} of shape {tuple(shape)}" if isinstance(shape, tuple) else type(image).__name__


def as_rgb(image: ImageLike) -> Image.Image:
    """The 8-bit RGB pixels (:func:`pixels_only`) of any :data:`ImageLike`.

    An image file is read with :func:`load_image`, a PIL image in any mode converted with
    :func:`to_rgb` (what either changed is logged), a tensor ``(3, H, W)`` or ``(1, 3, H, W)`` in
    [0, 1] rounded to 8 bits (:func:`tensor_to_image`).

    Raises:
        ImageError: a path that is not a readable image of at least ``MIN_IMAGE_SIDE`` pixels a side.
        ValueError: a tensor of another shape, an integer dtype or values outside [0, 1].
        TypeError: anything else, naming what was given and what is expected.
    """
    if isinstance(image, str | os.PathLike):
        img, notes = load_image(image)
        source = os.fspath(image)
    elif isinstance(image, Image.Image):
        img, notes = to_rgb(image)
        source = getattr(image, "filename", "") or "image"
    elif isinstance(image, Tensor):
        return tensor_to_image(_image_tensor(image))
    else:
        raise TypeError(f"image must be {_IMAGE_LIKE}; got {_what(image)}")
    for note in notes:
        log.info("%s: %s", source, note)
    return pixels_only(img)


def as_image_tensor(image: ImageLike) -> Tensor:
    """Any :data:`ImageLike` as a ``(1, 3, H, W)`` float32 tensor in [0, 1] on the CPU.

    Paths and PIL images are read as 8-bit RGB (:func:`as_rgb`, then :func:`image_to_tensor`); a
    tensor keeps its values (not rounded to 8 bits), detached, as float32 on the CPU, a
    ``(3, H, W)`` one given its batch dimension. Raises as :func:`as_rgb` does.
    """
    if isinstance(image, Tensor):
        return _image_tensor(image)
    return image_to_tensor(as_rgb(image))


def center_crop(image: Image.Image, size: int | tuple[int, int] | None) -> Image.Image:
    """The centre ``size`` of an image: a side, ``(height, width)``, or None for the whole image.

    Sides longer than the image stay at the image's size; the crop starts at
    ``((H - h) // 2, (W - w) // 2)``. ValueError for a size that is not a positive integer.
    """
    if size is None:
        return image
    pair = tuple(size) if isinstance(size, tuple | list) else (size, size)
    if len(pair) != 2 or any(not is_int(v) or v < 1 for v in pair):
        raise ValueError(f"crop size must be a positive number of pixels, (height, width) or None, got {size!r}")
    h, w = map(int, pair)
    W, H = image.size
    h, w = min(h, H), min(w, W)
    top, left = (H - h) // 2, (W - w) // 2
    return image.crop((left, top, left + w, top + h))


def image_to_tensor(img: Image.Image) -> Tensor:
    """8-bit RGB PIL image -> float tensor ``(1, 3, H, W)`` in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_image(x: Tensor) -> Image.Image:
    """Tensor ``(1, 3, H, W)`` or ``(3, H, W)`` in [0, 1] -> 8-bit RGB PIL image (rounded)."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {x.shape[0]}")
        x = x[0]
    arr = x.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, mode="RGB")


def pad(x: Tensor, multiple: int = PAD_MULTIPLE) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Zero-pad ``(B, C, H, W)`` to multiples of ``multiple``, centred as CompressAI's evaluation does.

    Returns the padded tensor and the ``unpad`` tuple for :func:`crop`.
    """
    padding, unpad = compute_padding(x.shape[-2], x.shape[-1], min_div=multiple)
    return F.pad(x, padding, mode="constant", value=0.0), unpad


def pad_offset(height: int, width: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int]:
    """``(top, left)``: where a ``height x width`` image sits inside the one :func:`pad` makes of it."""
    (left, _, top, _), _ = compute_padding(height, width, min_div=multiple)
    return top, left


def crop(x: Tensor, unpad: tuple[int, int, int, int]) -> Tensor:
    """Undo :func:`pad`."""
    return F.pad(x, unpad)
