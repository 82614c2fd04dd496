"""Classical codecs (gabic.codecs) and codec RD sweeps (gabic.evaluate.evaluate_codec)."""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

import gabic.evaluate.codecs as evaluate_mod
import gabic.results
from gabic.codecs import BPG, CODECS, HEIF, JPEGXL, get_codec, list_codecs
from gabic.data import samples
from gabic.errors import CodecError, DataError, ImageError
from gabic.evaluate import evaluate_codec, write_results
from gabic.images import load_image
from gabic.metrics import ms_ssim, psnr

NAMES = ("jpeg", "webp", "avif", "heif", "jpeg2000", "jpegxl", "bpg")


def numpy_psnr(a, b) -> float:
    """PSNR written out independently of gabic.metrics."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return 10.0 * np.log10(255.0**2 / np.mean(diff**2))


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """The smallest sample photograph (chelsea, 451x300)."""
    return load_image(samples()[1])[0]


@pytest.fixture()
def folder(tmp_path):
    """A folder with two sample photographs (chelsea 451x300, coffee 600x400)."""
    for path in samples()[1:3]:
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


# -- registry -----------------------------------------------------------------------------------


def test_registry_lists_every_codec_with_availability():
    codecs = list_codecs()
    assert [c.name for c in codecs] == list(NAMES) == list(CODECS)
    for c in codecs:
        assert c.label and isinstance(c.available, bool)
        lo, hi = c.quality_range
        assert len(c.default_qualities) >= 6
        assert all(lo <= q <= hi for q in c.default_qualities)
        if c.available:
            assert c.unavailable_reason == ""
        else:
            assert c.unavailable_reason  # says why
        info = c.info()
        assert info["name"] == c.name and info["available"] == c.available
    assert get_codec("heif").label == "HEVC intra (x265, HEIF container, 4:4:4)"
    assert get_codec("JPEG") is get_codec("jpeg")


def test_unknown_codec_lists_known_names():
    with pytest.raises(CodecError, match="unknown codec 'mp3'.*jpeg, webp, avif, heif, jpeg2000, jpegxl, bpg"):
        get_codec("mp3")


@pytest.mark.parametrize(
    ("name", "quality"), [("jpeg", 0), ("jpeg", 96), ("jpeg", 50.5), ("jpeg", True), ("jpeg2000", 0), ("webp", 101), ("bpg", 52)]
)
def test_quality_out_of_range(name, quality, photo):
    codec = get_codec(name)
    with pytest.raises(CodecError, match=rf"{name}.*quality {quality!r}.*range {codec.quality_range[0]}\.\.{codec.quality_range[1]}"):
        codec.check_quality(quality)
    if codec.available:
        with pytest.raises(CodecError, match="outside its range"):
            codec.encode(photo, quality)


# -- unavailable codecs ----------------------------------------------------------------------------


def test_bpg_unavailable_without_executables(monkeypatch, photo):
    monkeypatch.setattr(shutil, "which", lambda exe: None)
    bpg = BPG()  # a fresh instance: availability is checked once per instance
    assert not bpg.available
    assert bpg.unavailable_reason == "bpgenc not found on PATH"
    with pytest.raises(CodecError, match="'bpg' is not available: bpgenc not found on PATH"):
        bpg.encode(photo, 30)
    with pytest.raises(CodecError, match="not available"):
        bpg.decode(b"BPG\xfb")


@pytest.mark.parametrize(
    ("cls", "module", "package"), [(HEIF, "pillow_heif", "pillow-heif"), (JPEGXL, "pillow_jxl", "pillow-jxl-plugin")]
)
def test_missing_library_is_reported_not_raised(monkeypatch, photo, cls, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    codec = cls()
    assert not codec.available
    assert package in codec.unavailable_reason
    assert codec.versions() == {"pillow": codec.versions()["pillow"]}
    with pytest.raises(CodecError, match=f"{codec.name!r} is not available: {package} is not installed"):
        codec.encode(photo, codec.default_qualities[0])


def test_every_unavailable_codec_raises_on_encode(photo):
    for codec in list_codecs():
        if not codec.available:
            with pytest.raises(CodecError, match=re.escape(codec.unavailable_reason)):
                codec.encode(photo, codec.default_qualities[0])


FAKE_BPGENC = """\
import os, shutil, sys
args = sys.argv[1:]
if "-h" in args:
    print("BPG Image Encoder version 0.9.8")
    print("usage: bpgenc [options] infile.[jpg|png]")
    sys.exit(1)
