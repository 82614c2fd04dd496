"""The three models: the released state_dict manifests, the CompressAI contract."""

from __future__ import annotations

import json
import re

import pytest
import torch

from gabic import GABIC, STF, WACNN, build_model
from tests.conftest import DATA, small_model

MANIFEST = json.loads((DATA / "state_dicts.json").read_text())
LEGACY = re.compile(r"(entropy_bottleneck)\._(matrix|bias|factor)(\d+)$")
NAMES = {"matrix": "matrices", "bias": "biases", "factor": "factors"}
#: The CDF buffers' sizes depend on the weights at update() time (see the manifest's note).
CDF_BUFFERS = re.compile(r".*\.(_quantized_cdf|_offset|_cdf_length)$")


def _current(key: str) -> str:
    return LEGACY.sub(lambda m: f"{m.group(1)}.{NAMES[m.group(2)]}.{m.group(3)}", key)


@pytest.mark.parametrize("name,cls", [("gabic", GABIC), ("wacnn", WACNN), ("stf", STF)])
def test_state_dict_equals_released_manifest(name, cls):
    torch.manual_seed(0)
    model = cls()
    model.update(force=True)
    ours = {k: (list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()}
    ref = {_current(k): (shape, dtype) for k, shape, dtype in MANIFEST[name]["keys"]}
    assert sorted(ours) == sorted(ref)
    for key, (shape, dtype) in ref.items():
        if CDF_BUFFERS.match(key):
            assert ours[key][0][0] == shape[0] and ours[key][1] == dtype, key
        else:
            assert ours[key] == (shape, dtype), key
    assert sum(p.numel() for p in model.parameters()) == MANIFEST[name]["num_params"]


@pytest.mark.parametrize("name", ["gabic", "wacnn", "stf"])
def test_forward_contract(name):
    model = small_model(name)
    x = torch.rand(2, 3, 64, 128)
    out = model(x)
    assert out["x_hat"].shape == x.shape
    y, z = out["likelihoods"]["y"], out["likelihoods"]["z"]
    assert y.shape[-2:] == (4, 8) and z.shape[-2:] == (1, 2)
    assert (y > 0).all() and (y <= 1).all() and (z > 0).all() and (z <= 1).all()
    assert model.aux_loss().dim() == 0
    assert torch.isfinite(model.aux_loss())


@pytest.mark.parametrize("name", ["gabic", "wacnn", "stf"])
def test_training_step_has_gradients(name):
    model = small_model(name).train()
    out = model(torch.rand(1, 3, 64, 64))
    bpp = sum(-torch.log2(v).sum() for v in out["likelihoods"].values()) / (64 * 64)
    loss = 0.01 * 255**2 * torch.mean((out["x_hat"] - 0) ** 2) + bpp
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if not n.endswith("quantiles")]
    assert all(g is not None for g in grads)
    assert all(torch.isfinite(g).all() for g in grads)


def test_config_rebuilds_the_same_model():
    model = GABIC(N=32, M=40, num_slices=4, knn=5, heads=4, use_edge_attr=False, dissimilarity=True)
    clone = build_model(model.config)
    assert clone.config == model.config
    assert {k: v.shape for k, v in clone.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_gabic_paper_defaults():
    cfg = GABIC().config
    assert cfg == {
        "model": "gabic",
        "N": 192,
        "M": 320,
        "num_slices": 10,
        "knn": 9,
        "heads": 8,
        "use_edge_attr": True,
        "dissimilarity": False,
        "backend": "dense",
        "knn_rule": "published",
    }


def test_set_knn_and_backend_change_every_block():
    model = small_model("gabic")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref_y, ref = model.g_a(x), model(x)["x_hat"]
        model.set_backend("pyg")
        assert all(m.backend == "pyg" for m in model.graph_attentions().values())
        # Same graphs, float rounding only; the untrained synthesis amplifies it (outputs ~1e5).
        torch.testing.assert_close(model.g_a(x), ref_y, atol=1e-5 * ref_y.abs().max().item(), rtol=0)
        out = model(x)["x_hat"]
        assert (out - ref).abs().max() <= 1e-3 * ref.abs().max()
        model.set_knn(3)
        assert all(m.knn == 3 for m in model.graph_attentions().values())
        assert not torch.allclose(model(x)["x_hat"], ref)
    with pytest.raises(ValueError, match="knn must be an integer in 1..15"):
        model.set_knn(16)  # the 1/16 blocks have windows of 4x4 = 16 nodes
    assert all(m.knn == 3 for m in model.graph_attentions().values()) and model.config["knn"] == 3
    with pytest.raises(ValueError, match=r"knn must be an integer in 1..15 \(windows of 16 nodes\), got 0"):
        GABIC(N=32, M=40, num_slices=4, knn=0)


def test_bad_sizes_are_refused_clearly():
    with pytest.raises(ValueError, match="num_slices"):
        WACNN(N=32, M=42, num_slices=4)
    with pytest.raises(ValueError, match="unknown model 'foo'"):
        build_model({"model": "foo"})
    with pytest.raises(ValueError, match="bad hyper-parameters for wacnn"):
        build_model({"model": "wacnn", "knn": 3})
    with pytest.raises(ValueError, match="multiples of 8"):
        small_model("wacnn")(torch.rand(1, 3, 48, 48))
