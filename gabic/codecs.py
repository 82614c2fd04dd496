"""Classical image codecs behind one interface, registered by name.

Each codec encodes an 8-bit RGB PIL image at an integer quality setting to bytes and decodes
the bytes back to an 8-bit RGB PIL image::

    from gabic.codecs import get_codec, list_codecs

    jpeg = get_codec("jpeg")
    data = jpeg.encode(image, quality=75)
    rec = jpeg.decode(data)

Registered names: ``jpeg``, ``webp``, ``avif``, ``heif``, ``jpeg2000``, ``jpegxl``, ``bpg``.
Optional libraries (pillow-heif, pillow-jxl-plugin) and executables (``bpgenc``) are looked
up lazily, the first time a codec's :attr:`Codec.available` is read: a codec whose library is
missing is reported unavailable with the reason, and never breaks ``import gabic.codecs``.

Only the pixels are coded: :meth:`Codec.encode` strips the image's metadata (EXIF, ICC
profile, XMP) and its file origin first, so that no codec spends bytes on metadata and no
plugin transcodes a JPEG file losslessly instead of coding its pixels.

The quality settings are the codec's own (``quality_range``, inclusive); for some codecs a
higher value is better (JPEG's quality), for others a lower one (BPG's quantiser), as
``higher_is_better`` says. ``default_qualities`` are ordered from the lowest to the highest
rate and span about 0.1 to 2 bpp on photographs (measured on :func:`gabic.data.samples`).
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tempfile
from functools import cached_property
from importlib import metadata
from pathlib import Path

from PIL import Image, features

from gabic.checks import is_int
from gabic.errors import CodecError
from gabic.images import pixels_only

__all__ = ["CODECS", "Codec", "get_codec", "list_codecs", "pixels_only"]  # pixels_only: from gabic.images

logger = logging.getLogger(__name__)


def _dist_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


class Codec:
    """A classical image codec: ``encode(image, quality) -> bytes``, ``decode(bytes) -> image``.

    Subclasses set the class attributes and implement ``_encode``, ``_decode`` and, when they
    need an optional library, ``_check`` (returns why the codec is unavailable, or None).

    Attributes:
        name: registry name (``"jpeg"``).
        label: human-readable description of what is run (codec, library, settings).
        quality_range: ``(min, max)`` of the integer quality setting, both inclusive.
        higher_is_better: True when a higher setting gives a higher quality and rate.
        default_qualities: settings spanning about 0.1-2 bpp on photographs, lowest rate first.
    """

    name: str = ""
    label: str = ""
    quality_range: tuple[int, int] = (0, 100)
    higher_is_better: bool = True
    default_qualities: tuple[int, ...] = ()

    # -- availability -------------------------------------------------------------------------

    @cached_property
    def unavailable_reason(self) -> str:
        """Why the codec cannot run here ("" when it can). Checked once, lazily."""
        try:
            reason = self._check()
        except Exception as err:  # a broken optional install must not break listing codecs
            reason = f"{type(err).__name__}: {err}"
        return reason or ""

    @property
    def available(self) -> bool:
        """Whether the codec's library or executable is present and can encode."""
        return not self.unavailable_reason

    def _check(self) -> str | None:
        return None

    def require(self) -> None:
        """Raise :class:`~gabic.errors.CodecError` with the reason when the codec is unavailable."""
        if not self.available:
            raise CodecError(f"codec {self.name!r} is not available: {self.unavailable_reason}")

    def check_quality(self, quality: int) -> int:
        """Return ``quality`` as an int; raise CodecError naming codec, value and range when it is
        not an integer inside ``quality_range``."""
        lo, hi = self.quality_range
        direction = "higher is better" if self.higher_is_better else "lower is better"
        if not is_int(quality) or not lo <= quality <= hi:
            raise CodecError(f"codec {self.name!r}: quality {quality!r} is outside its range {lo}..{hi} (integers, {direction})")
        return int(quality)

    # -- coding -------------------------------------------------------------------------------

    def encode(self, image: Image.Image, quality: int) -> bytes:
        """Encode an RGB image (its pixels only, no metadata) at ``quality``; return the bytes.

        Raises CodecError when the codec is unavailable or ``quality`` is out of range.
        """
        self.require()
        quality = self.check_quality(quality)
        if not isinstance(image, Image.Image):
            raise CodecError(f"codec {self.name!r}: expected a PIL image, got {type(image).__name__}")
        image = pixels_only(image)
        try:
            return self._encode(image, quality)
        except CodecError:
            raise
        except Exception as err:
            raise CodecError(f"codec {self.name!r}: encoding at quality {quality} failed: {err}") from err

    def decode(self, data: bytes) -> Image.Image:
        """Decode bytes written by :meth:`encode` to an 8-bit RGB PIL image (fully loaded).

        Raises CodecError when the codec is unavailable or the data cannot be decoded.
        """
        self.require()
        try:
            image = self._decode(bytes(data))
        except CodecError:
            raise
        except Exception as err:
            raise CodecError(f"codec {self.name!r}: cannot decode {len(data)} bytes: {err}") from err
        return image if image.mode == "RGB" else image.convert("RGB")

    def _encode(self, image: Image.Image, quality: int) -> bytes:
        raise NotImplementedError

    def _decode(self, data: bytes) -> Image.Image:
        raise NotImplementedError

    # -- description --------------------------------------------------------------------------

    def versions(self) -> dict[str, str]:
        """Versions of the libraries or executables this codec runs (empty when unavailable)."""
        return {"pillow": _dist_version("pillow") or "unknown"}

    def info(self) -> dict:
        """A plain dict describing the codec: name, label, range, direction, defaults, availability."""
        return {
            "name": self.name,
            "label": self.label,
            "quality_range": list(self.quality_range),
            "higher_is_better": self.higher_is_better,
            "default_qualities": list(self.default_qualities),
            "available": self.available,
            "unavailable_reason": self.unavailable_reason,
        }

    def __repr__(self) -> str:
        state = "available" if self.available else f"unavailable: {self.unavailable_reason}"
        return f"<{type(self).__name__} {self.name!r} ({state})>"


