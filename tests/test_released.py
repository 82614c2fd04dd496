"""The released checkpoints: the catalogue's facts, and download / verify / lock against a local
HTTP server (no network): an archive with checkpoints of the right layout, a file with a wrong
key, a truncated file, a file that changes between two downloads, a file that would run code,
an interrupted download that resumes, a server that is not there."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
import torch

from gabic import released
from gabic.checkpoints import load_checkpoint
from gabic.errors import CheckpointError, GabicError
from gabic.models import build_model
from tests.conftest import run_cli, small_model


# --------------------------------------------------------------------------------------------- files
def _released_bytes(model, legacy: bool = True) -> bytes:
    """A checkpoint as the original training scripts save it: epoch, state_dict (``module.``
    prefixes and the legacy entropy-bottleneck names when ``legacy``), losses."""
    sd = dict(model.state_dict())
    if legacy:
        renamed = {}
        for k, v in sd.items():
            k = k.replace("entropy_bottleneck.matrices.", "entropy_bottleneck._matrix")
            k = k.replace("entropy_bottleneck.biases.", "entropy_bottleneck._bias")
            k = k.replace("entropy_bottleneck.factors.", "entropy_bottleneck._factor")
            renamed[f"module.{k}"] = v
        sd = renamed
    buf = io.BytesIO()
    torch.save({"epoch": 7, "state_dict": sd, "loss": torch.tensor(1.5)}, buf)
    return buf.getvalue()


def _manifest(model) -> dict:
    return {"keys": [[k, list(v.shape)] for k, v in model.state_dict().items()]}


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def files(server):
    """Stand-in files on the server and a catalogue pointing at them; returns (catalogue, bytes)."""
    q1, q2 = _released_bytes(small_model("gabic", 0)), _released_bytes(small_model("gabic", 1))
    wacnn = _released_bytes(small_model("wacnn", 0))
    bad = dict(small_model("wacnn", 0).state_dict())
    bad["g_s.8.bias_renamed"] = bad.pop("g_s.8.bias")
    buf = io.BytesIO()
    torch.save({"state_dict": bad}, buf)
    server.files.update(
        {
            "/model_results.zip": _zip(
                {
                    "model_results/wgraph_k9/q1-model.pth.tar": q1,
                    "model_results/wgraph_k9/q2-model.pth.tar": q2,
                    "x/inference.json": b"{}",
                }
            ),
            "/cnn_0018": wacnn,
            "/wrong_key": buf.getvalue(),
            "/truncated": wacnn[: len(wacnn) // 3],
            "/changing": wacnn,
        }
    )
    base = server.base
    single = {"architecture": "wacnn", "source": "stf", "manifest": "small-wacnn"}
    data = {
        "sources": {
            "gabic": {"repository": "https://github.com/EIDOSLAB/GABIC"},
            "stf": {"repository": "https://github.com/Googolxx/STF"},
        },
        "archives": {"results": {"file": "model_results.zip", "url": f"{base}/model_results.zip"}},
        "manifests": {"small-gabic": _manifest(small_model("gabic")), "small-wacnn": _manifest(small_model("wacnn"))},
        "checkpoints": [
            *(
                {
                    "name": f"gabic_{q}",
                    "architecture": "gabic",
                    "lambda": lmbda,
                    "quality": q,
                    "source": "gabic",
                    "archive": "results",
                    "member": f"{q}-model.pth.tar",
                    "file": f"gabic_{q}.pth.tar",
                    "aliases": [f"{q}-model.pth.tar"],
                    "manifest": "small-gabic",
                }
                for q, lmbda in (("q1", 0.0067), ("q2", 0.013))
            ),
            {"name": "cnn_0018", "lambda": 0.0018, "url": f"{base}/cnn_0018", **single},
            {"name": "wrong_key", "lambda": None, "url": f"{base}/wrong_key", **single},
            {"name": "truncated", "lambda": None, "url": f"{base}/truncated", **single},
            {"name": "changing", "lambda": None, "url": f"{base}/changing", **single},
        ],
        "missing": ["nothing else"],
    }
    return data, {"q1": q1, "q2": q2, "cnn_0018": wacnn}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lock(dest: Path) -> dict:
    return json.loads((dest / released.LOCK_NAME).read_text())["files"]


# --------------------------------------------------------------------------------------------- download
def test_an_archive_is_fetched_once_unpacked_verified_and_locked(server, files, tmp_path):
    data, raw = files
    dest = tmp_path / "checkpoints"
    paths = released.download(["gabic"], dest, quiet=True, data=data)
    assert paths == [dest / "gabic_q1.pth.tar", dest / "gabic_q2.pth.tar"]
    assert [p for p, _ in server.requests] == ["/model_results.zip"], "one archive, fetched once"
    assert sorted(p.name for p in dest.iterdir()) == ["checkpoints.lock", "gabic_q1.pth.tar", "gabic_q2.pth.tar"], (
        "no archive, no staging"
    )
    lock = _lock(dest)
    assert lock["gabic_q1"]["sha256"] == _sha(raw["q1"]) and lock["gabic_q2"]["sha256"] == _sha(raw["q2"])
    assert lock["gabic_q1"]["bytes"] == len(raw["q1"]) and lock["gabic_q1"]["file"] == "gabic_q1.pth.tar"
    model = load_checkpoint(paths[1], device="cpu")  # module. prefixes and legacy names: loads as gabic's
    assert torch.equal(model.state_dict()["g_a.0.weight"], small_model("gabic", 1).state_dict()["g_a.0.weight"])

    server.requests.clear()
    seen = []
    again = released.download(["gabic_q1"], dest, quiet=True, data=data, on_file=lambda e, p, w: seen.append((e.name, w)))
    assert again == [dest / "gabic_q1.pth.tar"] and seen == [("gabic_q1", "verified")] and server.requests == [], "nothing fetched"


def test_a_file_with_a_wrong_key_is_not_put_in_place(server, files, tmp_path):
    data, _ = files
    dest = tmp_path / "checkpoints"
    with pytest.raises(
        CheckpointError, match=r"wrong_key .*not the released wacnn checkpoint: 1 key\(s\) missing \(first: g_s.8.bias\)"
    ):
        released.download(["wrong_key"], dest, quiet=True, data=data)
    assert not dest.exists(), "nothing written"


def test_a_truncated_file_is_not_put_in_place(server, files, tmp_path):
    data, _ = files
    dest = tmp_path / "checkpoints"
    dest.mkdir()
    with pytest.raises(CheckpointError, match=r"^truncated: the file downloaded from http://127\.0\.0\.1:\d+/truncated"):
        released.download(["truncated"], dest, quiet=True, data=data)
    assert list(dest.iterdir()) == []


def test_a_file_that_changed_upstream_is_refused_unless_accepted(server, files, tmp_path):
    data, raw = files
    dest = tmp_path / "checkpoints"
    released.download(["changing"], dest, quiet=True, data=data)
    first = _lock(dest)["changing"]["sha256"]
    assert first == _sha(raw["cnn_0018"])
    server.files["/changing"] = _released_bytes(small_model("wacnn", 5))  # the authors replaced it
    (dest / "changing.pth.tar").unlink()
    with pytest.raises(CheckpointError, match="the file downloaded now differs from the one recorded in .*it changed upstream"):
        released.download(["changing"], dest, quiet=True, data=data)
    assert not (dest / "changing.pth.tar").exists() and _lock(dest)["changing"]["sha256"] == first
    released.download(["changing"], dest, quiet=True, data=data, accept_changed=True)
    assert _lock(dest)["changing"]["sha256"] == _sha(server.files["/changing"]) != first


def test_a_file_changed_on_disk_is_found_at_every_use(server, files, tmp_path):
    data, _ = files
    dest = tmp_path / "checkpoints"
    (path,) = released.download(["cnn_0018"], dest, quiet=True, data=data)
    assert released.released_checkpoints(["wacnn"], dest, data)[0][1] == path
    torch.save({"state_dict": small_model("wacnn", 3).state_dict()}, path)  # same layout, other weights
    with pytest.raises(CheckpointError, match=r"cnn_0018: .*cnn_0018.pth.tar differs from the one recorded in .*checkpoints.lock"):
        released.released_checkpoints(["wacnn"], dest, data)
    with pytest.raises(CheckpointError, match="it changed on disk"):
        released.download(["cnn_0018"], dest, quiet=True, data=data)


def test_a_download_that_would_run_code_is_refused(server, files, tmp_path):
    from tests.test_checkpoint_safety import _WritesAFile

    data, _ = files
    target = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"state_dict": small_model("wacnn").state_dict(), "x": _WritesAFile(target)}, buf)
    server.files["/changing"] = buf.getvalue()
    dest = tmp_path / "checkpoints"
    with pytest.raises(CheckpointError, match="posix.system"):
        released.download(["changing"], dest, quiet=True, data=data)
    assert not target.exists() and not dest.exists()


def test_an_interrupted_download_resumes(server, files, tmp_path):
    data, raw = files
    dest = tmp_path / "checkpoints"
    server.cut.add("/cnn_0018")
    with pytest.raises(GabicError, match="downloading cnn_0018.pth.tar from .* failed"):
        released.download(["cnn_0018"], dest, quiet=True, data=data)
    partial = list((dest / released.STAGING).iterdir())
    assert len(partial) == 1 and partial[0].name.endswith(".part")
    kept = partial[0].stat().st_size
    assert 0 < kept < len(raw["cnn_0018"])
    released.download(["cnn_0018"], dest, quiet=True, data=data)
    assert server.requests[-1] == ("/cnn_0018", f"bytes={kept}-"), "the second download asks for the rest only"
    assert (dest / "cnn_0018.pth.tar").read_bytes() == raw["cnn_0018"] and not (dest / released.STAGING).exists()


def test_offline_says_so_in_one_line(files, tmp_path):
    import socket

    data, _ = files
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data["checkpoints"][2]["url"] = f"http://127.0.0.1:{port}/cnn_0018"
    with pytest.raises(
        GabicError, match=rf"^offline: cannot reach 127\.0\.0\.1:{port} to download cnn_0018\.pth\.tar \(ConnectionError\)$"
    ):
        released.download(["cnn_0018"], tmp_path / "checkpoints", quiet=True, data=data)
    assert not (tmp_path / "checkpoints").exists()


def test_unknown_names_are_listed(files):
    data, _ = files
    with pytest.raises(GabicError, match="no released checkpoint 'q9': give all, an architecture or a name .*gabic_q1"):
        released.entries(["q9"], data)
    assert [e.name for e in released.entries(["wacnn", "cnn_0018"], data)] == ["cnn_0018", "wrong_key", "truncated", "changing"]


# --------------------------------------------------------------------------------------------- use
def test_files_dropped_by_hand_are_checked_recorded_and_evaluated(files, tmp_path, sample_paths):
    from gabic.images import as_rgb, center_crop

    data, raw = files
    dest = tmp_path / "checkpoints"
    dest.mkdir()
    (dest / "q1-model.pth.tar").write_bytes(raw["q1"])  # as the authors distribute it
    (dest / "gabic_q2.pth.tar").write_bytes(raw["q2"])
    images = tmp_path / "images"
    images.mkdir()
    center_crop(as_rgb(sample_paths[0]), 64).save(images / "a.png")
    curves = released.evaluate_released("gabic", images, dest, device="cpu", progress=False, data=data)
    (curve,) = curves
    assert curve["name"] == "GABIC (released)"
    by_release = dict(zip(curve["meta"]["release"], curve["meta"]["lambda"], strict=True))
    assert by_release == {"gabic_q1": 0.0067, "gabic_q2": 0.013}, "each point labelled with its entry and the source's lambda"
    assert curve["meta"]["source"] == "released checkpoints: https://github.com/EIDOSLAB/GABIC"
    lock = _lock(dest)
    assert lock["gabic_q1"]["sha256"] == _sha(raw["q1"]) and lock["gabic_q1"]["file"] == "q1-model.pth.tar"
    assert lock["gabic_q1"]["source"] == "found in the folder (not downloaded by gabic)"
    with pytest.raises(
        GabicError, match=r"no released checkpoint of stf in .*: download them first \(gabic checkpoints download stf\)"
    ):
        released.evaluate_released(
            "stf", images, dest, data={**data, "checkpoints": [*data["checkpoints"], {"name": "s", "architecture": "stf"}]}
        )


def test_the_commands(server, files, tmp_path, capsys, use_catalogue, sample_paths):
    from gabic.images import as_rgb, center_crop
    from gabic.results import load

    data, _ = files
    use_catalogue(data)
    dest = tmp_path / "checkpoints"
    code, out, err = run_cli(capsys, "checkpoints", "download", "cnn_0018", "--dest", dest, "--quiet")
    assert code == 0, err
    assert f"cnn_0018: {dest / 'cnn_0018.pth.tar'} (downloaded and verified)" in out
    code, out, err = run_cli(capsys, "checkpoints", "list", "--dest", dest)
    assert code == 0 and "cnn_0018.pth.tar (locked)" in out and "gabic_q1" in out and "nothing else" in out
    images = tmp_path / "images"
    images.mkdir()
    center_crop(as_rgb(sample_paths[1]), 64).save(images / "b.png")
    results = tmp_path / "r.json"
    code, out, err = run_cli(
        capsys, "evaluate", "--released", "wacnn", "--dest", dest, "--dataset", images, "--out", results, "--device", "cpu"
    )
    assert code == 0, err
    curve = load(results)
    assert curve["meta"]["release"] == ["cnn_0018"] and curve["meta"]["lambda"] == [0.0018]
    code, _, err = run_cli(capsys, "evaluate", "--out", results)
    assert code == 1 and "give checkpoint files or folders, or --released NAME" in err
    code, _, err = run_cli(capsys, "checkpoints", "download", "wrong_key", "--dest", dest, "--quiet")
    (line,) = [line for line in err.splitlines() if line.startswith("gabic: error:")]
    assert code == 1 and "key(s) missing (first: g_s.8.bias)" in line and "Traceback" not in err


# --------------------------------------------------------------------------------------------- the catalogue
def test_the_shipped_catalogue_records_its_sources():
    """The authors' checkpoints of GABIC, WACNN and STF (the CompressAI zoo's: tests/test_released_zoo.py)."""
    data = released.catalogue()
    names = [e.name for e in released.entries(data=data)]
    assert len(names) == len(set(names)) == 28
    all_entries = released.entries(["gabic", "wacnn", "stf"], data)
    assert len(all_entries) == 14
    # the lambdas the sources state: GABIC's src/evaluate/eval.py (q1..q4) and the STF README's table
    assert {e.quality: e.lmbda for e in all_entries if e.architecture == "gabic"} == {
        "q1": 0.0067,
        "q2": 0.013,
        "q3": 0.025,
        "q4": 0.0483,
    }
    assert {e.name: e.lmbda for e in all_entries if e.architecture == "wacnn"} == {
        "cnn_0018": 0.0018,
        "cnn_0035": 0.0035,
        "cnn_0067": 0.0067,
        "cnn_025": 0.025,
    }
    assert sorted(e.lmbda for e in all_entries if e.architecture == "stf") == [0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483]
    for e in all_entries:
        assert e.source in data["sources"] and e.manifest == e.architecture
        if e.archive is None:
            assert e.url.startswith("https://drive.google.com/uc?id=") and e.page.startswith("https://drive.google.com/file/d/")
        else:
            assert data["archives"][e.archive]["file"] == "model_results.zip" and e.member == f"{e.quality}-model.pth.tar"
    assert any("0.013" in m and "0.0483" in m and "WACNN" in m for m in released.missing(data))


@pytest.mark.slow
def test_the_manifests_are_the_layout_of_the_paper_models():
    """gabic's paper-size models (built here) have exactly the keys and shapes of the shipped
    manifests (copied from the reference state_dicts of the released files), and a changed key or
    shape is named."""
    for family in ("gabic", "wacnn", "stf"):
        model = build_model({"model": family})
        model.update(force=True)
        sd = dict(model.state_dict())
        assert released.manifest_problems(sd, family) == [], family
    sd = dict(build_model({"model": "wacnn"}).state_dict())  # no update(): the coder tables are empty, as in a training save
    sd["g_a.0.weight"] = torch.zeros(192, 3, 3, 3)
    sd["module.extra"] = torch.zeros(1)
    problems = released.manifest_problems(sd, "wacnn")
    assert problems == [
        "1 unexpected key(s) (first: extra)",
        "1 shape(s) differ (first: g_a.0.weight is [192, 3, 3, 3], the manifest says [192, 3, 5, 5])",
    ]


def test_label_released_marks_only_the_released_points(files, tmp_path, sample_paths):
    from gabic.checkpoints import save_checkpoint
    from gabic.evaluate import evaluate_checkpoints
    from gabic.images import as_rgb, center_crop

    data, raw = files
    dest = tmp_path / "checkpoints"
    dest.mkdir()
    (dest / "gabic_q1.pth.tar").write_bytes(raw["q1"])
    own = save_checkpoint(small_model("gabic", 4), tmp_path / "own.pth.tar", lmbda=0.02)
    image = tmp_path / "a.png"
    center_crop(as_rgb(sample_paths[2]), 64).save(image)
    (curve,) = evaluate_checkpoints([own, dest / "gabic_q1.pth.tar"], [image], device="cpu", progress=False)
    before = dict(zip(curve["meta"]["checkpoint"], curve["meta"]["lambda"], strict=True))
    assert before == {str(own): 0.02, str(dest / "gabic_q1.pth.tar"): None}, "the released file says no lambda"
    (labelled,) = released.label_released([curve], dest, data)
    rows = dict(
        zip(labelled["meta"]["checkpoint"], zip(labelled["meta"]["release"], labelled["meta"]["lambda"], strict=True), strict=True)
    )
    assert rows == {str(own): (None, 0.02), str(dest / "gabic_q1.pth.tar"): ("gabic_q1", 0.0067)}
    assert not labelled["name"].endswith("(released)"), "a curve mixing own and released points keeps its name"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["checkpoints"], 2, "ACTION"),
        (["checkpoints", "download", "q9", "--dest", "{dest}"], 1, "no released checkpoint 'q9'"),
        (["checkpoints", "download", "cnn_0018", "--dest", "{file}"], 1, "exists and is not a folder"),
        (["evaluate", "--released", "q9", "--dest", "{dest}", "--out", "{dest}/r.json"], 1, "no released checkpoint 'q9'"),
        (["evaluate", "--released", "gabic", "--dest", "{dest}", "--out", "{dest}/r.json"], 1, "download them first"),
        (["checkpoints", "list", "--dest", "{badlock}"], 1, "not a readable checkpoint lock"),
    ],
)
def test_bad_input_to_the_commands(tmp_path, capsys, argv, code, message):
    file = tmp_path / "a-file"
    file.write_text("x")
    badlock = tmp_path / "bad"
    badlock.mkdir()
    (badlock / released.LOCK_NAME).write_text("{not json")
    (badlock / "cnn_0018.pth.tar").write_bytes(b"x")
    argv = [a.format(dest=tmp_path / "dest", file=file, badlock=badlock) for a in argv]
    got, _, err = run_cli(capsys, *argv)
    assert got == code and message in err and "Traceback" not in err
    assert not (tmp_path / "dest").exists(), "nothing written"


def test_an_archive_without_the_member_leaves_nothing(server, files, tmp_path):
    data, _ = files
    extra = dict(data["checkpoints"][0], name="gabic_q3", quality="q3", member="q3-model.pth.tar", file="gabic_q3.pth.tar", aliases=[])
    data["checkpoints"].append(extra)
    dest = tmp_path / "checkpoints"
    with pytest.raises(GabicError, match=r"model_results.zip: holds no q3-model.pth.tar \(it has 3 files\)"):
        released.download(["gabic_q3"], dest, quiet=True, data=data)
    assert not dest.exists(), "the archive is not kept, no folder left"
