"""Real bitstreams: round trips on a real photo, determinism, any size and mode, damaged files."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch
from PIL import Image

from gabic.bitstream import Stream, decode_image, encode_image, pack, unpack
from gabic.errors import BitstreamError
from gabic.images import crop, image_to_tensor, load_image, pad, tensor_to_image, to_rgb
from gabic.metrics import psnr
from tests.conftest import small_model


@pytest.fixture(scope="module")
def photo(sample_paths):
    img, notes = load_image(next(p for p in sample_paths if p.name == "chelsea.png"))
    assert notes == []
    return img


@pytest.fixture(scope="module")
def gabic_model():
    return small_model("gabic")


@pytest.mark.parametrize("name", ["gabic", "wacnn", "stf"])
def test_round_trip_matches_forward_pass_and_is_deterministic(photo, name):
    model = small_model(name)
    data = encode_image(model, photo)
    assert encode_image(model, photo) == data  # same bytes every time
    decoded = decode_image(model, data)
    assert decoded.size == photo.size and decoded.mode == "RGB"
    assert decode_image(model, data).tobytes() == decoded.tobytes()  # same image every time
    with torch.no_grad():
        xp, unpad = pad(image_to_tensor(photo))
        forward = tensor_to_image(crop(model(xp)["x_hat"], unpad))
    assert abs(psnr(photo, decoded) - psnr(photo, forward)) < 0.05


def test_stream_sizes_are_the_entropy_coder_output(photo, gabic_model):
    data = encode_image(gabic_model, photo)
    s = unpack(data)
    assert s.model_name == "gabic" and (s.width, s.height) == photo.size
    assert s.shape == (5, 8)  # 300x451 padded to 320x512, z at 1/64
    assert len(data) == s.payload_bytes + len(
        pack(Stream(s.model_name, s.config_hash, s.fingerprint, s.height, s.width, s.shape, [[b""], [b""]]))
    )


@pytest.mark.parametrize("size", [(16, 16), (100, 37), (65, 129), (200, 64)])
def test_any_size_is_padded_and_cropped_back(photo, gabic_model, size):
    img = photo.crop((0, 0, *size))
    decoded = decode_image(gabic_model, encode_image(gabic_model, img))
    assert decoded.size == size


def _png(tmp_path, img, name):
    path = tmp_path / name
    img.save(path)
    return path


def test_modes_are_converted_to_rgb_with_notes(tmp_path, photo):
    rgb = np.asarray(photo)
    gray = photo.convert("L")
    cases = {
        "gray.png": (gray, ["grayscale replicated to RGB"]),
        "rgba.png": (photo.convert("RGBA"), ["alpha channel dropped"]),
        "pal.png": (photo.convert("P"), ["palette expanded to RGB"]),
        "gray16.png": (
            Image.fromarray(np.asarray(gray).astype(np.uint16) * 257),
            ["16-bit samples reduced to 8 bits", "grayscale replicated to RGB"],
        ),
        "cmyk.tif": (photo.convert("CMYK"), ["converted from CMYK to RGB"]),
    }
    for name, (img, expected) in cases.items():
        loaded, notes = load_image(_png(tmp_path, img, name))
        assert loaded.mode == "RGB" and loaded.size == photo.size, name
        assert notes == expected, name
    g16, _ = load_image(tmp_path / "gray16.png")
    assert np.array_equal(np.asarray(g16)[..., 0], np.asarray(gray))  # 16-bit scaled back exactly
    rgba, _ = load_image(tmp_path / "rgba.png")
    assert np.array_equal(np.asarray(rgba), rgb)


def test_to_rgb_keeps_rgb_untouched(photo):
    out, notes = to_rgb(photo)
    assert out is photo and notes == []


def test_decoding_with_another_model_is_refused(photo):
    a = small_model("gabic", seed=0)
    data = encode_image(a, photo)
    with pytest.raises(BitstreamError, match="written by a gabic model, cannot decode it with a wacnn model"):
        decode_image(small_model("wacnn"), data, source="x.gabic")
    other_cfg = small_model("gabic")
    other_cfg.set_knn(5)
    with pytest.raises(BitstreamError, match="x.gabic: written by a gabic model with another configuration"):
        decode_image(other_cfg, data, source="x.gabic")
    with pytest.raises(BitstreamError, match="x.gabic: written by another gabic checkpoint"):
        decode_image(small_model("gabic", seed=1), data, source="x.gabic")
    same_but_pyg = small_model("gabic")
    same_but_pyg.set_backend("pyg")  # the backend does not change the stream
    assert decode_image(same_but_pyg, data).size == photo.size


def test_the_header_holds_the_model_identity(photo):
    model = small_model("gabic")
    s = unpack(encode_image(model, photo.crop((0, 0, 64, 64))))
    assert s.config_hash == model.identity()


def test_a_stream_of_the_other_graph_rule_is_refused(photo):
    model = small_model("gabic")
    data = encode_image(model, photo.crop((0, 0, 64, 64)))
    model.set_knn_rule("self-excluded")
    with pytest.raises(BitstreamError, match="another configuration .*knn_rule=self-excluded.*written with knn_rule='published'"):
        decode_image(model, data, source="x.gabic")
    old = encode_image(model, photo.crop((0, 0, 64, 64)))  # as gabic wrote files before the rule was an option
    model.set_knn_rule("published")
    with pytest.raises(BitstreamError, match=r"load the checkpoint with knn_rule='self-excluded' \(--knn-rule self-excluded\)"):
        decode_image(model, old, source="old.gabic")


@pytest.fixture(scope="module")
def stream_bytes(photo, gabic_model):
    return encode_image(gabic_model, photo.crop((0, 0, 96, 64)))


def test_every_truncation_is_detected(stream_bytes, gabic_model):
    for cut in range(0, len(stream_bytes), max(1, len(stream_bytes) // 97)):
        with pytest.raises(BitstreamError, match=r"cut.gabic: (truncated|not a .gabic|corrupted)"):
            decode_image(gabic_model, stream_bytes[:cut], source="cut.gabic")


def test_every_flipped_byte_is_detected(stream_bytes, gabic_model):
    for pos in range(0, len(stream_bytes), max(1, len(stream_bytes) // 97)):
        bad = bytearray(stream_bytes)
        bad[pos] ^= 0x41
        with pytest.raises(BitstreamError, match="flip.gabic: "):
            decode_image(gabic_model, bytes(bad), source="flip.gabic")


def test_garbage_and_other_versions(stream_bytes):
    with pytest.raises(BitstreamError, match="not a .gabic file"):
        unpack(b"\x89PNG\r\n\x1a\n" + bytes(100), "img.png")
    with pytest.raises(BitstreamError, match="format version 9"):
        unpack(b"GABIC" + bytes([9]) + stream_bytes[6:], "v9.gabic")
    with pytest.raises(BitstreamError, match="unexpected bytes at the end"):
        unpack(stream_bytes[:-4] + b"xx" + stream_bytes[-4:], "long.gabic")


def test_inconsistent_header_with_valid_checksum_is_refused(stream_bytes):
    s = unpack(stream_bytes)
    forged = pack(Stream(s.model_name, s.config_hash, s.fingerprint, 64, 96, (7, 7), s.strings))
    with pytest.raises(BitstreamError, match="inconsistent .gabic header"):
        unpack(forged, "forged.gabic")
    assert struct.unpack("<I", forged[-4:])[0] != 0


def test_the_fingerprint_covers_every_weight_the_decoder_uses(photo):
    """A checkpoint that differs only in its synthesis (or anything else the decoder uses) is refused;
    one that differs only in its analysis decodes (the decoder never runs it)."""
    model = small_model("gabic")
    data = encode_image(model, photo.crop((0, 0, 64, 64)))
    other = small_model("gabic")
    with torch.no_grad():
        other.g_s[8].bias.add_(1e-3)  # the last synthesis layer only
    with pytest.raises(BitstreamError, match="written by another gabic checkpoint \\(its decoder's weights differ\\)"):
        decode_image(other, data, source="x.gabic")
    analysis_only = small_model("gabic")
    with torch.no_grad():
        analysis_only.g_a[0].bias.add_(1e-3)
        analysis_only.h_a[0].bias.add_(1e-3)
    assert decode_image(analysis_only, data).size == (64, 64)
    assert set(model.decoder_state()) == {k for k in model.state_dict() if not k.startswith(("g_a.", "h_a."))}


def test_the_fingerprint_follows_changes_of_the_weights():
    from gabic.bitstream import decoder_fingerprint

    model = small_model("gabic")
    first = decoder_fingerprint(model)
    assert decoder_fingerprint(model) == first  # cached
    model.load_state_dict(small_model("gabic", seed=1).state_dict())
    assert decoder_fingerprint(model) != first
    model.load_state_dict(small_model("gabic").state_dict())
    assert decoder_fingerprint(model) == first


def test_format_1_files_still_decode(photo):
    """Format 1 fingerprinted the entropy bottleneck's CDF tables; such files still decode."""
    from gabic.bitstream import entropy_fingerprint

    model = small_model("gabic")
    image = photo.crop((0, 0, 64, 64))
    s = unpack(encode_image(model, image))
    assert s.version == 3
    old = pack(Stream(s.model_name, s.config_hash, entropy_fingerprint(model), s.height, s.width, s.shape, s.strings, version=1))
    assert decode_image(model, old).tobytes() == decode_image(model, s).tobytes()
    format2 = pack(Stream(s.model_name, s.config_hash, s.fingerprint, s.height, s.width, s.shape, s.strings, version=2))
    assert len(format2) == len(pack(s)) - 5  # no device byte, no symbol checksum
    assert decode_image(model, format2).tobytes() == decode_image(model, s).tobytes()
    with pytest.raises(BitstreamError, match="its entropy model differs"):
        decode_image(small_model("gabic", seed=1), old)