class _PillowCodec(Codec):
    """A codec built into Pillow: ``image.save(format=fmt, quality=q, **save_options)``."""

    fmt = ""
    feature = ""
    library = ""
    save_options: dict = {}

    def _check(self) -> str | None:
        if not features.check(self.feature):
            return f"this Pillow ({_dist_version('pillow')}) was built without {self.feature} support"
        return None

    def _save_args(self, quality: int) -> dict:
        return {"quality": quality, **self.save_options}

    def _encode(self, image: Image.Image, quality: int) -> bytes:
        buf = io.BytesIO()
        image.save(buf, format=self.fmt, **self._save_args(quality))
        return buf.getvalue()

    def _decode(self, data: bytes) -> Image.Image:
        with Image.open(io.BytesIO(data), formats=[self.fmt]) as im:
            im.load()
            return im.convert("RGB")

    def versions(self) -> dict[str, str]:
        out = super().versions()
        if self.available:
            out[self.library] = features.version(self.feature) or "unknown"
        return out


class JPEG(_PillowCodec):
    """JPEG with Pillow's libjpeg: baseline, 4:2:0 chroma subsampling, libjpeg's quality scaling.

    Settings are those of CompressAI's bench (``compressai.utils.bench.codecs.JPEG``, which
    calls ``img.save(format="jpeg", quality=q)``): Pillow's defaults, that is 4:2:0
    subsampling (given explicitly here as ``subsampling=2``), standard Huffman tables,
    no ``optimize`` and no ``progressive``. Quality 1-95 (Pillow advises against above 95).
    """

    name = "jpeg"
    label = "JPEG (Pillow libjpeg, 4:2:0, baseline)"
    fmt = "JPEG"
    feature = "jpg"
    library = "libjpeg"
    quality_range = (1, 95)
    #: 0.22-2.0 bpp on the samples (JPEG cannot go lower: quality 1 still gives 0.18 bpp)
    default_qualities = (5, 10, 20, 35, 50, 70, 85, 90)
    save_options = {"subsampling": 2}

    def versions(self) -> dict[str, str]:
        out = super().versions()
        if self.available and features.check_feature("libjpeg_turbo"):
            del out["libjpeg"]  # features.version("jpg") is the libjpeg API version (6.2), not the library's
            out["libjpeg-turbo"] = features.version("libjpeg_turbo") or "unknown"
        return out


class WebP(_PillowCodec):
    """Lossy WebP (VP8 intra, 4:2:0) with Pillow's libwebp at its default ``method=4``."""

    name = "webp"
    label = "WebP (Pillow libwebp, lossy, 4:2:0)"
    fmt = "WEBP"
    feature = "webp"
    library = "libwebp"
    quality_range = (0, 100)
    #: 0.11-1.65 bpp on the samples
    default_qualities = (0, 5, 10, 30, 50, 70, 85, 90)
    save_options = {"lossless": False, "method": 4}


