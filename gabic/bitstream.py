"""The .gabic file: a small header, then the entropy coder's strings.

Layout (little-endian)::

    magic        5 bytes   b"GABIC"
    version      u8        FORMAT_VERSION
    name         u8 length + ASCII    architecture (a name of gabic.models.MODELS: "gabic", "wacnn" ...)
    config hash  8 bytes   the model's identity: sha256 of its config without the entries
                           that change no decoded number (the backend), truncated
                           (:meth:`gabic.models.LearnedCodec.identity`)
    fingerprint  8 bytes   sha256 of every weight and buffer the decoder uses (all but the
                           analysis transforms: hyper-synthesis, context and LRP networks,
                           entropy models, synthesis), truncated: tells two checkpoints of
                           one architecture apart (format 1: of the entropy bottleneck's
                           CDF tables only; still read)
    device       u8        format 3: the device type that wrote it (0 CPU, 1 CUDA, 2 another),
                           plus 0x80 when the model reports no checksum of its symbols
    symbols crc  u32       format 3: CRC-32 of the latent's symbols as the encoder coded them
                           (0 and not checked when the model reports none)
    height       u32       original image size, before padding
    width        u32
    z shape      u16, u16  size of the hyper-latent z
    groups       u8        number of string groups (y, z)
      strings    u8        per group: number of strings
        length   u32       per string, then its bytes
    crc32        u32       of everything before it

A file written by one model is refused by another (architecture, configuration or any weight
the decoder uses differ). Truncation and corruption are detected before the entropy decoder sees
the data, so a damaged file gives a clear error instead of a hang or a crash.

The entropy decoder recovers the encoder's symbols only when it computes the same scale indexes
as the encoder did, bit for bit; the hyper-synthesis and context networks that give them are
floating-point code whose last bits depend on the device (and on TF32, kernels, PyTorch build).
Where they differ, a symbol's probability table differs and everything decoded after it is
wrong. Format 3 records the device type and a CRC-32 of the symbols, and the decoder compares
its symbols with it: such a file is refused with one line naming the device that wrote it,
never decoded into a wrong image (formats 1 and 2 are read without this check). A model whose
``compress`` reports no checksum (CompressAI's zoo models, whose coders gabic does not rewrite)
writes files flagged as having none: they are decoded unchecked, as CompressAI decodes them.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

import torch
from compressai.ops import compute_padding
from PIL import Image

from gabic.device import model_device
from gabic.errors import BitstreamError, first_line
from gabic.images import PAD_MULTIPLE, crop, image_to_tensor, pad, tensor_to_image
from gabic.models import LearnedCodec

__all__ = [
    "DEVICE_TYPES",
    "FORMAT_VERSION",
    "MAGIC",
    "Stream",
    "check_model",
    "decode_image",
    "encode_image",
    "decoder_fingerprint",
    "device_type",
    "entropy_fingerprint",
    "pack",
    "unpack",
]

MAGIC = b"GABIC"
#: The version written; :data:`READ_VERSIONS` are read.
FORMAT_VERSION = 3
READ_VERSIONS = (1, 2, 3)
#: The device types of format 3's header, by code.
DEVICE_TYPES = ("cpu", "cuda", "other")
#: Set in format 3's device byte when the file carries no checksum of the symbols.
_NO_CHECKSUM = 0x80


def decoder_fingerprint(model: LearnedCodec) -> bytes:
    """8-byte digest of every tensor the decoder uses (:meth:`~gabic.models.LearnedCodec.decoder_state`,
    keys sorted, dtype and shape included), the fingerprint of format 2.

    Hashing the paper model's decoder weights takes a moment, so the digest is kept on the
    model and recomputed only when a tensor changed: PyTorch counts every in-place change of a
    tensor (training steps, ``load_state_dict``, ``update()``), and a move to another device
    gives new storage."""
    state = model.decoder_state()
    key = tuple((k, t.data_ptr(), t._version) for k, t in sorted(state.items()))
    cached = getattr(model, "_gabic_decoder_fingerprint", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    h = hashlib.sha256()
    for name, t in sorted(state.items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    digest = h.digest()[:8]
    object.__setattr__(model, "_gabic_decoder_fingerprint", (key, digest))  # not a module attribute: no state_dict entry
    return digest


def entropy_fingerprint(model: LearnedCodec) -> bytes:
    """8-byte digest of the factorized entropy model's CDF tables (after ``update()``): the
    fingerprint of format 1, read for files written before format 2."""
    eb = model.entropy_bottleneck
    h = hashlib.sha256()
    for t in (eb._quantized_cdf, eb._offset, eb._cdf_length):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.digest()[:8]


@dataclass
class Stream:
    """A parsed .gabic file."""

    model_name: str
    config_hash: bytes
    fingerprint: bytes
    height: int
    width: int
    shape: tuple[int, int]
    strings: list[list[bytes]]
    version: int = FORMAT_VERSION
    device: str = "cpu"  # format 3: the device type that wrote it, one of DEVICE_TYPES
    symbols_crc: int | None = 0  # format 3: CRC-32 of the latent's symbols as coded; None: the model reports none

    @property
    def payload_bytes(self) -> int:
        """Bytes of the entropy-coded strings alone (no header): the rate of CompressAI's ``eval_model``."""
        return sum(len(s) for group in self.strings for s in group)

    @property
    def y_bytes(self) -> int:
        """Bytes of the latent's strings (the first group)."""
        return sum(len(s) for s in self.strings[0])

    @property
    def z_bytes(self) -> int:
        """Bytes of the hyper-latent's strings (the second group)."""
        return sum(len(s) for s in self.strings[1])


