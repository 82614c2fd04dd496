"""The model contract (gabic.models.base.LearnedCodec): name, config, identity, paper config, upgrades."""

from __future__ import annotations

import pytest
import torch

from gabic.checkpoints import checkpoint_config, load_checkpoint, save_checkpoint
from gabic.models import GABIC, MODELS, STF, WACNN, LearnedCodec, build_model, config_identity
from tests.conftest import small_model

#: The .gabic header's config hash of GABIC(N=32, M=40, num_slices=4) as gabic wrote it before
#: the graph rule was an option (sha256 of the sorted JSON config without the backend, first 8
#: bytes): files written then must still decode with a model of the rule they were made with.
LEGACY_SMALL_GABIC_HASH = "1b55bcccc77de475"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_declares_the_contract(name):
    model = small_model(name)
    assert isinstance(model, LearnedCodec) and model.name == name
    config = model.config
    assert config["model"] == name
    rebuilt = build_model(config)
    assert rebuilt.config == config
    assert rebuilt.identity() == model.identity() == config_identity(config)
    assert len(model.identity()) == 8


def test_identity_leaves_out_what_does_not_change_the_numbers():
    gabic = small_model("gabic").config
    assert config_identity(gabic) == config_identity({**gabic, "backend": "pyg"})
    assert config_identity(gabic) != config_identity({**gabic, "knn": 3})
    assert config_identity(gabic) != config_identity({**gabic, "knn_rule": "self-excluded"})
    stf = small_model("stf").config
    assert config_identity(stf) == config_identity({**stf, "drop_path_rate": 0.0})
    assert config_identity(stf) != config_identity({**stf, "window_size": 8})


def test_identity_of_the_legacy_graph_rule_is_that_of_configs_written_before_it():
    old = {"model": "gabic", "N": 32, "M": 40, "num_slices": 4, "knn": 9, "heads": 8, "use_edge_attr": True, "dissimilarity": False}
    assert config_identity({**old, "backend": "dense"}).hex() == LEGACY_SMALL_GABIC_HASH
    legacy = GABIC(N=32, M=40, num_slices=4, knn_rule="self-excluded")
    assert legacy.identity().hex() == LEGACY_SMALL_GABIC_HASH
    assert GABIC(N=32, M=40, num_slices=4).identity().hex() != LEGACY_SMALL_GABIC_HASH


@pytest.mark.parametrize("cls", [GABIC, WACNN, STF])
def test_paper_config_is_the_published_model(cls):
    paper = cls.paper_config()
    assert paper["model"] == cls.name
    assert build_model(paper).config == {**paper, **({"depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24]} if cls is STF else {})}
    if cls is GABIC:
        assert (paper["knn"], paper["heads"], paper["knn_rule"]) == (9, 8, "published")


def test_gabic_config_is_read_off_its_blocks():
    model = small_model("gabic")
    model.set_knn(5)
    model.set_backend("pyg")
    model.set_knn_rule("self-excluded")
    assert {k: model.config[k] for k in ("knn", "backend", "knn_rule")} == {"knn": 5, "backend": "pyg", "knn_rule": "self-excluded"}
    blocks = list(model.graph_attentions().values())
    assert all(b.knn == 5 and b.backend == "pyg" and b.knn_rule == "self-excluded" for b in blocks)
    blocks[0].knn = 7  # one block changed by hand: the model has no single configuration
    with pytest.raises(ValueError, match="blocks differ"):
        _ = model.config


def test_gabic_arguments_are_checked_by_the_layers_once():
    with pytest.raises(ValueError, match=r"knn must be an integer in 1\.\.15 \(windows of 16 nodes\), got 20"):
        GABIC(N=16, M=16, num_slices=2, knn=20)
    with pytest.raises(ValueError, match="backend must be one of 'dense', 'pyg'"):
        GABIC(N=16, M=16, num_slices=2, backend="sparse")
    model = GABIC(N=16, M=16, num_slices=2)
    with pytest.raises(ValueError, match=r"1\.\.15"):
        model.set_knn(20)  # fits the 8x8 windows, not the 4x4 ones: refused for all, none changed
    assert {b.knn for b in model.graph_attentions().values()} == {9}


def test_gabic_is_not_a_wacnn_and_builds_no_window_attention():
    model = small_model("gabic")
    assert not isinstance(model, WACNN)
    assert not any("attn" in k for k in model.state_dict())


def test_old_gabic_checkpoints_keep_their_graph_rule(tmp_path):
    """A gabic checkpoint written before knn_rule existed has no such entry: it loads with the rule
    it was trained with; a released checkpoint (no config) gets the published one."""
    model = small_model("gabic")
    config = {k: v for k, v in model.config.items() if k != "knn_rule"}
    old = tmp_path / "old.pth.tar"
    torch.save({"state_dict": model.state_dict(), "config": config}, old)
    assert load_checkpoint(old, device="cpu").config["knn_rule"] == "self-excluded"
    assert load_checkpoint(old, device="cpu", knn_rule="published").config["knn_rule"] == "published"
    released = tmp_path / "q1-model.pth.tar"
    torch.save({"state_dict": model.state_dict()}, released)
    assert load_checkpoint(released, device="cpu").config["knn_rule"] == "published"
    new = save_checkpoint(model, tmp_path / "new.pth.tar")
    assert checkpoint_config(torch.load(new, weights_only=True), new)["knn_rule"] == "published"


def test_options_are_checked_by_the_architecture_that_declares_them():
    import numpy as np

    assert GABIC.check_options({"knn": np.int64(3), "backend": "pyg"}, inference=True) == {"knn": 3, "backend": "pyg"}
    assert type(GABIC.check_options({"knn": np.int64(3)})["knn"]) is int  # plain ints: configs go into JSON
    for options, message in [
        ({"knn": 3.0}, "knn: the gabic model expects int, got 3.0"),
        ({"knn": True}, "knn: the gabic model expects int, got True"),
        ({"knn_rule": "nearest"}, "knn_rule: the gabic model takes one of published, self-excluded, got 'nearest'"),
        ({"embed_dim": 48}, r"embed_dim: not an option of the gabic model \(its options: N, M, num_slices, knn, heads, backend, knn_"),
    ]:
        with pytest.raises(ValueError, match=message):
            GABIC.check_options(options)
    with pytest.raises(ValueError, match=r"heads: not an option of the gabic model on a loaded checkpoint \(its options: knn, "):
        GABIC.check_options({"heads": 4}, inference=True)
    assert WACNN.options(inference=True) == {} and list(STF.options()) == ["embed_dim", "num_slices"]
