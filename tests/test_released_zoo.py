"""The CompressAI zoo's checkpoints in the catalogue of released checkpoints: a plain HTTP(S)
download from a local server (no network) of zoo-style files (small random-weight models saved
as bare state dicts with the zoo's older key names, named ``<name>-<q>-<first 8 hex of their
SHA-256>.pth.tar``), the name's digits checked, evaluation through the one measurement path, and
the shipped entries held against ``compressai.zoo``."""

from __future__ import annotations

import hashlib
import io
import json
import socket
from pathlib import Path

import pytest
import torch

from gabic import released
from gabic.checkpoints import load_checkpoint
from gabic.errors import CheckpointError, GabicError
from gabic.measurement import measure
from gabic.models import Mbt2018Mean, build_model
from tests.conftest import run_cli, small_model

ZOO = "compressai"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zoo_bytes(model) -> bytes:
    """A bare state dict as the zoo's files hold it, with the zoo's older key names
    (``entropy_bottleneck._matrices.K``, ``.downsample.``) that its loader renames."""
    sd = {}
    for k, v in model.state_dict().items():
        for now, then in (("matrices", "_matrices"), ("biases", "_biases"), ("factors", "_factors")):
            k = k.replace(f"entropy_bottleneck.{now}.", f"entropy_bottleneck.{then}.")
        sd[k.replace(".skip.", ".downsample.")] = v
    buf = io.BytesIO()
    torch.save(sd, buf)
    return buf.getvalue()


def _manifest(model) -> dict:
    return {"keys": [[k, list(v.shape)] for k, v in model.state_dict().items()]}


def _wider_mbt(seed: int = 2):
    """A second size of the small mbt2018-mean (as the zoo's qualities 5-8 are wider than 1-4)."""
    torch.manual_seed(seed)
    model = Mbt2018Mean(N=32, M=64)
    model.update(force=True)
    return model.eval()


def _entry(base: str, arch: str, q: int, data: bytes, manifest: str, prefix: str | None = None) -> dict:
    published = f"{arch}-{q}-{prefix or _sha(data)[:8]}.pth.tar"
    return {
        "name": f"{arch}_q{q}",
        "architecture": arch,
        "lambda": {1: 0.0018, 2: 0.0035, 3: 0.0067}[q],
        "quality": f"q{q}",
        "source": ZOO,
        "url": f"{base}/models/v1/{published}",
        "download": "http",
        "sha256_in_name": True,
        "file": f"{arch}_q{q}.pth.tar",
        "aliases": [published],
        "manifest": manifest,
    }


@pytest.fixture
def zoo(server):
    """Zoo-style files on the server and a catalogue of the test's own pointing at them: mbt2018-mean
    q1, q2 (N=32, M=48) and q3 (N=32, M=64), cheng2020-anchor q1 (N=32). Returns (catalogue, {name: bytes})."""
    raw = {
        "mbt2018-mean_q1": _zoo_bytes(small_model("mbt2018-mean", 0)),
        "mbt2018-mean_q2": _zoo_bytes(small_model("mbt2018-mean", 1)),
        "mbt2018-mean_q3": _zoo_bytes(_wider_mbt()),
        "cheng2020-anchor_q1": _zoo_bytes(small_model("cheng2020-anchor", 0)),
    }
    families = {
        "mbt2018-mean_q1": "small-mbt-48",
        "mbt2018-mean_q2": "small-mbt-48",
        "mbt2018-mean_q3": "small-mbt-64",
        "cheng2020-anchor_q1": "small-cheng",
    }
    checkpoints = []
    for name, data in raw.items():
        arch, q = name.rsplit("_q", 1)
        entry = _entry(server.base, arch, int(q), data, families[name])
        server.files[entry["url"].removeprefix(server.base)] = data
        checkpoints.append(entry)
    catalogue = {
        "sources": {ZOO: {"repository": "https://github.com/InterDigitalInc/CompressAI"}},
        "manifests": {
            "small-mbt-48": _manifest(small_model("mbt2018-mean")),
            "small-mbt-64": _manifest(_wider_mbt()),
            "small-cheng": _manifest(small_model("cheng2020-anchor")),
        },
        "checkpoints": checkpoints,
        "missing": [],
    }
    return catalogue, raw