def pack(stream: Stream) -> bytes:
    """Serialise a :class:`Stream`."""
    name = stream.model_name.encode("ascii")
    parts = [
        MAGIC,
        struct.pack("<BB", stream.version, len(name)),
        name,
        stream.config_hash,
        stream.fingerprint,
        _device_and_checksum(stream) if stream.version >= 3 else b"",
        struct.pack("<IIHHB", stream.height, stream.width, *stream.shape, len(stream.strings)),
    ]
    for group in stream.strings:
        parts.append(struct.pack("<B", len(group)))
        for s in group:
            parts.append(struct.pack("<I", len(s)))
            parts.append(s)
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def _device_and_checksum(stream: Stream) -> bytes:
    """Format 3's device byte (with :data:`_NO_CHECKSUM` when there is no checksum) and checksum."""
    code = DEVICE_TYPES.index(stream.device) | (_NO_CHECKSUM if stream.symbols_crc is None else 0)
    return struct.pack("<BI", code, stream.symbols_crc or 0)


class _Reader:
    def __init__(self, data: bytes, source: str):
        self.data, self.pos, self.source = data, 0, source

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data) - 4:
            raise BitstreamError(
                f"{self.source}: truncated .gabic file (the {what} needs {n} bytes at offset {self.pos}, "
                f"the file has {len(self.data)} bytes)"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def unpack(data: bytes, source: str = "<bytes>") -> Stream:
    """Parse and check a .gabic file's bytes; ``source`` names it in errors."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise BitstreamError(f"{source}: not a .gabic file (it does not start with {MAGIC!r})")
    r = _Reader(data, source)
    r.take(len(MAGIC), "magic")
    version, name_len = r.unpack("<BB", "header")
    if version not in READ_VERSIONS:
        raise BitstreamError(
            f"{source}: .gabic format version {version}, this gabic reads versions {', '.join(map(str, READ_VERSIONS))}"
        )
    try:
        name = r.take(name_len, "model name").decode("ascii")
    except UnicodeDecodeError:
        raise BitstreamError(f"{source}: corrupted .gabic header (model name is not ASCII)") from None
    chash, fp = r.take(8, "config hash"), r.take(8, "fingerprint")
    device, symbols_crc = r.unpack("<BI", "device and symbol checksum") if version >= 3 else (0, 0)
    if device & _NO_CHECKSUM:
        device, symbols_crc = device & ~_NO_CHECKSUM, None
    if device >= len(DEVICE_TYPES):
        raise BitstreamError(f"{source}: corrupted .gabic header (device code {device})")
    height, width, zh, zw, n_groups = r.unpack("<IIHHB", "image size")
    strings = []
    for g in range(n_groups):
        (n,) = r.unpack("<B", f"string count of group {g}")
        group = []
        for _ in range(n):
            (length,) = r.unpack("<I", "string length")
            group.append(r.take(length, f"string of group {g}"))
        strings.append(group)
    if r.pos != len(data) - 4:
        raise BitstreamError(f"{source}: corrupted .gabic file ({len(data) - 4 - r.pos} unexpected bytes at the end)")
    (crc,) = struct.unpack("<I", data[-4:])
    if crc != zlib.crc32(data[:-4]):
        raise BitstreamError(f"{source}: corrupted .gabic file (checksum mismatch)")
    expected = (-(-height // PAD_MULTIPLE), -(-width // PAD_MULTIPLE))
    if (zh, zw) != expected or n_groups != 2:
        raise BitstreamError(f"{source}: inconsistent .gabic header (z {zh}x{zw} for a {width}x{height} image)")
    return Stream(name, chash, fp, height, width, (zh, zw), strings, version, DEVICE_TYPES[device], symbols_crc)


@torch.no_grad()
def encode_image(model: LearnedCodec, image: Image.Image) -> bytes:
    """Compress an RGB image into the bytes of a .gabic file.

    The image is zero-padded to a multiple of 64 (centred, as CompressAI's evaluation),
    coded with ``model.compress`` and the header added.
    """
    device = model_device(model)
    x = image_to_tensor(image).to(device)
    xp, _ = pad(x)
    out = model.compress(xp)
    h, w = x.shape[-2:]
    stream = Stream(
        model_name=model.name,
        config_hash=model.identity(),
        fingerprint=decoder_fingerprint(model),
        height=h,
        width=w,
        shape=tuple(int(s) for s in out["shape"]),
        strings=[list(group) for group in out["strings"]],
        device=device_type(device),
        symbols_crc=out.get("symbols_crc"),
    )
    return pack(stream)


def device_type(device: torch.device) -> str:
    """The device type as format 3 records it (:data:`DEVICE_TYPES`)."""
    return device.type if device.type in DEVICE_TYPES else "other"


def check_model(stream: Stream, model: LearnedCodec, source: str) -> None:
    """Refuse to decode ``stream`` with a model other than the encoder's."""
    if stream.model_name != model.name:
        raise BitstreamError(f"{source}: written by a {stream.model_name} model, cannot decode it with a {model.name} model")
    if stream.config_hash != model.identity():
        raise BitstreamError(
            f"{source}: written by a {stream.model_name} model with another configuration than the one given "
            f"({', '.join(f'{k}={v}' for k, v in model.config.items() if k != 'model')})"
            f"{model.stream_hint(model.config, stream.config_hash)}"
        )
    expected = decoder_fingerprint(model) if stream.version >= 2 else entropy_fingerprint(model)
    if stream.fingerprint != expected:
        what = "its decoder's weights differ" if stream.version >= 2 else "its entropy model differs"
        raise BitstreamError(f"{source}: written by another {stream.model_name} checkpoint ({what})")


@torch.no_grad()
def decode_image(model: LearnedCodec, data: bytes | Stream, source: str = "<bytes>") -> Image.Image:
    """Decode a .gabic file (its bytes, or a :class:`Stream` from :func:`unpack`) into an RGB
    image of the original size."""
    stream = data if isinstance(data, Stream) else unpack(data, source)
    check_model(stream, model, source)
    try:
        out = model.decompress(stream.strings, stream.shape)
    except (MemoryError, torch.OutOfMemoryError) as err:
        raise BitstreamError(
            f"{source}: out of memory decoding a {stream.width}x{stream.height} image ({type(err).__name__}); "
            "free memory, or decode on a device with more"
        ) from None
    except Exception as err:  # noqa: BLE001 - the header and checksum passed: name what failed, never a stack trace
        what = first_line(err)[:200] or "no message"
        raise BitstreamError(
            f"{source}: decoding failed after the file's checks passed ({type(err).__name__}: {what}); "
            "a stream decodes only with the model, device type and PyTorch build that wrote it"
        ) from None
    if stream.version >= 3 and stream.symbols_crc is not None and out.get("symbols_crc") != stream.symbols_crc:
        here = device_type(model_device(model))
        where = f"written and decoded on {here}" if stream.device == here else f"written on {stream.device}, decoded on {here}"
        advice = "decode it on the device type that wrote it" if stream.device != here else "another machine or PyTorch build wrote it"
        raise BitstreamError(
            f"{source}: the decoded latent differs from the one the encoder coded ({where}): the entropy "
            f"model's numbers differ between the two; {advice}"
        )
    hp, wp = out["x_hat"].shape[-2:]
    _, unpad = compute_padding(stream.height, stream.width, out_h=hp, out_w=wp)
    x = crop(out["x_hat"], unpad)
    return tensor_to_image(x)