class AVIF(_PillowCodec):
    """AVIF (AV1 intra) with Pillow's built-in AVIF plugin (Pillow >= 11.3 built with libavif).

    Settings: 4:4:4 chroma (as for HEIF and BPG here), ``speed=6`` (Pillow's default), the
    encoder libavif picks (usually libaom).
    """

    name = "avif"
    label = "AVIF (AV1 intra, Pillow libavif, 4:4:4, speed 6)"
    fmt = "AVIF"
    feature = "avif"
    library = "libavif"
    quality_range = (0, 100)
    #: 0.12-1.60 bpp on the samples
    default_qualities = (10, 20, 30, 40, 50, 60, 70, 85)
    save_options = {"subsampling": "4:4:4", "speed": 6}

    def _check(self) -> str | None:
        if not features.check("avif"):
            return f"this Pillow ({_dist_version('pillow')}) has no built-in AVIF plugin (needs Pillow >= 11.3 built with libavif)"
        return None


class JPEG2000(_PillowCodec):
    """JPEG 2000 with Pillow's OpenJPEG plugin, rate-controlled.

    The quality setting is the target compression ratio against 24-bit RGB
    (``quality_mode="rates"``, ``quality_layers=[q]``), so the rate is about ``24 / q`` bpp and
    falls monotonically as ``q`` grows: lower is better. One quality layer, the irreversible
    9/7 wavelet (``irreversible=True``, as for lossy coding), RGB->YCbCr colour transform,
    OpenJPEG's default 6 resolution levels and 64x64 code blocks. ``q=1`` means no rate
    constraint (the 9/7 wavelet's near-lossless rate).
    """

    name = "jpeg2000"
    label = "JPEG 2000 (Pillow OpenJPEG, 9/7 wavelet, quality = compression ratio)"
    fmt = "JPEG2000"
    feature = "jpg_2000"
    library = "openjpeg"
    quality_range = (1, 1000)
    higher_is_better = False
    #: 0.10-2.0 bpp on the samples (24 / ratio, by construction)
    default_qualities = (240, 160, 100, 60, 40, 24, 16, 12)

    def _save_args(self, quality: int) -> dict:
        return {"quality_mode": "rates", "quality_layers": [quality], "irreversible": True, "no_jp2": False}


class HEIF(Codec):
    """HEVC intra with x265 in a HEIF container, 4:4:4, through pillow-heif (libheif).

    This is the nearest relative of BPG available without ``bpgenc``: BPG is also HEVC intra
    (x265 by default), in its own smaller container, so the rates differ slightly (the HEIF
    container costs a few hundred bytes per image). It is not BPG. Settings: chroma 4:4:4,
    BT.601 full-range YCbCr (libheif's default for RGB input), x265's default preset.
    The quality 0-100 is libheif's (higher is better; it sets x265's constant rate factor to
    ``(100 - q) / 2``; -1, lossless, is not offered).
    """

    name = "heif"
    label = "HEVC intra (x265, HEIF container, 4:4:4)"
    quality_range = (0, 100)
    #: 0.08-1.63 bpp on the samples
    default_qualities = (10, 20, 30, 40, 45, 50, 55, 60)

    def _check(self) -> str | None:
        try:
            import pillow_heif
        except ImportError:
            return "pillow-heif is not installed (pip install pillow-heif)"
        encoders = pillow_heif.libheif_info().get("encoders", {})
        if "x265" not in encoders:
            return f"pillow-heif's libheif has no x265 HEVC encoder (encoders: {', '.join(encoders) or 'none'})"
        return None

    def _encode(self, image: Image.Image, quality: int) -> bytes:
        import pillow_heif

        buf = io.BytesIO()
        pillow_heif.from_pillow(image).save(buf, format="HEIF", quality=quality, chroma=444, save_nclx_profile=True)
        return buf.getvalue()

    def _decode(self, data: bytes) -> Image.Image:
        import pillow_heif

        heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        return heif.to_pillow().convert("RGB")

    def versions(self) -> dict[str, str]:
        out = super().versions()
        if self.available:
            import pillow_heif

            info = pillow_heif.libheif_info()
            out["pillow-heif"] = _dist_version("pillow-heif") or "unknown"
            out["libheif"] = str(info.get("libheif", "unknown"))
            out["x265"] = str(info.get("encoders", {}).get("x265", "unknown"))
            out["libde265"] = str(info.get("decoders", {}).get("libde265", "unknown"))
        return out