if os.environ.get("FAKE_BPG_FAIL"):
    sys.stderr.write("Error: unsupported option\\n")
    sys.exit(1)
with open(os.environ["FAKE_BPG_LOG"], "w") as log:
    log.write(" ".join(args))
shutil.copyfile(args[-1], args[args.index("-o") + 1])
"""

FAKE_BPGDEC = """\
import shutil, sys
args = sys.argv[1:]
shutil.copyfile(args[-1], args[args.index("-o") + 1])
"""


@pytest.fixture()
def fake_bpg(tmp_path, monkeypatch):
    """bpgenc/bpgdec stand-ins on PATH that copy the PNG through and log the encoder's arguments."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in (("bpgenc", FAKE_BPGENC), ("bpgdec", FAKE_BPGDEC)):
        exe = bindir / name
        exe.write_text(f"#!{sys.executable}\n{body}")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_BPG_LOG", str(tmp_path / "bpgenc.log"))
    return tmp_path / "bpgenc.log"


@pytest.mark.skipif(os.name == "nt", reason="the stand-in executables are scripts with a shebang")
def test_bpg_runs_the_executables(fake_bpg, photo, monkeypatch):
    bpg = BPG()
    assert bpg.available and bpg.versions() == {"bpgenc": "0.9.8"}
    rec = bpg.decode(bpg.encode(photo, 30))
    np.testing.assert_array_equal(np.asarray(rec), np.asarray(photo))
    args = fake_bpg.read_text().split()
    assert args[args.index("-q") + 1] == "30"
    for flag, value in (("-f", "444"), ("-e", "x265"), ("-c", "ycbcr"), ("-b", "8")):
        assert args[args.index(flag) + 1] == value
    monkeypatch.setenv("FAKE_BPG_FAIL", "1")
    with pytest.raises(CodecError, match=r"bpgenc failed \(exit status 1\): Error: unsupported option"):
        bpg.encode(photo, 30)


