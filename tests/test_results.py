"""RD result files (gabic.results) and the published anchor curves shipped in gabic/published/.

The expected numbers below were typed in from the reference source files (CompressAI's
results/image/kodak/*.json, the STF repository's results/*.json, the digitised GABIC figure),
so the tests check the conversion without needing those files.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from pathlib import Path

import pytest

from gabic import results
from gabic.errors import ResultsError

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "gabic" / "published"

#: Curves the issue asks for by name; the folder holds these and more.
EXPECTED = {
    "jpeg",
    "jpeg2000",
    "webp",
    "bpg444",
    "vtm",
    "hm",
    "av1",
    "stf_mse",
    "stf_ms-ssim",
    "wacnn_mse",
    "wacnn_ms-ssim",
    "gabic_icip2024_digitized",
    "gabic_icip2024_digitized_zou2022",
    "gabic_icip2024_digitized_vtm",
    "compressai_mbt2018-mean_mse_cuda",
    "compressai_cheng2020-attn_mse_cpu",
    "paper_elic2022_mse",
}


def small_result(n: int = 3) -> dict:
    return {
        "name": "test",
        "description": "a small curve",
        "results": {
            "bpp": [0.1 * (i + 1) for i in range(n)],
            "psnr-rgb": [30.0 + i for i in range(n)],
            "ms-ssim-rgb": [0.9 + 0.01 * i for i in range(n)],
        },
        "meta": {"kind": "measured", "lambda": [0.0018 * 2**i for i in range(n)]},
    }


# --- the published curves --------------------------------------------------------------------


def test_published_dir_is_package_data():
    assert Path(str(results.published_dir())) == PUBLISHED


def test_list_published_names_every_file():
    names = results.list_published()
    assert names == sorted(p.stem for p in PUBLISHED.glob("*.json"))
    assert EXPECTED <= set(names)
    assert len(names) == 63
    # CompressAI's 8-bit "ms-ssim" runs are MSE models under a wrong name: left out.
    assert not [n for n in names if n.endswith("_ms-ssim_ans_cuda_8bit")]


@pytest.mark.parametrize("name", sorted(p.stem for p in PUBLISHED.glob("*.json")))
def test_every_published_file_loads_and_is_complete(name):
    result = results.load(name)
    assert result == results.load(PUBLISHED / f"{name}.json")
    assert isinstance(result["name"], str) and result["name"]
    assert isinstance(result["description"], str) and result["description"]
    meta = result["meta"]
    assert meta["kind"] == "published"
    assert meta["dataset"] == "kodak"
    assert isinstance(meta["digitized"], bool)
    assert meta["source"] and meta["notes"]
    res = result["results"]
    assert set(res) <= {"bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb", "encoding_time", "decoding_time"}
    # The file is exactly what save() writes, so a re-run of the converter makes no diff.
    assert (PUBLISHED / f"{name}.json").read_text(encoding="utf-8") == results.dumps(result)


def test_no_two_published_curves_hold_the_same_points():
    seen = {}
    for name in results.list_published():
        r = results.load(name)["results"]
        key = json.dumps({k: v for k, v in r.items() if not k.endswith("_time")}, sort_keys=True)
        assert key not in seen, f"{name} and {seen.get(key)}"
        seen[key] = name


def test_readme_lists_every_published_file():
    readme = (PUBLISHED / "README.md").read_text(encoding="utf-8")
    missing = [name for name in results.list_published() if f"{name}.json" not in readme]
    assert not missing
    listed = re.findall(r"^\| `([^`]+)\.json` \|", readme, flags=re.MULTILINE)
    assert len(listed) == len(set(listed)) == len(results.list_published())
    assert set(listed) == set(results.list_published())


def test_jpeg_numbers_equal_the_source():
    r = results.load("jpeg")["results"]
    assert len(r["bpp"]) == 19
    assert (r["bpp"][0], r["bpp"][-1]) == (0.22115325927734372, 3.4013400607638893)
    assert (r["psnr-rgb"][0], r["psnr-rgb"][-1]) == (23.779894921045457, 40.556657112988766)
    assert (r["ms-ssim-rgb"][0], r["ms-ssim-rgb"][-1]) == (0.8030709524949392, 0.9956368828813235)
    assert r["encoding_time"][0] == 0.011053820451100668
    assert r["decoding_time"][-1] == 0.006741454203923543


def test_stf_and_wacnn_numbers_equal_the_source():
    stf = results.load("stf_mse")
    assert stf["results"] == {
        "bpp": [0.124, 0.191, 0.298, 0.441, 0.651, 0.903],
        "psnr-rgb": [29.14, 30.50, 32.15, 33.97, 35.82, 37.72],
    }
    # A single timing for the whole curve stays in meta; no per-point list is invented.
    assert stf["meta"]["timing_seconds_per_image"]["encoding_time"] == 0.15
    stf_ms = results.load("stf_ms-ssim")["results"]
    assert stf_ms == {
        "bpp": [0.109, 0.168, 0.236, 0.340, 0.483, 0.664],
        "ms-ssim-db-rgb": [13.63, 14.96, 16.49, 18.17, 20.19, 21.50],
    }
    wacnn = results.load("wacnn_mse")["results"]
    assert (wacnn["bpp"][0], wacnn["bpp"][-1], wacnn["psnr-rgb"][0], wacnn["psnr-rgb"][-1]) == (0.127, 0.895, 29.22, 37.72)


def test_codec_and_zoo_numbers_equal_the_source():
    vtm = results.load("vtm")["results"]
    assert (vtm["bpp"][0], vtm["psnr-rgb"][-1], vtm["ms-ssim-rgb"][0]) == (0.04824490017361111, 46.59176008512777, 0.8606081604957581)
    bpg = results.load("bpg444")["results"]
    assert (bpg["bpp"][0], bpg["bpp"][-1], bpg["psnr-rgb"][-1]) == (0.06776767306857638, 4.703142801920573, 47.63251604714922)
    zoo = results.load("compressai_mbt2018-mean_mse_cuda")
    assert (zoo["results"]["bpp"][0], zoo["results"]["psnr-rgb"][-1]) == (0.12392171223958336, 40.633312667109166)
    assert zoo["meta"]["quality"] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_gabic_figure_is_marked_digitised():
    gabic = results.load("gabic_icip2024_digitized")
    assert gabic["meta"]["digitized"] is True
    for text in (gabic["name"], gabic["description"]):
        assert "digitised from the GABIC paper figure, not published numbers" in text
    assert gabic["results"] == {"bpp": [0.310, 0.451, 0.636, 0.881], "psnr-rgb": [32.39, 34.17, 35.94, 37.76]}
    assert gabic["meta"]["lambda"] == [0.0067, 0.013, 0.025, 0.0483]
    zou = results.load("gabic_icip2024_digitized_zou2022")
    assert zou["meta"]["digitized"] is True and "not published numbers" in zou["name"]
    assert zou["results"]["bpp"] == [0.300, 0.448, 0.650, 0.900]
    vtm = results.load("gabic_icip2024_digitized_vtm")
    assert vtm["meta"]["digitized"] is True and len(vtm["results"]["bpp"]) == 3
    # Measured codec runs are not digitised.
    assert results.load("jpeg")["meta"]["digitized"] is False


# --- points ------------------------------------------------------------------------------------


def test_points_sorts_pairs_together():
    # JPEG2000's source lists its points from the highest rate down.
    pairs = results.points(results.load("jpeg2000"))
    assert pairs[0] == (0.12579854329427081, 26.440382666052425)
    assert pairs[-1] == (2.3973227606879344, 39.792000990389106)
    assert [b for b, _ in pairs] == sorted(b for b, _ in pairs)
    result = small_result()
    result["results"] = {"bpp": [0.5, 0.1, 0.3], "psnr-rgb": [35.0, 28.0, 31.0]}
    assert results.points(result) == [(0.1, 28.0), (0.3, 31.0), (0.5, 35.0)]


def test_points_ms_ssim_db_from_linear():
    pairs = results.points(results.load("jpeg"), "ms-ssim-db-rgb")
    assert pairs[0][1] == pytest.approx(-10 * math.log10(1 - 0.8030709524949392))
    assert results.points(results.load("stf_ms-ssim"), "ms-ssim-db-rgb")[0] == (0.109, 13.63)


def test_points_unknown_metric():
    with pytest.raises(ResultsError, match=r"STF \(mse\): no metric 'ms-ssim-rgb' \(it has 'psnr-rgb'\)"):
        results.points(results.load("stf_mse"), "ms-ssim-rgb")


# --- save / load -------------------------------------------------------------------------------


def test_round_trip(tmp_path):
    result = small_result()
    result["per_image"] = {"kodim01": {"bpp": [0.1, 0.2, 0.3]}}
    path = results.save(result, tmp_path / "sub" / "run.json")
    assert path == tmp_path / "sub" / "run.json"
    assert results.load(path) == result
    assert results.load(str(path)) == result
    assert json.loads(path.read_text()) == result
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]


def test_save_writes_numbers_exactly_and_plain_types(tmp_path):
    np = pytest.importorskip("numpy")
    result = small_result()
    result["results"]["bpp"] = [0.1 + 0.2, 1 / 3, 2.0]
    result["meta"]["lambda"] = np.array([0.0018, 0.0035, 0.0067])
    result["meta"]["out"] = tmp_path
    path = results.save(result, tmp_path / "run.json")
    loaded = results.load(path)
    assert loaded["results"]["bpp"] == [0.1 + 0.2, 1 / 3, 2.0]
    assert loaded["meta"]["lambda"] == [0.0018, 0.0035, 0.0067]
    assert loaded["meta"]["out"] == str(tmp_path)


def test_load_by_path_of_published_file():
    assert results.load(PUBLISHED / "jpeg.json")["name"] == "JPEG"


# --- bad input -----------------------------------------------------------------------------------


def write(tmp_path: Path, obj, name: str = "bad.json") -> Path:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def bad(**results_) -> dict:
    return {"name": "x", "results": results_}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", r"bad\.json: not JSON \(.* at line 1 column 2\)"),
        ("", r"bad\.json: not JSON"),
        ([1, 2], r"bad\.json: not a results file \(expected a JSON object, got a list\)"),
        ({"foo": 1}, r"bad\.json: not in the results schema: no 'results' object \(top-level keys: 'foo'\)"),
        ({"results": [1, 2]}, r"'results' must be an object of lists, got a list"),
        (bad(psnr=[30.0]), r"'results' has no 'bpp' list \(keys: 'psnr'\)"),
        (bad(bpp=[0.1]), r"'results' has no quality metric such as 'psnr-rgb'"),
        (
            bad(bpp=[0.1, 0.2], **{"psnr-rgb": [30.0]}),
            r"lists of unequal length: results\['psnr-rgb'\] has 1 values, results\['bpp'\] has 2",
        ),
        (bad(bpp=["0.1", "0.2"], **{"psnr-rgb": [30.0, 31.0]}), r"results\['bpp'\]\[0\] is a string '0\.1', expected a number"),
        (bad(bpp=[0.1, None], **{"psnr-rgb": [30.0, 31.0]}), r"results\['bpp'\]\[1\] is null None, expected a number"),
        (bad(bpp=[0.1, True], **{"psnr-rgb": [30.0, 31.0]}), r"results\['bpp'\]\[1\] is a boolean True, expected a number"),
        (bad(bpp=[0.1], **{"psnr-rgb": 30.0}), r"results\['psnr-rgb'\] must be a list \(one entry per RD point\), got a number"),
        (bad(bpp=[], **{"psnr-rgb": []}), r"results\['bpp'\] is empty"),
        (bad(bpp=[-0.1], **{"psnr-rgb": [30.0]}), r"results\['bpp'\] has a negative value"),
        ('{"results": {"bpp": [0.1], "psnr-rgb": [NaN]}}', r"results\['psnr-rgb'\]\[0\] is nan, expected a finite number"),
        ({"name": 3, "results": {"bpp": [0.1], "psnr-rgb": [30.0]}}, r"'name' must be a string, got a number"),
        ({"results": {"bpp": [0.1], "psnr-rgb": [30.0]}, "meta": [1]}, r"'meta' must be an object, got a list"),
        (
            {"results": {"bpp": [0.1], "psnr-rgb": [30.0]}, "meta": {"lambda": [1, 2]}},
            r"meta\['lambda'\] has 2 values but there are 1 RD points",
        ),
        ({"results": {"bpp": [0.1], "psnr-rgb": [30.0]}, "per_image": []}, r"'per_image' must be an object, got a list"),
    ],
)
def test_bad_files_raise_one_clear_line(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(ResultsError, match=message) as info:
        results.load(path)
    text = str(info.value)
    assert text.startswith(str(path) + ": ")
    assert "\n" not in text


def test_not_utf8(tmp_path):
    path = tmp_path / "image.json"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ResultsError, match=r"image\.json: not a results file \(not UTF-8 text, so not JSON\)"):
        results.load(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ResultsError, match=r"nothere\.json: no such results file$"):
        results.load(tmp_path / "nothere.json")
    with pytest.raises(ResultsError, match="is a folder, not a results file"):
        results.load(tmp_path)


def test_missing_file_named_like_a_published_curve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ResultsError, match=r"jpeg\.json: no such results file \(for the published curve, load\('jpeg'\)\)"):
        results.load("jpeg.json")


def test_unknown_name_lists_close_names():
    with pytest.raises(ResultsError, match=r"'jpg': no such results file or published curve .*; close names: jpeg") as info:
        results.load("jpg")
    assert "\n" not in str(info.value)
    with pytest.raises(ResultsError, match=r"close names: .*stf_mse"):
        results.load("stf-mse")
    with pytest.raises(ResultsError, match=r"'zzzz': no such results file or published curve"):
        results.load("zzzz")


def test_published_dir_missing(tmp_path, monkeypatch):
    """An installation without the package data says so (the wheel test checks it is there)."""
    monkeypatch.setattr(results.resources, "files", lambda package: tmp_path / package)
    with pytest.raises(ResultsError, match=r"published curves are missing from this gabic installation"):
        results.published_dir()
    with pytest.raises(ResultsError, match="missing from this gabic installation"):
        results.load("jpeg")


# --- nothing half-written ------------------------------------------------------------------------


def test_invalid_result_is_not_saved(tmp_path):
    path = tmp_path / "run.json"
    results.save(small_result(), path)
    before = path.read_bytes()
    broken = small_result()
    broken["results"]["psnr-rgb"].pop()
    with pytest.raises(ResultsError, match=r"run\.json: lists of unequal length"):
        results.save(broken, path)
    with pytest.raises(ResultsError, match=r"new\.json: not in the results schema"):
        results.save({"foo": 1}, tmp_path / "new.json")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_unserialisable_meta_is_not_saved(tmp_path):
    result = small_result()
    result["meta"]["model"] = object()
    with pytest.raises(ResultsError, match=r"run\.json: cannot write as JSON \(object is not JSON serialisable\)"):
        results.save(result, tmp_path / "run.json")
    result["meta"]["model"] = float("nan")
    with pytest.raises(ResultsError, match="cannot write as JSON"):
        results.save(result, tmp_path / "run.json")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    results.save(small_result(), path)
    before = path.read_bytes()

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    changed = small_result(4)
    with pytest.raises(ResultsError, match=r"run\.json: cannot write the results file \(No space left on device\)"):
        results.save(changed, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


# --- the converter (tools/convert_published.py) on a small made-up source folder ---------------


@pytest.fixture(scope="module")
def converter():
    spec = importlib.util.spec_from_file_location("convert_published", ROOT / "tools" / "convert_published.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_converter_maps_keys_and_keeps_numbers(tmp_path, converter):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    source = {
        "name": "Codec",
        "source": "somewhere @ abc",
        "dataset": "kodak",
        "metric_notes": "notes",
        "results": {"bpp": [0.30, 0.1], "psnr": [33.10, 29.0], "ms-ssim": [0.97, 0.9], "ms-ssim-db": [15.2, 10.0]},
        "timing_seconds_per_image": {"encoding_time": [1.5, 1.0], "decoding_time": [0.5, 0.25]},
    }
    write(src, source, "codec.json")
    write(src, {**source, "results": {"bpp": [0.1], "psnr": [30.0]}, "timing_seconds_per_image": 0.2}, "one.json")
    figure = {
        "name": "GABIC figure - DIGITIZED",
        "source": "figure.png",
        "dataset": "kodak",
        "metric_notes": "read off a figure",
        "results": {
            "GABIC (legend 'Our')": {"lambda": [0.0067, 0.013], "bpp": [0.31, 0.45], "psnr": [32.39, 34.17]},
            "Zou2022 (legend)": {"bpp": [0.3], "psnr": [32.28]},
        },
    }
    write(src, figure, "gabic_icip2024_digitized.json")
    dest.mkdir()
    write(dest, {"old": 1}, "stale.json")
    assert converter.main([str(src), str(dest), "--clean"]) == 0
    assert sorted(p.name for p in dest.iterdir()) == [
        "codec.json",
        "gabic_icip2024_digitized.json",
        "gabic_icip2024_digitized_zou2022.json",
        "one.json",
    ]
    codec = results.load(dest / "codec.json")
    assert codec["results"] == {
        "bpp": [0.30, 0.1],
        "psnr-rgb": [33.10, 29.0],
        "ms-ssim-rgb": [0.97, 0.9],
        "ms-ssim-db-rgb": [15.2, 10.0],
        "encoding_time": [1.5, 1.0],
        "decoding_time": [0.5, 0.25],
    }
    assert codec["meta"]["digitized"] is False and codec["meta"]["source"] == "somewhere @ abc"
    one = results.load(dest / "one.json")
    assert "encoding_time" not in one["results"] and one["meta"]["timing_seconds_per_image"] == 0.2
    gabic = results.load(dest / "gabic_icip2024_digitized.json")
    assert gabic["meta"]["digitized"] is True and gabic["meta"]["lambda"] == [0.0067, 0.013]
    assert "not published numbers" in gabic["name"] and "not published numbers" in gabic["description"]
    assert results.load(dest / "gabic_icip2024_digitized_zou2022.json")["results"]["psnr-rgb"] == [32.28]


def test_converter_refuses_duplicate_curves(tmp_path, converter, capsys):
    src = tmp_path / "src"
    src.mkdir()
    source = {"name": "x", "source": "s", "dataset": "kodak", "metric_notes": "", "results": {"bpp": [0.1], "psnr": [30.0]}}
    write(src, source, "a_mse.json")
    write(src, source, "a_ms-ssim.json")
    assert converter.main([str(src), str(tmp_path / "dest")]) == 1
    assert "hold the same RD points" in capsys.readouterr().err
    assert not (tmp_path / "dest").exists()


def test_converter_stops_on_what_it_does_not_know(tmp_path, converter, capsys):
    src = tmp_path / "src"
    src.mkdir()
    write(
        src, {"name": "x", "source": "s", "dataset": "kodak", "metric_notes": "", "results": {"bpp": [0.1], "lpips": [0.2]}}, "x.json"
    )
    assert converter.main([str(src), str(tmp_path / "dest")]) == 1
    assert "unknown metric 'lpips'" in capsys.readouterr().err
    assert not (tmp_path / "dest").exists()