def _lock(dest: Path) -> dict:
    return json.loads((dest / released.LOCK_NAME).read_text())["files"]


def _image(tmp_path: Path, sample_paths, index: int = 0) -> Path:
    from gabic.images import as_rgb, center_crop

    images = tmp_path / "images"
    images.mkdir(exist_ok=True)
    path = images / f"{index}.png"
    center_crop(as_rgb(sample_paths[index]), 64).save(path)
    return path


# --------------------------------------------------------------------------------------------- download
def test_a_zoo_file_is_downloaded_verified_and_locked(server, zoo, tmp_path):
    data, raw = zoo
    dest = tmp_path / "checkpoints"
    paths = released.download(["mbt2018-mean"], dest, quiet=True, data=data)
    assert paths == [dest / f"mbt2018-mean_q{q}.pth.tar" for q in (1, 2, 3)]
    urls = [e["url"] for e in data["checkpoints"][:3]]
    assert [(server.base + p, r) for p, r in server.requests] == [(u, None) for u in urls], "one plain GET each, no range"
    assert sorted(p.name for p in dest.iterdir()) == ["checkpoints.lock", *(p.name for p in paths)], "no staging, no .part"
    lock = _lock(dest)
    for q, path in zip((1, 2, 3), paths, strict=True):
        name = f"mbt2018-mean_q{q}"
        assert path.read_bytes() == raw[name]
        assert lock[name]["sha256"] == _sha(raw[name]) and lock[name]["bytes"] == len(raw[name])
        assert lock[name]["source"] == urls[q - 1] and lock[name]["file"] == path.name
    model = load_checkpoint(paths[2], device="cpu")  # the zoo's older names: loads as gabic's mbt2018-mean
    assert model.config == {"model": "mbt2018-mean", "N": 32, "M": 64}
    assert torch.equal(model.state_dict()["entropy_bottleneck.matrices.0"], _wider_mbt().state_dict()["entropy_bottleneck.matrices.0"])

    server.requests.clear()
    seen = []
    again = released.download(["mbt2018-mean_q1"], dest, quiet=True, data=data, on_file=lambda e, p, w: seen.append((e.name, w)))
    assert again == paths[:1] and seen == [("mbt2018-mean_q1", "verified")] and server.requests == [], "nothing fetched"


def test_a_file_that_is_not_the_one_its_name_says_is_refused_leaving_nothing(server, zoo, tmp_path):
    data, _ = zoo
    impostor = _zoo_bytes(small_model("mbt2018-mean", 7))  # right layout, other weights
    digest = _sha(impostor)
    claimed = "0123abcd" if not digest.startswith("0123abcd") else "fedc4321"
    bad = _entry(server.base, "mbt2018-mean", 2, impostor, "small-mbt-48", prefix=claimed)
    bad["name"], bad["file"] = "impostor", "impostor.pth.tar"
    server.files[bad["url"].removeprefix(server.base)] = impostor
    data["checkpoints"].append(bad)
    message = (
        rf"^impostor \(the file downloaded from {bad['url']}\): its SHA-256 is {digest}, "
        rf"but its published name mbt2018-mean-2-{claimed}\.pth\.tar says it starts with {claimed}: not the published file$"
    )

    dest = tmp_path / "fresh"
    with pytest.raises(CheckpointError, match=message):
        released.download(["impostor"], dest, quiet=True, data=data)
    assert not dest.exists(), "no folder, no partial file, no lock"

    dest = tmp_path / "checkpoints"
    released.download(["mbt2018-mean_q1"], dest, quiet=True, data=data)
    lock_before = (dest / released.LOCK_NAME).read_bytes()
    for accept in (False, True):  # accepting a changed file does not take one that is not the one named
        with pytest.raises(CheckpointError, match=message):
            released.download(["impostor"], dest, quiet=True, data=data, accept_changed=accept)
        assert sorted(p.name for p in dest.iterdir()) == ["checkpoints.lock", "mbt2018-mean_q1.pth.tar"]
        assert (dest / released.LOCK_NAME).read_bytes() == lock_before, "no lock entry"

    (dest / f"mbt2018-mean-2-{claimed}.pth.tar").write_bytes(impostor)  # dropped by hand under the zoo's name
    with pytest.raises(CheckpointError, match=rf"^impostor \(.*mbt2018-mean-2-{claimed}\.pth\.tar\): its SHA-256 is {digest}"):
        released.released_checkpoints(["impostor"], dest, data)
    assert "impostor" not in _lock(dest)