# -- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_real_photo(name, photo):
    codec = get_codec(name)
    if not codec.available:
        pytest.skip(f"{name}: {codec.unavailable_reason}")
    dq = codec.default_qualities
    qualities = [dq[0], dq[len(dq) // 2], dq[-1]]  # lowest, middle and highest rate
    sizes, psnrs = [], []
    for q in qualities:
        data = codec.encode(photo, q)
        rec = codec.decode(data)
        assert rec.mode == "RGB" and rec.size == photo.size
        sizes.append(len(data))
        psnrs.append(psnr(photo, rec))
    bpps = [8 * n / (photo.width * photo.height) for n in sizes]
    assert 0.03 < bpps[0] < 0.5 and 1.0 < bpps[-1] < 4.0, bpps
    assert sizes == sorted(sizes) and len(set(sizes)) == 3, f"rate must grow in the direction of quality: {sizes}"
    assert psnrs == sorted(psnrs) and len(set(psnrs)) == 3, f"PSNR must grow in the direction of quality: {psnrs}"
    assert 20.0 < psnrs[0] < 33.0 and 30.0 < psnrs[-1] < 50.0, psnrs


def test_metadata_is_not_coded(photo):
    """The pixels are coded, not the EXIF/ICC of the source image."""
    codec = get_codec("jpeg")
    tagged = photo.copy()
    tagged.info["icc_profile"] = b"\0" * 4000
    assert codec.encode(tagged, 50) == codec.encode(photo, 50)


def test_jpeg_equals_pillow_by_hand(photo):
    """gabic's JPEG is Pillow's baseline 4:2:0 JPEG: same bytes, same pixels, same PSNR."""
    arr = np.asarray(photo)
    for q in (10, 75):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=q, subsampling=2)
        ref_bytes = buf.getvalue()
        ref_rec = np.asarray(Image.open(io.BytesIO(ref_bytes)).convert("RGB"))
        data = get_codec("jpeg").encode(photo, q)
        rec = get_codec("jpeg").decode(data)
        assert data == ref_bytes
        np.testing.assert_array_equal(np.asarray(rec), ref_rec)
        assert psnr(photo, rec) == pytest.approx(numpy_psnr(arr, ref_rec), abs=1e-9)


def test_corrupt_data_raises_codec_error():
    with pytest.raises(CodecError, match="'jpeg': cannot decode 9 bytes"):
        get_codec("jpeg").decode(b"not jpeg!")


# -- evaluate_codec --------------------------------------------------------------------------------


def test_evaluate_codec_schema_and_values(folder):
    result = evaluate_codec("jpeg", folder, qualities=[80, 20], workers=1, progress=False)
    assert set(result) == {"name", "description", "results", "meta", "per_image"}
    assert result["name"] == "jpeg" and result["description"] == get_codec("jpeg").label
    res = result["results"]
    assert set(res) == {"bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb", "encoding_time", "decoding_time"}
    assert all(len(v) == 2 for v in res.values())
    meta = result["meta"]
    assert meta["dataset"] == str(folder) and meta["num_images"] == 2 and meta["codec"] == "jpeg"
    assert meta["quality"] == [20, 80]  # sorted by bpp, the qualities permuted with the points
    assert meta["source"].startswith("measured with gabic ")
    assert {"pillow", "pytorch-msssim"} <= set(meta["versions"])
    assert res["bpp"] == sorted(res["bpp"]) and res["psnr-rgb"][0] < res["psnr-rgb"][1]
    assert all(t > 0 for t in res["encoding_time"] + res["decoding_time"])

    names = [p.name for p in samples()[1:3]]
    assert sorted(result["per_image"]) == sorted(names)
    for k in ("bpp", "psnr-rgb", "ms-ssim-rgb"):
        per = np.array([result["per_image"][n][k] for n in names])  # (images, points)
        np.testing.assert_allclose(per.mean(axis=0), res[k], rtol=1e-12)
    for m, db in zip(res["ms-ssim-rgb"], res["ms-ssim-db-rgb"], strict=True):
        assert db == pytest.approx(-10 * math.log10(1 - m))

    # every per-image value against an independent computation with Pillow and numpy
    for name in names:
        img = np.asarray(load_image(folder / name)[0])
        for point, q in enumerate(meta["quality"]):
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=q, subsampling=2)
            rec = np.asarray(Image.open(buf).convert("RGB"))
            assert result["per_image"][name]["bpp"][point] == len(buf.getvalue()) * 8 / (img.shape[0] * img.shape[1])
            assert result["per_image"][name]["psnr-rgb"][point] == pytest.approx(numpy_psnr(img, rec), abs=1e-9)
            assert result["per_image"][name]["ms-ssim-rgb"][point] == pytest.approx(ms_ssim(img, rec), abs=1e-6)


def test_evaluate_codec_workers_agree(folder):
    one = evaluate_codec("jpeg2000", folder, qualities=[100, 24], workers=1, progress=False)
    two = evaluate_codec("jpeg2000", folder, qualities=[100, 24], workers=2, progress=False)
    assert one["meta"] == two["meta"]
    assert one["meta"]["quality"] == [100, 24]  # lower is better: ratio 100 is the lower rate
    for k in ("bpp", "psnr-rgb"):
        assert one["results"][k] == two["results"][k]
    np.testing.assert_allclose(one["results"]["ms-ssim-rgb"], two["results"]["ms-ssim-rgb"], rtol=1e-6)
    assert one["per_image"].keys() == two["per_image"].keys()
    for name in one["per_image"]:
        assert one["per_image"][name]["bpp"] == two["per_image"][name]["bpp"]


