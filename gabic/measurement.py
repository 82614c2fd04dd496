"""Code one image for real and measure it: the one measurement path of gabic.

Every number gabic reports about a coded image comes from :func:`measure`: the RD points of
``gabic evaluate`` and ``gabic evaluate-codec``, the k sweeps with real coding, the quality
explorer, the ``gabic compress`` summary and the notebooks' before/after pictures. The forward
pass alone (no coding: training's validation, the k sweep's likelihood estimate, the attention
captures) goes through :func:`forward_padded`.

Definitions (CompressAI's ``eval_model`` and ``bench``):

- ``bpp``: bits of the coded payload per pixel of the *original* image (before padding). For a
  learned codec the payload is its entropy-coded strings (y and z), without the ``.gabic``
  header; for a classical codec it is the whole file the codec writes.
- ``bpp-file``: bits of the whole file per original pixel (the ``.gabic`` header included).
- ``bpp-likelihoods``: ``-sum(log2 p) / pixels`` of the forward pass on the same padded image
  (learned codecs only).
- ``psnr-rgb`` and ``ms-ssim-rgb``: between the original and the decoded image, both 8-bit RGB
  (:func:`gabic.metrics.psnr`, :func:`gabic.metrics.ms_ssim`); MS-SSIM is NaN for images under
  161 pixels a side, where it is undefined. ``ms-ssim-db-rgb`` is derived by
  :func:`gabic.metrics.ms_ssim_db`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from gabic.bitstream import Stream, decode_image, encode_image, unpack
from gabic.codecs import Codec, get_codec
from gabic.device import model_device
from gabic.errors import CodecError
from gabic.images import ImageLike, as_rgb, crop, image_to_tensor, pad, tensor_to_image
from gabic.metrics import MS_SSIM_MIN_SIDE, bpp_from_bytes, bpp_from_likelihoods, ms_ssim, ms_ssim_db, psnr
from gabic.models import LearnedCodec

__all__ = ["RECORD_KEYS", "Measurement", "forward_padded", "forward_psnr", "measure"]

#: The keys of :meth:`Measurement.record`, in order.
RECORD_KEYS = (
    "bpp",
    "bpp-file",
    "bpp-likelihoods",
    "psnr-rgb",
    "ms-ssim-rgb",
    "ms-ssim-db-rgb",
    "bytes",
    "y_bytes",
    "z_bytes",
    "encoding_time",
    "decoding_time",
)


@dataclass(frozen=True)
class Measurement:
    """One image coded for real and decoded, with everything measured on it.

    Attributes:
        coder: the learned codec's architecture (``"gabic"``) or the classical codec's name (``"jpeg"``).
        quality: the classical codec's quality setting; None for a learned codec.
        width, height: the original image's size in pixels.
        payload_bytes: the bytes ``bpp`` counts (see the module docstring).
        file_bytes: the bytes of the whole file.
        y_bytes, z_bytes: the latent's and hyper-latent's strings (learned codecs; None otherwise).
        bpp_likelihoods: the forward pass's estimate of the rate (learned codecs; None otherwise).
        psnr_rgb: dB between the 8-bit original and decoded images (``inf`` when identical).
        ms_ssim_rgb: linear MS-SSIM, NaN for images under :data:`gabic.metrics.MS_SSIM_MIN_SIDE`
            (161) pixels a side, where it is undefined.
        encoding_time, decoding_time: wall seconds (CUDA synchronised on a GPU).
        decoded: the decoded 8-bit RGB image.
        data: the coded file's bytes (a ``.gabic`` file for a learned codec).
    """

    coder: str
    quality: int | None
    width: int
    height: int
    payload_bytes: int
    file_bytes: int
    y_bytes: int | None
    z_bytes: int | None
    bpp_likelihoods: float | None
    psnr_rgb: float
    ms_ssim_rgb: float
    encoding_time: float
    decoding_time: float
    decoded: Image.Image = field(repr=False, compare=False)
    data: bytes = field(repr=False, compare=False)

    @property
    def bpp(self) -> float:
        """Payload bits per original pixel (CompressAI's definition)."""
        return bpp_from_bytes(self.payload_bytes, self.height, self.width)

    @property
    def bpp_file(self) -> float:
        """Bits of the whole file per original pixel."""
        return bpp_from_bytes(self.file_bytes, self.height, self.width)

    @property
    def ms_ssim_db(self) -> float:
        """MS-SSIM in dB (:func:`gabic.metrics.ms_ssim_db`), NaN where MS-SSIM is undefined."""
        return math.nan if math.isnan(self.ms_ssim_rgb) else ms_ssim_db(self.ms_ssim_rgb)

    def record(self) -> dict[str, float | int | None]:
        """The measures under the results schema's names (:data:`RECORD_KEYS`)."""
        return {
            "bpp": self.bpp,
            "bpp-file": self.bpp_file,
            "bpp-likelihoods": self.bpp_likelihoods,
            "psnr-rgb": self.psnr_rgb,
            "ms-ssim-rgb": self.ms_ssim_rgb,
            "ms-ssim-db-rgb": self.ms_ssim_db,
            "bytes": self.file_bytes,
            "y_bytes": self.y_bytes,
            "z_bytes": self.z_bytes,
            "encoding_time": self.encoding_time,
            "decoding_time": self.decoding_time,
        }

    def __getitem__(self, key: str) -> float | int | None:
        """``m["psnr-rgb"]``: one entry of :meth:`record`."""
        if key not in RECORD_KEYS:
            raise KeyError(f"{key!r}: a measurement has {', '.join(RECORD_KEYS)}")
        return self.record()[key]

    def summary(self) -> str:
        """One line: bytes, bpp (and the file's bpp where it differs), PSNR and MS-SSIM."""
        rate = f"{self.bpp:.4f} bpp" + (
            f" ({self.bpp_file:.4f} with the file header)" if self.file_bytes != self.payload_bytes else ""
        )
        quality = "∞" if math.isinf(self.psnr_rgb) else f"{self.psnr_rgb:.2f}"
        msssim = "" if math.isnan(self.ms_ssim_rgb) else f", MS-SSIM {self.ms_ssim_rgb:.4f}"
        return f"{self.file_bytes} bytes, {rate}, PSNR {quality} dB{msssim}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def forward_padded(model: LearnedCodec, x: Tensor, parameters: bool = False) -> tuple[dict[str, Any], Tensor, float]:
    """The forward pass (straight-through rounding, no coding) of one image ``(1, 3, H, W)`` in [0, 1].

    The image is zero-padded to a multiple of 64 (centred, :func:`gabic.images.pad`) and moved to
    the model's device. Returns the model's output, its reconstruction cropped back to
    ``(1, 3, H, W)`` and clamped to [0, 1], and the likelihood estimate of the rate over the
    image's own ``H * W`` pixels (:func:`gabic.metrics.bpp_from_likelihoods`). With ``parameters``
    the output is :meth:`~gabic.models.LearnedCodec.forward_entropy`' (the same pass,
    with the latent and its Gaussian parameters).
    """
    xp, unpad = pad(x.to(model_device(model)))
    out = model.forward_entropy(xp) if parameters else model(xp)
    x_hat = crop(out["x_hat"], unpad).clamp(0, 1)
    return out, x_hat, bpp_from_likelihoods(out["likelihoods"], x.shape[-2] * x.shape[-1])


def measure(
    coder: LearnedCodec | Codec | str,
    image: ImageLike,
    quality: int | None = None,
) -> Measurement:
    """Code ``image`` for real with ``coder``, decode it and measure it.

    Args:
        coder: a learned codec (a model from :func:`gabic.load_checkpoint` or
            :func:`gabic.models.build_model`, entropy tables updated), or a classical codec (a
            :class:`gabic.codecs.Codec` or its registered name).
        image: a path, a PIL image or a ``(1, 3, H, W)`` tensor in [0, 1] (:data:`gabic.images.ImageLike`);
            converted to 8-bit RGB, metadata dropped.
        quality: the classical codec's quality setting (required for a classical codec; must be
            None for a learned one).

    A learned codec codes the image zero-padded to a multiple of 64 (centred, as CompressAI's
    ``eval_model``) into a ``.gabic`` file (:func:`gabic.bitstream.encode_image`) and decodes it
    back (:func:`gabic.bitstream.decode_image`, cropped to the original size); then the forward
    pass gives the likelihood estimate. A classical codec encodes and decodes through
    :mod:`gabic.codecs`.

    Returns:
        A :class:`Measurement`; ``measurement.record()`` holds the numbers under the results
        schema's names.

    Raises:
        CodecError: an unknown or unavailable codec, a quality out of range or missing, or a
            decoded image of another size.
        ValueError: a quality given for a learned codec.
        ImageError: a path that is not a readable image.
    """
    img = as_rgb(image)
    w, h = img.size
    if isinstance(coder, LearnedCodec):
        if quality is not None:
            raise ValueError(f"quality is for classical codecs; a {coder.name} model has none (got quality={quality!r})")
        streams: list[Stream] = []  # the parsed file, kept from the decoder's own reading

        def decode(data: bytes) -> Image.Image:
            streams.append(unpack(data))
            return decode_image(coder, streams[-1])

        data, decoded, times = _timed(partial(encode_image, coder, img), decode, model_device(coder))
        stream = streams[0]
        _, _, estimate = forward_padded(coder, image_to_tensor(img))
        payload, y_bytes, z_bytes, name = stream.payload_bytes, stream.y_bytes, stream.z_bytes, coder.name
    else:
        codec = get_codec(coder) if isinstance(coder, str) else coder
        if not isinstance(codec, Codec):
            raise TypeError(f"coder must be a learned codec, a gabic.codecs.Codec or a codec name, got {type(coder).__name__}")
        if quality is None:
            raise CodecError(f"codec {codec.name!r}: give a quality setting ({codec.quality_range[0]}..{codec.quality_range[1]})")
        data, decoded, times = _timed(partial(codec.encode, img, quality), codec.decode, torch.device("cpu"))
        if decoded.size != img.size:
            raise CodecError(f"codec {codec.name!r}: decoded a {w}x{h} image as {decoded.size[0]}x{decoded.size[1]}")
        payload, y_bytes, z_bytes, estimate, name, quality = len(data), None, None, None, codec.name, int(quality)
    return Measurement(
        coder=name,
        quality=quality,
        width=w,
        height=h,
        payload_bytes=payload,
        file_bytes=len(data),
        y_bytes=y_bytes,
        z_bytes=z_bytes,
        bpp_likelihoods=estimate,
        psnr_rgb=psnr(img, decoded),
        ms_ssim_rgb=math.nan if min(w, h) < MS_SSIM_MIN_SIDE else ms_ssim(img, decoded),
        encoding_time=times[0],
        decoding_time=times[1],
        decoded=decoded,
        data=data,
    )


def _timed(
    encode: Callable[[], bytes], decode: Callable[[bytes], Image.Image], device: torch.device
) -> tuple[bytes, Image.Image, tuple[float, float]]:
    """``encode()``, then ``decode(data)``: the data, the decoded image and the two wall times
    (CUDA synchronised before each clock reading on a GPU)."""
    _sync(device)
    t0 = time.perf_counter()
    data = encode()
    _sync(device)
    t1 = time.perf_counter()
    decoded = decode(data)
    _sync(device)
    t2 = time.perf_counter()
    return data, decoded, (t1 - t0, t2 - t1)


def forward_psnr(original: Image.Image, x_hat: Tensor) -> float:
    """PSNR of a forward pass's reconstruction ``(1, 3, H, W)`` in [0, 1], rounded to 8 bits like a
    decoded image, against the 8-bit original."""
    return psnr(original, tensor_to_image(x_hat))