def test_a_zoo_file_dropped_by_hand_under_its_own_name_is_checked_and_recorded(zoo, tmp_path):
    data, raw = zoo
    dest = tmp_path / "checkpoints"
    dest.mkdir()
    published = data["checkpoints"][3]["aliases"][0]  # as torch.hub caches it
    (dest / published).write_bytes(raw["cheng2020-anchor_q1"])
    ((entry, path),) = released.released_checkpoints(["cheng2020-anchor"], dest, data)
    assert entry.name == "cheng2020-anchor_q1" and path == dest / published
    assert _lock(dest)["cheng2020-anchor_q1"]["sha256"] == _sha(raw["cheng2020-anchor_q1"])


def test_an_interrupted_zoo_download_resumes(server, zoo, tmp_path):
    data, raw = zoo
    dest = tmp_path / "checkpoints"
    url = data["checkpoints"][0]["url"].removeprefix(server.base)
    server.cut.add(url)
    size = len(raw["mbt2018-mean_q1"])
    with pytest.raises(
        GabicError,
        match=rf"downloading mbt2018-mean_q1\.pth\.tar from .* failed: the connection closed after \d+ of {size} bytes; "
        "the next download resumes",
    ):
        released.download(["mbt2018-mean_q1"], dest, quiet=True, data=data)
    (partial,) = (dest / released.STAGING).iterdir()
    assert partial.name == "mbt2018-mean_q1.pth.tar.part" and 0 < partial.stat().st_size < size
    assert not (dest / released.LOCK_NAME).exists()
    kept = partial.stat().st_size
    released.download(["mbt2018-mean_q1"], dest, quiet=True, data=data)
    assert server.requests[-1] == (url, f"bytes={kept}-"), "the second download asks for the rest only"
    assert (dest / "mbt2018-mean_q1.pth.tar").read_bytes() == raw["mbt2018-mean_q1"] and not (dest / released.STAGING).exists()


def test_a_zoo_download_that_fails_says_why_in_one_line(server, zoo, tmp_path):
    data, _ = zoo
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data["checkpoints"][0]["url"] = f"http://127.0.0.1:{port}/models/v1/mbt2018-mean-1-00000000.pth.tar"
    dest = tmp_path / "checkpoints"
    offline = rf"^offline: cannot reach 127\.0\.0\.1:{port} to download mbt2018-mean_q1\.pth\.tar \(ConnectionRefusedError\)$"
    with pytest.raises(GabicError, match=offline):
        released.download(["mbt2018-mean_q1"], dest, quiet=True, data=data)
    data["checkpoints"][0]["url"] = f"{server.base}/models/v1/mbt2018-mean-1-00000000.pth.tar"  # not on the server
    with pytest.raises(GabicError, match=r"^downloading mbt2018-mean_q1\.pth\.tar from http://.* failed: HTTP 404 "):
        released.download(["mbt2018-mean_q1"], dest, quiet=True, data=data)
    assert not dest.exists()


def test_the_zoo_s_older_key_names_match_the_manifest_and_no_buffer_is_optional():
    model = small_model("cheng2020-anchor")
    manifests = {"manifests": {"small-cheng": _manifest(model)}}
    old = torch.load(io.BytesIO(_zoo_bytes(model)), weights_only=True)
    assert any(".downsample." in k for k in old) and any("._matrices." in k for k in old)
    assert released.manifest_problems(old, "small-cheng", manifests) == []
    fresh = dict(Mbt2018Mean(N=32, M=48).state_dict())  # a training save: the coder's tables empty
    assert released.manifest_problems(fresh, "small-mbt", {"manifests": {"small-mbt": _manifest(small_model("mbt2018-mean"))}}) == []
    del old["gaussian_conditional.scale_table"]
    old["g_a.0.downsample.weight"] = torch.zeros(32, 3, 3, 3)
    assert released.manifest_problems(old, "small-cheng", manifests) == [
        "1 key(s) missing (first: gaussian_conditional.scale_table)",
        "1 shape(s) differ (first: g_a.0.downsample.weight is [32, 3, 3, 3], the manifest says [32, 3, 1, 1])",
    ], "reported under the file's own names"