def test_evaluate_small_image_leaves_ms_ssim_out(tmp_path):
    load_image(samples()[1])[0].crop((0, 0, 120, 100)).save(tmp_path / "small.png")
    result = evaluate_codec("jpeg", tmp_path, qualities=[50], workers=1, progress=False)
    assert "ms-ssim-rgb" not in result["results"] and "ms-ssim-db-rgb" not in result["results"]
    assert "small.png" in result["meta"]["omitted"]
    assert result["per_image"]["small.png"]["ms-ssim-rgb"] == [None]
    assert 20 < result["results"]["psnr-rgb"][0] < 50
    path = write_results(result, tmp_path / "out" / "jpeg.json")
    back = gabic.results.load(path)
    assert back["meta"] == result["meta"] and back["results"] == result["results"]
    assert [p.name for p in path.parent.iterdir()] == ["jpeg.json"]  # no temporary file left


def _failing_job(codec_name, path, quality):
    raise CodecError(f"{codec_name}: simulated failure on {path}")


def test_failed_job_stops_the_sweep(folder, monkeypatch):
    """A job that fails in a worker process raises its error here (the pool is forked or spawned
    after the patch, and pickles the job function by its module-level name)."""
    monkeypatch.setattr(evaluate_mod, "_run_job", _failing_job)
    with pytest.raises(CodecError, match="simulated failure"):
        evaluate_codec("jpeg", folder, qualities=[10, 20, 30], workers=2, progress=False)


@pytest.fixture()
def no_work(monkeypatch):
    """Fail the test if any (image, quality) job starts."""

    def forbidden(*args, **kwargs):
        raise AssertionError("a job started before the input was checked")

    monkeypatch.setattr(evaluate_mod, "_run_job", forbidden)


@pytest.mark.usefixtures("no_work")
class TestBadInputRaisesBeforeWork:
    def test_missing_folder(self, tmp_path):
        with pytest.raises(DataError, match="no such folder"):
            evaluate_codec("jpeg", tmp_path / "nope", progress=False)

    def test_empty_folder(self, tmp_path):
        with pytest.raises(DataError, match="no images"):
            evaluate_codec("jpeg", tmp_path, progress=False)

    def test_unreadable_image(self, folder):
        (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
        with pytest.raises(ImageError, match="broken.png"):
            evaluate_codec("jpeg", folder, workers=2, progress=False)

    def test_unknown_codec(self, folder):
        with pytest.raises(CodecError, match="unknown codec"):
            evaluate_codec("jpeg3000", folder, progress=False)

    @pytest.mark.parametrize("qualities", [[50, 0], [50, 100], [], [20, 20]])
    def test_bad_qualities(self, folder, qualities):
        with pytest.raises(CodecError, match="jpeg"):
            evaluate_codec("jpeg", folder, qualities=qualities, progress=False)

    def test_unavailable_codec(self, folder, monkeypatch):
        monkeypatch.setattr(evaluate_mod, "get_codec", lambda name: BPG())
        monkeypatch.setattr(shutil, "which", lambda exe: None)
        with pytest.raises(CodecError, match="bpgenc not found on PATH"):
            evaluate_codec("bpg", folder, progress=False)

    def test_bad_workers(self, folder):
        with pytest.raises(ValueError, match="workers"):
            evaluate_codec("jpeg", folder, workers=0, progress=False)


def test_jpeg_matches_compressai_bench_per_image(tmp_path):
    """CompressAI's own bench (which made the published jpeg.json) gives the same numbers."""
    from compressai.utils.bench.codecs import JPEG as CompressAIJPEG

    photos = tmp_path / "photos"
    photos.mkdir()
    for p in samples():
        if p.suffix == ".png":  # no EXIF to strip: the bytes must match exactly
            shutil.copy(p, photos / p.name)
    ours = evaluate_codec("jpeg", photos, qualities=[30, 75], workers=1, progress=False)
    theirs = CompressAIJPEG(None)
    for name, values in ours["per_image"].items():
        for i, q in enumerate(ours["meta"]["quality"]):
            ref = theirs.run(str(photos / name), q, metrics=["psnr-rgb", "ms-ssim-rgb"])
            assert values["bpp"][i] == pytest.approx(ref["bpp"], rel=1e-12), (name, q)
            assert values["psnr-rgb"][i] == pytest.approx(ref["psnr-rgb"], abs=1e-6), (name, q)
            assert values["ms-ssim-rgb"][i] == pytest.approx(ref["ms-ssim-rgb"], abs=1e-5), (name, q)