class JPEGXL(Codec):
    """JPEG XL (VarDCT) with libjxl through pillow-jxl-plugin, ``effort=7`` (libjxl's default).

    The quality 0-99 is libjxl's quality scale (mapped to a Butteraugli distance); 100 would
    be lossless and is not offered. Lossless JPEG transcoding is switched off.
    """

    name = "jpegxl"
    label = "JPEG XL (libjxl VarDCT via pillow-jxl-plugin, effort 7)"
    quality_range = (0, 99)
    #: 0.15-1.81 bpp on the samples (libjxl cannot go lower: quality 0 is its coarsest)
    default_qualities = (0, 10, 20, 40, 60, 75, 85, 92)

    def _check(self) -> str | None:
        try:
            import pillow_jxl  # noqa: F401  (registers the JXL format with Pillow)
        except ImportError:
            return "pillow-jxl-plugin is not installed (pip install pillow-jxl-plugin)"
        return None

    def _encode(self, image: Image.Image, quality: int) -> bytes:
        import pillow_jxl  # noqa: F401

        buf = io.BytesIO()
        image.save(buf, format="JXL", quality=quality, effort=7, lossless=False, lossless_jpeg=False)
        return buf.getvalue()

    def _decode(self, data: bytes) -> Image.Image:
        import pillow_jxl  # noqa: F401

        with Image.open(io.BytesIO(data), formats=["JXL"]) as im:
            im.load()
            return im.convert("RGB")

    def versions(self) -> dict[str, str]:
        out = super().versions()
        if self.available:
            out["pillow-jxl-plugin"] = _dist_version("pillow-jxl-plugin") or "unknown"
        return out


class BPG(Codec):
    """BPG (HEVC intra, Bellard's container) with the ``bpgenc``/``bpgdec`` executables.

    Settings follow CompressAI's bench defaults: x265 encoder, 4:4:4 chroma, YCbCr, 8 bits
    (``bpgenc -q QP -f 444 -e x265 -c ycbcr -b 8``). The quality is the HEVC quantiser,
    0-51, lower is better. Unavailable when ``bpgenc`` or ``bpgdec`` is not on PATH.
    """

    name = "bpg"
    label = "BPG (bpgenc, HEVC intra x265, 4:4:4)"
    quality_range = (0, 51)
    higher_is_better = False
    #: Not measured here (no bpgenc): chosen from the HEIF sweep, the same x265 coder, where
    #: qualities 10-60 (x265 CRF 45-20) gave 0.08-1.63 bpp; BPG's fixed QP 46-23 is expected
    #: to span about the same rates.
    default_qualities = (46, 42, 38, 35, 32, 29, 26, 23)

    def _check(self) -> str | None:
        for exe in ("bpgenc", "bpgdec"):
            if shutil.which(exe) is None:
                return f"{exe} not found on PATH"
        return None

    @staticmethod
    def _run(cmd: list[str]) -> None:
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0:
            message = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip().splitlines()
            raise CodecError(f"{cmd[0]} failed (exit status {proc.returncode}): {message[-1] if message else 'no message'}")

    def _encode(self, image: Image.Image, quality: int) -> bytes:
        with tempfile.TemporaryDirectory(prefix="gabic-bpg-") as tmp:
            src, out = Path(tmp) / "in.png", Path(tmp) / "out.bpg"
            image.save(src, format="PNG", compress_level=0)
            options = ["-q", str(quality), "-f", "444", "-e", "x265", "-c", "ycbcr", "-b", "8"]
            self._run([shutil.which("bpgenc") or "bpgenc", "-o", str(out), *options, str(src)])
            return out.read_bytes()

    def _decode(self, data: bytes) -> Image.Image:
        with tempfile.TemporaryDirectory(prefix="gabic-bpg-") as tmp:
            src, out = Path(tmp) / "in.bpg", Path(tmp) / "out.png"
            src.write_bytes(data)
            self._run([shutil.which("bpgdec") or "bpgdec", "-o", str(out), str(src)])
            with Image.open(out) as im:
                im.load()
                return im.convert("RGB")

    def versions(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.available:
            proc = subprocess.run([shutil.which("bpgenc") or "bpgenc", "-h"], capture_output=True)
            text = (proc.stdout or proc.stderr).decode("utf-8", "replace")
            first = text.strip().splitlines()[0] if text.strip() else ""
            out["bpgenc"] = first.split("version")[-1].strip() if "version" in first else first or "unknown"
        return out


#: The registry: codec name -> class, in the order :func:`list_codecs` lists them.
CODECS: dict[str, type[Codec]] = {cls.name: cls for cls in (JPEG, WebP, AVIF, HEIF, JPEG2000, JPEGXL, BPG)}

_instances: dict[str, Codec] = {}


def get_codec(name: str) -> Codec:
    """The codec registered as ``name`` (case-insensitive), available or not.

    Raises :class:`~gabic.errors.CodecError` listing the known names for an unknown one.
    """
    key = str(name).strip().lower()
    if key not in CODECS:
        raise CodecError(f"unknown codec {name!r}; known codecs: {', '.join(CODECS)}")
    if key not in _instances:
        _instances[key] = CODECS[key]()
    return _instances[key]


def list_codecs() -> list[Codec]:
    """All registered codecs, available or not; each has ``available`` and ``unavailable_reason``
    (and ``info()`` for a plain dict)."""
    return [get_codec(name) for name in CODECS]