# --------------------------------------------------------------------------------------------- use
def test_evaluated_zoo_files_give_the_points_of_the_one_measurement_path(server, zoo, tmp_path, sample_paths):
    data, _ = zoo
    dest = tmp_path / "checkpoints"
    released.download(["mbt2018-mean", "cheng2020-anchor"], dest, quiet=True, data=data)
    image = _image(tmp_path, sample_paths)
    curves = released.evaluate_released(["mbt2018-mean", "cheng2020-anchor"], [image], dest, device="cpu", progress=False, data=data)
    assert [c["name"] for c in curves] == ["mbt2018-mean (released)", "cheng2020-anchor (released)"], "one curve per architecture"
    for curve in curves:
        meta, results = curve["meta"], curve["results"]
        assert meta["kind"] == "measured" and meta["source"] == "released checkpoints: https://github.com/InterDigitalInc/CompressAI"
        assert results["bpp"] == sorted(results["bpp"])
        for i, (release, checkpoint) in enumerate(zip(meta["release"], meta["checkpoint"], strict=True)):
            assert Path(checkpoint) == dest / f"{release}.pth.tar"
            entry = next(e for e in data["checkpoints"] if e["name"] == release)
            assert meta["quality_label"][i] == entry["quality"] and meta["lambda"][i] == entry["lambda"]
            m = measure(load_checkpoint(checkpoint, device="cpu"), image).record()
            for key in ("bpp", "bpp-likelihoods", "psnr-rgb"):
                assert results[key][i] == m[key], (release, key)
                assert curve["per_image"][image.name][key][i] == m[key], (release, key)
    mbt, cheng = curves
    assert sorted(mbt["meta"]["release"]) == ["mbt2018-mean_q1", "mbt2018-mean_q2", "mbt2018-mean_q3"]
    configs = dict(zip(mbt["meta"]["release"], mbt["meta"]["config"], strict=True))
    assert configs == {
        "mbt2018-mean_q1": {"model": "mbt2018-mean", "N": 32, "M": 48},
        "mbt2018-mean_q2": {"model": "mbt2018-mean", "N": 32, "M": 48},
        "mbt2018-mean_q3": {"model": "mbt2018-mean", "N": 32, "M": 64},
    }, "two sizes, one curve, each point's configuration"
    assert mbt["description"].startswith("mbt2018-mean (released) on ") and "3 checkpoints at 2 configurations" in mbt["description"]
    assert cheng["meta"]["release"] == ["cheng2020-anchor_q1"] and cheng["meta"]["config"] == {"model": "cheng2020-anchor", "N": 32}

    from gabic.evaluate import evaluate_checkpoints

    files = [dest / "mbt2018-mean_q3.pth.tar", dest / "mbt2018-mean_q1.pth.tar"]
    apart = evaluate_checkpoints(files, [image], device="cpu", progress=False)
    assert len(apart) == 2, "two sizes: two curves, as evaluate_checkpoints keeps them"
    (labelled,) = released.label_released(apart, dest, data)
    assert labelled["name"] == "mbt2018-mean (released)"
    assert sorted(labelled["meta"]["release"]) == ["mbt2018-mean_q1", "mbt2018-mean_q3"]
    same = [mbt["meta"]["release"].index(r) for r in labelled["meta"]["release"]]
    assert labelled["results"]["bpp"] == [mbt["results"]["bpp"][i] for i in same]