@pytest.mark.parametrize(
    "error,expected",
    [
        (
            RuntimeError("shape '[1, 32, 4, 4]' is invalid for input of size 7"),
            "decoding failed after the file's checks passed \\(RuntimeError: shape '\\[1, 32, 4, 4\\]' is invalid",
        ),
        (torch.OutOfMemoryError("CUDA out of memory"), "out of memory decoding a 64x64 image \\(OutOfMemoryError\\)"),
        (MemoryError(), "out of memory decoding a 64x64 image \\(MemoryError\\)"),
    ],
)
def test_decoder_failures_say_what_happened(photo, monkeypatch, error, expected):
    model = small_model("gabic")
    data = encode_image(model, photo.crop((0, 0, 64, 64)))

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(model, "decompress", fail)
    with pytest.raises(BitstreamError, match=expected) as info:
        decode_image(model, data, source="x.gabic")
    assert "corrupted" not in str(info.value)


# -- format 3: the device that wrote a file and the checksum of its symbols ----------------------------


def test_header_records_the_device_and_the_symbols_checksum(photo):
    """The checksum is the CRC-32 of round(y - means) of the forward pass (an independent path to
    the same symbols: the slices are contiguous channel chunks, so slice after slice is the latent's
    own order)."""
    import zlib

    model = small_model("gabic")
    image = photo.crop((0, 0, 128, 96))
    s = unpack(encode_image(model, image))
    assert s.device == "cpu"
    xp, _ = pad(image_to_tensor(image))
    with torch.no_grad():
        p = model.entropy_parameters(xp)
    symbols = torch.round(p["y_hat"] - p["means"]).to(torch.int32)
    assert s.symbols_crc == zlib.crc32(symbols.numpy().tobytes())


