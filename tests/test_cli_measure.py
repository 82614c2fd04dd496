"""The measuring commands as a user runs them: codecs, evaluate-codec, data kodak."""

from __future__ import annotations

import json
import shutil

import matplotlib
import pytest
from PIL import Image

import gabic.results
from tests.conftest import run_cli as run

matplotlib.use("Agg")


@pytest.fixture
def photos(sample_paths, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in sample_paths[:2]:
        shutil.copy(p, folder / p.name)
    return folder


def test_codecs_lists_every_codec(capsys):
    code, out, _ = run(capsys, "codecs")
    assert code == 0
    for name in ("jpeg", "webp", "avif", "heif", "jpeg2000", "jpegxl", "bpg"):
        assert any(line.split()[0] == name for line in out.splitlines()), name
    assert "HEVC intra" in out


def test_jpeg_sweep_plots_with_the_published_anchor(capsys, tmp_path, photos):
    out = tmp_path / "jpeg.json"
    code, text, _ = run(
        capsys, "evaluate-codec", "jpeg", "--dataset", photos, "--qualities", "20", "75", "--out", out, "--workers", "1"
    )
    assert code == 0 and "jpeg q=20" in text
    measured = gabic.results.load(out)
    anchor = gabic.results.load("jpeg")
    assert set(measured["results"]) >= {"bpp", "psnr-rgb", "ms-ssim-rgb"}
    assert measured["meta"]["quality"] == [20, 75] and measured["meta"]["num_images"] == 2
    # Same schema and units as CompressAI's published JPEG: both go on one pair of axes.
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    for result in (measured, anchor):
        bpp, psnr = zip(*gabic.results.points(result, "psnr-rgb"), strict=True)
        ax.plot(bpp, psnr, marker="o", label=result["name"])
    assert len(ax.lines) == 2
    lo, hi = ax.get_xlim()
    assert lo < min(measured["results"]["bpp"]) and hi > max(anchor["results"]["bpp"][:-1])
    fig.savefig(tmp_path / "rd.png")
    plt.close(fig)
    assert (tmp_path / "rd.png").stat().st_size > 1000


def _fails(capsys, *argv, expect):
    code, _, err = run(capsys, *argv)
    lines = [line for line in err.strip().splitlines() if "error:" in line]  # progress bars and notes aside
    assert code == 1 and len(lines) == 1 and lines[0].startswith("gabic: error: "), err
    assert expect in lines[0], lines[0]


def test_evaluate_codec_bad_inputs(capsys, tmp_path, photos):
    out = tmp_path / "r.json"
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(capsys, "evaluate-codec", "jpeg", "--dataset", empty, "--out", out, expect="empty: no images")
    _fails(capsys, "evaluate-codec", "jpeg", "--dataset", tmp_path / "nowhere", "--out", out, expect="nowhere: no such folder")
    _fails(capsys, "evaluate-codec", "jpg", "--dataset", photos, "--out", out, expect="jpg")
    _fails(capsys, "evaluate-codec", "jpeg", "--dataset", photos, "--qualities", "0", "--out", out, expect="1")
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    _fails(capsys, "evaluate-codec", "jpeg", "--dataset", photos, "--out", out, expect="broken.png")
    assert not out.exists()


def test_results_in_another_schema_are_refused(tmp_path):
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"foo": 1}))
    with pytest.raises(gabic.results.ResultsError, match="other.json"):
        gabic.results.load(bad)


def test_data_kodak_offline_is_one_clear_line(capsys, tmp_path):
    # the discard port on loopback: the connection is refused at once, as when offline
    _fails(capsys, "data", "kodak", "--dest", tmp_path / "kodak", "--url", "http://127.0.0.1:9/", expect="could not reach")
    assert not (tmp_path / "kodak").exists() or not any((tmp_path / "kodak").iterdir())


def test_evaluate_codec_on_small_images_prints_what_it_has(capsys, tmp_path, sample_paths):
    """MS-SSIM is undefined under 161 px a side: the results leave it out, the printout too, exit 0."""
    folder = tmp_path / "small"
    folder.mkdir()
    Image.open(sample_paths[0]).convert("RGB").crop((0, 0, 120, 100)).save(folder / "small.png")
    out = tmp_path / "small.json"
    code, text, err = run(capsys, "evaluate-codec", "jpeg", "--dataset", folder, "--qualities", "30", "--out", out, "--workers", "1")
    assert code == 0, err
    assert "Traceback" not in err and "jpeg q=30:" in text and "MS-SSIM" not in text.split("note:")[0]
    assert "note: MS-SSIM: undefined for images under 161 px a side (small.png)" in text
    saved = gabic.results.load(out)
    assert "ms-ssim-rgb" not in saved["results"] and saved["per_image"]["small.png"]["ms-ssim-rgb"] == [None]
