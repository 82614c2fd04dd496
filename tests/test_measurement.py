"""The one measurement path: every entry point that codes an image reports the numbers of
gabic.measurement.measure, to the last digit; the record's definitions hold."""

from __future__ import annotations

import json
import math
import re

import pytest
from PIL import Image

from gabic.bitstream import decode_image, unpack
from gabic.checkpoints import load_checkpoint, save_checkpoint
from gabic.codecs import get_codec
from gabic.errors import CodecError
from gabic.evaluate import evaluate_checkpoints, evaluate_codec, k_sweep
from gabic.images import center_crop, load_image
from gabic.measurement import RECORD_KEYS, Measurement, measure
from gabic.metrics import bpp_from_bytes, ms_ssim, ms_ssim_db, psnr
from tests.conftest import run_cli, small_model


@pytest.fixture(scope="module")
def setting(tmp_path_factory, sample_paths):
    """One checkpoint and a folder holding one 200x168 photo (MS-SSIM defined, not a multiple of 64)."""
    root = tmp_path_factory.mktemp("one")
    ckpt = root / "gabic.pth.tar"
    save_checkpoint(small_model("gabic"), ckpt, lmbda=0.0130)
    folder = root / "images"
    folder.mkdir()
    photo = load_image(sample_paths[0])[0].crop((40, 30, 240, 198))
    photo.save(folder / "photo.png")
    return ckpt, folder / "photo.png"


def test_every_entry_point_reports_the_same_numbers(capsys, setting, tmp_path):
    ckpt, path = setting
    model = load_checkpoint(ckpt, device="cpu")
    m = measure(model, path)

    # gabic.evaluate.evaluate_checkpoints (one image: the point is that image's numbers)
    (curve,) = evaluate_checkpoints(ckpt, dataset=path.parent, device="cpu", progress=False)
    assert curve["results"]["bpp"] == [m.bpp] and curve["results"]["psnr-rgb"] == [m.psnr_rgb]
    assert curve["results"]["ms-ssim-rgb"] == [m.ms_ssim_rgb] and curve["results"]["bpp-likelihoods"] == [m.bpp_likelihoods]
    assert curve["per_image"]["photo.png"]["bpp-file"] == [m.bpp_file]

    # the k sweep with real coding, at the model's own k
    sweep = k_sweep(model, [path], ks=[9], real_coding=True, progress=False)
    assert sweep["results"]["bpp"] == [m.bpp] and sweep["results"]["psnr-rgb"] == [m.psnr_rgb]

    # the quality explorer
    pytest.importorskip("ipywidgets")
    from gabic.widgets.rd import quality_explorer

    explorer = quality_explorer(path, codecs=[], checkpoints=[ckpt], device="cpu", dpi=30)
    assert (explorer.current.bpp, explorer.current.psnr_rgb) == (m.bpp, m.psnr_rgb)
    assert f"{m.bpp:.4f} bpp" in explorer.info.value

    # the round trip by hand: the file measure wrote decodes to the image it measured
    assert decode_image(model, m.data).tobytes() == m.decoded.tobytes()
    assert bpp_from_bytes(unpack(m.data).payload_bytes, m.height, m.width) == m.bpp

    # the command line: gabic evaluate (full precision in the results file) and gabic compress
    out = tmp_path / "rd.json"
    code, _, _ = run_cli(capsys, "evaluate", ckpt, "--dataset", path.parent, "--out", out, "--device", "cpu")
    written = json.loads(out.read_text())
    assert code == 0 and written["results"]["bpp"] == [m.bpp] and written["results"]["psnr-rgb"] == [m.psnr_rgb]
    code, text, _ = run_cli(capsys, "compress", path, tmp_path / "photo.gabic", "--checkpoint", ckpt, "--device", "cpu")
    assert code == 0 and (tmp_path / "photo.gabic").read_bytes() == m.data
    assert re.search(
        rf"{m.file_bytes} bytes, {m.bpp:.4f} bpp \({m.bpp_file:.4f} with the file header\), PSNR {m.psnr_rgb:.2f} dB", text
    )


def test_codec_numbers_are_the_same_through_evaluate_codec_and_the_explorer(setting):
    _, path = setting
    m = measure("jpeg", path, 40)
    result = evaluate_codec("jpeg", dataset=path.parent, qualities=[40], workers=1, progress=False)
    assert result["results"]["bpp"] == [m.bpp] and result["results"]["psnr-rgb"] == [m.psnr_rgb]
    assert result["results"]["ms-ssim-rgb"] == [m.ms_ssim_rgb]
    pytest.importorskip("ipywidgets")
    from gabic.widgets.rd import quality_explorer

    explorer = quality_explorer(path, codecs={"jpeg": [40]}, dpi=30)
    assert (explorer.current.bpp, explorer.current.psnr_rgb) == (m.bpp, m.psnr_rgb)


def test_a_learned_measurement_by_its_definitions(setting):
    ckpt, path = setting
    model = load_checkpoint(ckpt, device="cpu")
    image = load_image(path)[0]
    m = measure(model, image)
    stream = unpack(m.data)
    assert isinstance(m, Measurement) and m.coder == "gabic" and m.quality is None
    assert (m.width, m.height) == image.size == (200, 168)
    assert m.payload_bytes == stream.y_bytes + stream.z_bytes == m.y_bytes + m.z_bytes
    assert m.file_bytes == len(m.data) > m.payload_bytes  # the header
    assert m.bpp == m.payload_bytes * 8 / (200 * 168) and m.bpp_file == m.file_bytes * 8 / (200 * 168)
    assert m.psnr_rgb == psnr(image, m.decoded) and m.ms_ssim_rgb == ms_ssim(image, m.decoded)
    assert m.ms_ssim_db == ms_ssim_db(m.ms_ssim_rgb)
    assert m.encoding_time > 0 and m.decoding_time > 0
    record = m.record()
    assert tuple(record) == RECORD_KEYS and record["bytes"] == m.file_bytes and m["psnr-rgb"] == m.psnr_rgb
    with pytest.raises(KeyError, match="'psnr'"):
        m["psnr"]


def test_a_codec_measurement_counts_its_whole_file(setting):
    _, path = setting
    image = load_image(path)[0]
    jpeg = get_codec("jpeg")
    m = measure(jpeg, image, 50)
    data = jpeg.encode(image, 50)
    assert m.data == data and m.payload_bytes == m.file_bytes == len(data) and m.bpp == m.bpp_file
    assert m.y_bytes is None and m.bpp_likelihoods is None and m.quality == 50
    assert m.psnr_rgb == psnr(image, jpeg.decode(data))


def test_small_images_have_no_ms_ssim():
    small = Image.new("RGB", (120, 90), (120, 60, 30))
    m = measure("jpeg", small, 80)
    assert math.isnan(m.ms_ssim_rgb) and math.isnan(m.ms_ssim_db) and math.isfinite(m.psnr_rgb)
    assert "MS-SSIM" not in m.summary()


def test_bad_arguments(setting):
    _, path = setting
    model = small_model("gabic")
    with pytest.raises(ValueError, match="quality is for classical codecs"):
        measure(model, path, 50)
    with pytest.raises(CodecError, match="'jpeg': give a quality setting"):
        measure("jpeg", path)
    with pytest.raises(CodecError, match="'jpg'"):
        measure("jpg", path, 50)
    with pytest.raises(TypeError, match="image must be a path or a PIL image"):
        measure(model, 42)
    crop = center_crop(load_image(path)[0], 64)
    assert measure(model, crop).width == 64
