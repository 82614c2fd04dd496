"""What runs on a GPU, checked on one: these tests run where CUDA is present and are skipped elsewhere,
so ``python -m pytest`` on a GPU machine checks the GPU (``-m gpu`` runs them alone).

- the paper-size GABIC (dense and pyg), WACNN and STF train in bf16 and fp32 (batch 2 of 128x128,
  small enough for an 8 GB card): 20 steps of :func:`gabic.train.fit` stay finite and lower the loss;
- the two GABIC backends agree in bf16, also where cuDNN's attention would give NaN
  (pytorch/pytorch#196678);
- a photo coded and decoded on the GPU round-trips exactly through the ``.gabic`` file;
- a file written on the GPU is decoded on the CPU (and the reverse) to the same latent, or refused
  with one line; which of the two happens is what ``benchmarks/gpu_check.py`` reports.

``GABIC_TEST_DEVICE=cpu python -m pytest -m gpu`` runs them on the CPU instead (fp32 only; bf16 is
offered on CUDA only), to check the tests themselves on a machine without a GPU; slow there.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
from PIL import Image

from gabic import GABIC, STF, WACNN
from gabic.bitstream import decode_image, unpack
from gabic.errors import BitstreamError
from gabic.measurement import measure
from gabic.train import fit, rd_loss

pytestmark = pytest.mark.gpu

#: The paper-size models, by the ``fit`` options that make them.
PAPER = {
    "gabic-dense": {"model": "gabic", "backend": "dense"},
    "gabic-pyg": {"model": "gabic", "backend": "pyg"},
    "wacnn": {"model": "wacnn"},
    "stf": {"model": "stf", "num_slices": 12},
}


@pytest.fixture(scope="module")
def device() -> torch.device:
    name = os.environ.get("GABIC_TEST_DEVICE", "cuda")
    if name == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device (these tests run where there is one)")
    return torch.device(name)


@pytest.fixture(scope="module")
def photo(sample_paths) -> Image.Image:
    """A 128x128 crop of a sample photo."""
    return Image.open(sample_paths[0]).convert("RGB").crop((100, 80, 228, 208))


@pytest.fixture(scope="module")
def one_crop(tmp_path_factory, photo):
    """A folder holding only :func:`photo`: every training batch is the same crop, so the loss of 20 steps falls."""
    folder = tmp_path_factory.mktemp("one-crop")
    photo.save(folder / "crop.png")
    return folder


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
@pytest.mark.parametrize("label", list(PAPER))
def test_paper_models_train_and_stay_finite(device, one_crop, tmp_path, label, precision):
    if precision == "bf16" and device.type != "cuda":
        pytest.skip("bf16 is autocast on CUDA only")
    options = dict(dataset=one_crop, val_dataset=one_crop, patch_size=128, batch_size=2, steps=20, val_interval=20)
    history = fit(
        "paper", progress=False, device=str(device), precision=precision, runs_dir=tmp_path, name=label, **options, **PAPER[label]
    )
    losses = [row["loss"] for row in history["train"]]
    assert len(losses) == 20 and all(math.isfinite(v) for v in losses)  # fit stops at the first non-finite one
    assert sum(losses[-3:]) < 0.9 * sum(losses[:3]), losses
    assert math.isfinite(history["val"][-1]["loss"])


def _paper_gabic_pass(device: torch.device, backend: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    torch.manual_seed(0)
    model = GABIC(backend=backend).to(device).train()
    torch.manual_seed(1)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        out = model(x)
    terms = rd_loss(out, x, 0.0130)
    terms["loss"].backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return out["x_hat"].detach().float(), grads, float(terms["bpp"].detach())


def test_dense_and_pyg_agree_in_bf16(device):
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(0)).to(device)
    (x_d, g_d, bpp_d), (x_p, g_p, bpp_p) = (_paper_gabic_pass(device, b, x) for b in ("dense", "pyg"))
    assert torch.isfinite(g_d).all() and torch.isfinite(g_p).all()
    assert float((x_d - x_p).norm() / x_p.norm()) < 0.01
    assert float((g_d - g_p).norm() / g_p.norm()) < 0.02
    assert bpp_d == pytest.approx(bpp_p, rel=0.01)


def test_dense_backward_is_finite_where_cudnn_attention_is_not(device):
    """Windows of 64 nodes with a mask and rows of scores far below -88.7 (a strongly negative edge
    bias): the inputs on which cuDNN's attention backward returns NaN (pytorch/pytorch#196678)."""
    from gabic.layers import WindowGraphAttention

    torch.manual_seed(0)
    layer = WindowGraphAttention(192, 8, 9, 8).to(device)
    torch.nn.init.constant_(layer.conv.lin_edge.weight, -1.0)  # beta = -24 per head
    x = torch.randn(4, 192, 32, 32, device=device, requires_grad=True)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        out = layer(x)
    out.float().square().mean().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(layer.conv.qkv.weight.grad).all()


def _coder(model, device: torch.device):
    """``model`` ready to code on ``device``: the entropy coder's tables made on the CPU (as
    :func:`gabic.load_checkpoint` makes them), then moved, in eval mode."""
    model.update(force=True)
    return model.to(device).eval()


@pytest.fixture(scope="module")
def coded(device, sample_paths):
    """A 256x192 photo coded on the device by the paper-size GABIC (untrained, seeded)."""
    image = Image.open(sample_paths[1]).convert("RGB").crop((0, 0, 256, 192))
    torch.manual_seed(0)
    model = _coder(GABIC(), device)
    return image, model, measure(model, image)


def test_photo_round_trips_exactly_on_the_device(device, coded):
    image, model, m = coded
    stream = unpack(m.data)
    assert stream.device == device.type
    again = decode_image(model, m.data)  # the symbols' checksum is verified on the way
    assert again.tobytes() == m.decoded.tobytes()
    assert m.psnr_rgb > 5 and math.isfinite(m.bpp)


def test_a_file_decodes_on_the_other_device_type_or_is_refused(device, coded):
    """Written on the GPU, decoded on the CPU, and the reverse: the same latent (pixels equal, or within
    one grey level where the synthesis rounds differently), or refused with one line."""
    if device.type != "cuda":
        pytest.skip("needs two device types")
    image, model, m = coded
    cpu_model = _coder(GABIC(), torch.device("cpu"))
    cpu_model.load_state_dict(model.state_dict())
    cpu_file = measure(cpu_model, image)
    for data, decoder, other in ((m.data, cpu_model, "cuda"), (cpu_file.data, model, "cpu")):
        try:
            decoded = decode_image(decoder, data)
        except BitstreamError as err:
            assert "\n" not in str(err) and f"written on {other}" in str(err)
            continue
        reference = m.decoded if other == "cuda" else cpu_file.decoded
        diff = torch.tensor(list(decoded.getdata())) - torch.tensor(list(reference.getdata()))
        assert int(diff.abs().max()) <= 1


@pytest.mark.parametrize("label", ["wacnn", "stf"])
def test_other_models_code_on_the_device(device, sample_paths, label):
    image = Image.open(sample_paths[2]).convert("RGB").crop((0, 0, 192, 128))
    torch.manual_seed(0)
    model = _coder({"wacnn": WACNN, "stf": STF}[label](), device)
    m = measure(model, image)
    assert decode_image(model, m.data).tobytes() == m.decoded.tobytes()