def test_the_commands_with_zoo_entries(server, zoo, tmp_path, capsys, use_catalogue, sample_paths):
    from gabic.results import load

    data, _ = zoo
    use_catalogue(data)
    dest = tmp_path / "checkpoints"
    code, out, err = run_cli(capsys, "checkpoints", "download", "mbt2018-mean", "cheng2020-anchor_q1", "--dest", dest, "--quiet")
    assert code == 0, err
    assert f"mbt2018-mean_q3: {dest / 'mbt2018-mean_q3.pth.tar'} (downloaded and verified)" in out and "4 checkpoint(s)" in out
    code, out, err = run_cli(capsys, "checkpoints", "list", "--dest", dest)
    assert code == 0 and "mbt2018-mean_q2.pth.tar (locked)" in out and "cheng2020-anchor_q1.pth.tar (locked)" in out
    image = _image(tmp_path, sample_paths, 1)
    results = tmp_path / "r.json"
    argv = ["--released", "mbt2018-mean", "cheng2020-anchor", "--dest", dest, "--dataset", image.parent, "--out", results]
    code, out, err = run_cli(capsys, "evaluate", *argv, "--device", "cpu")
    assert code == 0, err
    mbt, cheng = load(tmp_path / "r_mbt2018-mean.json"), load(tmp_path / "r_cheng2020-anchor.json")
    assert sorted(mbt["meta"]["quality_label"]) == ["q1", "q2", "q3"] and mbt["meta"]["kind"] == "measured"
    assert cheng["meta"]["release"] == ["cheng2020-anchor_q1"] and cheng["meta"]["lambda"] == [0.0018]


# --------------------------------------------------------------------------------------------- the shipped catalogue
def test_the_shipped_zoo_entries_are_compressai_s():
    from compressai.zoo.image import cfgs, model_urls

    data = released.catalogue()
    zoo = released.entries(["mbt2018-mean", "cheng2020-anchor"], data)
    assert len(zoo) == 14 and all(e.source == ZOO for e in zoo)
    # the lambdas of the zoo page's table (docs/source/zoo.rst), MSE, quality 1..8
    lambdas = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.013, 5: 0.025, 6: 0.0483, 7: 0.0932, 8: 0.18}
    manifests = json.loads((Path(released.__file__).parents[1] / "catalogue" / "manifests.json").read_text())["families"]
    for arch, qualities in (("mbt2018-mean", range(1, 9)), ("cheng2020-anchor", range(1, 7))):
        entries = [e for e in zoo if e.architecture == arch]
        assert [e.name for e in entries] == [f"{arch}_q{q}" for q in qualities]
        assert sorted(model_urls[arch]["mse"]) == list(qualities)
        for e, q in zip(entries, qualities, strict=True):
            url = model_urls[arch]["mse"][q]
            assert e.url == url and url.startswith("https://compressai.s3.amazonaws.com/models/v1/")
            assert e.download == "http" and e.sha256_in_name and e.published_name == url.rsplit("/", 1)[1]
            assert e.sha256_prefix == e.published_name.removesuffix(".pth.tar").rsplit("-", 1)[1] and len(e.sha256_prefix) == 8
            assert e.quality == f"q{q}" and e.lmbda == lambdas[q] and e.file == f"{e.name}.pth.tar"
            assert e.aliases == (e.published_name,)
            sizes = cfgs[arch][q]
            assert e.manifest == f"{arch}_N{sizes[0]}" + (f"_M{sizes[1]}" if len(sizes) > 1 else "")
            head = dict(manifests[e.manifest]["keys"])
            assert head["g_a.0.weight" if arch == "mbt2018-mean" else "g_a.0.conv1.weight"][0] == sizes[0]
    assert data["sources"][ZOO]["repository"] == "https://github.com/InterDigitalInc/CompressAI"
    assert data["sources"][ZOO]["page"] == "https://interdigitalinc.github.io/CompressAI/zoo.html"
    assert any("cheng2020-anchor" in m and "7 and 8" in m for m in released.missing(data))


@pytest.mark.slow
def test_the_zoo_manifests_are_gabic_s_and_compressai_s_models():
    """The shipped zoo families are the state dicts of gabic's classes at the zoo's sizes, whose
    keys and shapes are CompressAI's own classes' (which its zoo loads strictly)."""
    import compressai.models as cm
    from compressai.zoo.image import cfgs

    theirs = {"mbt2018-mean": cm.MeanScaleHyperprior, "cheng2020-anchor": cm.Cheng2020Anchor}
    for arch in theirs:
        for sizes in sorted(set(cfgs[arch].values())):
            family = f"{arch}_N{sizes[0]}" + (f"_M{sizes[1]}" if len(sizes) > 1 else "")
            ours = build_model({"model": arch, **dict(zip(("N", "M"), sizes, strict=False))})
            ours.update(force=True)
            assert released.manifest_problems(dict(ours.state_dict()), family) == [], family
            other = theirs[arch](*sizes)
            other.update(force=True)
            assert released.manifest_problems(dict(other.state_dict()), family) == [], family