def test_symbols_that_decode_differently_are_refused(photo, monkeypatch):
    """As a decoder on another device would: scales off in their last bits (here 0.1 %, about what
    TF32 gives) pick other probability tables; the file is refused, never decoded into a wrong image."""
    model = small_model("gabic")
    with torch.no_grad():  # scales of a few units, as a trained model's, not all at the lower bound
        for transform in model.cc_scale_transforms:
            transform[-1].bias.add_(3.0)
    data = encode_image(model, photo.crop((0, 0, 128, 128)))
    decode_image(model, data)  # the same model decodes it
    gc = model.gaussian_conditional
    real = gc.build_indexes
    monkeypatch.setattr(gc, "build_indexes", lambda scales: real(scales * 1.001))
    with pytest.raises(BitstreamError, match=r"^x\.gabic: the decoded latent differs from the one the encoder coded \(written and"):
        decode_image(model, data, source="x.gabic")


def test_a_file_from_another_device_type_is_decoded_or_refused_by_name(photo):
    model = small_model("gabic")
    s = unpack(encode_image(model, photo.crop((0, 0, 64, 64))))
    from_cuda = Stream(**{**s.__dict__, "device": "cuda"})
    assert decode_image(model, pack(from_cuda)).tobytes() == decode_image(model, s).tobytes()  # same symbols: decoded
    wrong = Stream(**{**s.__dict__, "device": "cuda", "symbols_crc": s.symbols_crc ^ 1})
    with pytest.raises(BitstreamError, match="written on cuda, decoded on cpu.*decode it on the device type that wrote it"):
        decode_image(model, pack(wrong), source="gpu.gabic")
    with pytest.raises(BitstreamError, match="corrupted .gabic header \\(device code 7\\)"):
        data = bytearray(pack(s))
        offset = 5 + 2 + len("gabic") + 16
        data[offset] = 7
        import struct as st
        import zlib

        data[-4:] = st.pack("<I", zlib.crc32(bytes(data[:-4])))
        unpack(bytes(data))
