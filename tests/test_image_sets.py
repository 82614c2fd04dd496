"""Curves know their image set: fingerprints, known sets, labels in figures, BD across sets."""

from __future__ import annotations

import hashlib
import math
import shutil

import matplotlib
import pytest
from PIL import Image

from gabic.data import KODAK_NAMES, kodak_hashes, samples
from gabic.evaluate import evaluate_codec
from gabic.image_sets import KODAK, SAMPLES, describe, fingerprint, image_set, image_set_of, known_image_set, same_image_set
from gabic.plots import bd_table, load_curves, rd_figure
from gabic.results import load
from tests.conftest import run_cli

matplotlib.use("Agg")


def _curve(name: str, meta: dict, scale: float = 1.0) -> dict:
    """A made-up 5-point curve (PSNR rising with rate) with the given meta."""
    bpp = [0.2, 0.4, 0.6, 0.9, 1.3]
    return {"name": name, "results": {"bpp": [b * scale for b in bpp], "psnr-rgb": [28.0, 30.5, 32.0, 33.6, 35.1]}, "meta": meta}


def test_fingerprint_is_of_sorted_names_and_sizes():
    expected = "sha256:" + hashlib.sha256(b"a.png 10x20\nb.png 30x40\n").hexdigest()
    assert fingerprint([("b.png", 30, 40), ("a.png", 10, 20)]) == expected
    assert fingerprint([("a.png", 10, 20)]) != fingerprint([("a.png", 20, 10)])


def test_kodak_is_recognised_by_its_names_and_sizes(tmp_path):
    table = kodak_hashes()
    for name in KODAK_NAMES:  # stand-ins of the right names and sizes (the fingerprint reads no pixel)
        Image.new("RGB", table[name][1]).save(tmp_path / name)
    found = image_set(sorted(tmp_path.iterdir()), name="data/kodak")
    assert found == known_image_set(KODAK) and found["name"] == KODAK and found["num_images"] == 24
    (tmp_path / "kodim01.png").unlink()
    assert image_set(sorted(tmp_path.iterdir()))["name"] == str(tmp_path)


def test_the_samples_are_a_known_set(tmp_path):
    assert image_set(samples()) == known_image_set(SAMPLES)
    for p in samples()[:2]:
        shutil.copy(p, tmp_path / p.name)
    two = image_set(sorted(tmp_path.iterdir()), name="mine")
    assert two["name"] == "mine" and two["num_images"] == 2 and not same_image_set(two, known_image_set(SAMPLES))


def test_image_set_of_results_old_and_new():
    assert image_set_of(load("jpeg")) == known_image_set(KODAK)  # published: meta.dataset "kodak"
    assert image_set_of(_curve("old", {"dataset": "gabic samples", "num_images": 4})) == known_image_set(SAMPLES)
    assert image_set_of(_curve("x", {"dataset": "folder", "num_images": 3})) == {
        "name": "folder",
        "num_images": 3,
        "fingerprint": None,
    }
    recorded = {"name": "mine", "num_images": 2, "fingerprint": "sha256:00"}
    assert image_set_of(_curve("x", {"dataset": "kodak", "image_set": recorded})) == recorded
    assert image_set_of(_curve("x", {})) is None


def test_same_image_set():
    kodak, samples_set = known_image_set(KODAK), known_image_set(SAMPLES)
    assert same_image_set(kodak, kodak) and not same_image_set(kodak, samples_set)
    assert same_image_set({"name": "kodak", "num_images": 24, "fingerprint": None}, {"name": "Kodak", "num_images": 24}) is True
    assert same_image_set({"name": "a", "num_images": 2}, {"name": "a", "num_images": 3}) is False
    assert same_image_set(kodak, None) is None
    assert describe(kodak) == "Kodak" and describe(samples_set) == "4 sample photos"
    assert describe({"name": "data/mine", "num_images": 1}) == "1 image of mine"


def test_evaluations_record_their_image_set(sample_paths, tmp_path):
    for p in sample_paths[:2]:
        shutil.copy(p, tmp_path / p.name)
    result = evaluate_codec("jpeg", dataset=tmp_path, qualities=[50], workers=1, progress=False)
    assert result["meta"]["image_set"] == image_set(sorted(tmp_path.iterdir()), name=str(tmp_path))
    on_samples = evaluate_codec("jpeg", qualities=[50], workers=1, progress=False)
    assert on_samples["meta"]["image_set"] == known_image_set(SAMPLES)


@pytest.fixture(scope="module")
def mixed():
    """A JPEG curve measured on the sample photos beside published Kodak curves."""
    measured = _curve("jpeg", {"kind": "measured", "dataset": "gabic samples", "num_images": 4}, scale=1.6)
    return [measured, "jpeg", "bpg444", "vtm"]


def test_figures_label_the_curves_of_the_minority_set(mixed):
    labels = [c.label for c in load_curves(mixed)]
    assert labels[0] == "JPEG (4 sample photos)" and not any("sample" in label for label in labels[1:])
    fig = rd_figure(mixed, "psnr-rgb")
    legend = [t.get_text() for t in (fig.axes[0].get_legend() or fig.legends[0]).get_texts()]
    assert "JPEG (4 sample photos)" in legend
    assert fig.axes[0].get_title() == ""  # no single image set
    same = [_curve("a", {"dataset": "gabic samples", "num_images": 4}), _curve("b", {"dataset": "gabic samples"}, scale=1.2)]
    assert [c.label for c in load_curves(same)] == ["a", "b"]
    assert rd_figure(same).axes[0].get_title() == "4 sample photos"


def test_bd_across_image_sets_is_na_unless_asked(mixed):
    table = bd_table(mixed, "bpg444")
    row = table.loc["JPEG (4 sample photos)"]
    assert math.isnan(row["BD-rate (%)"]) and "measured on 4 sample photos, the anchor on Kodak" in row["note"]
    assert not math.isnan(table.loc["JPEG (published)", "BD-rate (%)"])  # the published JPEG is on Kodak
    forced = bd_table(mixed, "bpg444", across_image_sets=True)
    assert not math.isnan(forced.loc["JPEG (4 sample photos)", "BD-rate (%)"])
    assert forced.loc["JPEG (4 sample photos)", "note"] == "across image sets: 4 sample photos vs Kodak"


def test_rd_command_reports_bd_across_sets_as_na(capsys, tmp_path, mixed):
    from gabic.results import save

    measured = save(mixed[0], tmp_path / "jpeg_samples.json")
    code, _, err = run_cli(capsys, "rd", measured, "bpg444", "--anchor", "bpg444", "--out", tmp_path / "fig", "--formats", "png")
    assert code == 0, err
    table = (tmp_path / "fig" / "bd_psnr-rgb.md").read_text()
    assert "n/a" in table and "measured on 4 sample photos" in table
    code, _, _ = run_cli(
        capsys, "rd", measured, "bpg444", "--anchor", "bpg444", "--out", tmp_path / "fig2", "--formats", "png", "--across-image-sets"
    )
    assert code == 0 and "across image sets" in (tmp_path / "fig2" / "bd_psnr-rgb.md").read_text()
