"""bf16 autocast: GABIC's graph attention (both backends) and the whole paper-size GABIC agree with
fp32 and stay finite, on ordinary windows and on windows with planted extremes.

These run on the CPU (``torch.autocast("cpu", dtype=torch.bfloat16)``), where the dense backend
goes through the same folding of the edge bias and the same mask as on a GPU; what only a GPU
can show (its kernels) is in ``tests/test_gpu.py``.
"""

from __future__ import annotations

import math

import pytest
import torch

from gabic import GABIC
from gabic.layers import WindowGraphAttention, _sdpa_without_cudnn, edge_attribute_matrix
from gabic.train import rd_loss


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """``|a - b| / |b|`` (Frobenius norms), in float64."""
    return float((a.double() - b.double()).norm() / b.double().norm())


# -- the folded edge bias ---------------------------------------------------------------------------


@pytest.mark.parametrize("ws", [4, 8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_folded_edge_bias_is_the_edge_bias(ws, dtype):
    """With q = k = 0, the scaled dot products of the folded queries and keys are beta_h * e(i, j), as
    exact as float32 can hold them in every dtype (bf16 and fp16 carry each query term as hi + lo)."""
    torch.manual_seed(0)
    heads, D, n = 8, 24, ws * ws
    layer = WindowGraphAttention(heads * D, ws, 3, heads)
    torch.nn.init.normal_(layer.conv.lin_edge.weight, std=1.0)  # beta_h ~ N(0, 24): large biases
    beta = layer.conv.edge_bias_weights().detach().double()
    q = torch.zeros(1, heads, n, D, dtype=dtype)
    with torch.no_grad():
        qf, kf = layer.conv.fold_edge_bias(q, torch.zeros_like(q), ws)
    assert qf.dtype == kf.dtype == dtype and qf.shape == kf.shape
    scores = qf.double() @ kf.double().transpose(-2, -1) / math.sqrt(D)
    expected = beta.view(heads, 1, 1) * edge_attribute_matrix(ws).double()
    scale = float(beta.abs().max()) * 4 * (ws - 1) ** 2  # the largest bias
    err = float((scores[0] - expected).abs().max())
    assert err <= 3e-6 * scale, (err, scale)  # float32's precision, not bf16's (2^-9 = 2e-3)
    if dtype != torch.float32:  # the low parts carry what one rounding loses
        hi_only = qf.clone()
        hi_only[..., D + 1 :: 2] = 0
        coarse = float(((hi_only.double() @ kf.double().transpose(-2, -1) / math.sqrt(D))[0] - expected).abs().max())
        assert coarse > 30 * err


def test_sdpa_context_leaves_out_cudnn_only():
    """The dense backend's attention call on CUDA in bf16/fp16 runs with cuDNN's backend off
    (pytorch/pytorch#196678) and every other backend as the user left it."""
    cuda = torch.backends.cuda
    before = (cuda.flash_sdp_enabled(), cuda.mem_efficient_sdp_enabled(), cuda.math_sdp_enabled(), cuda.cudnn_sdp_enabled())
    assert before[3], "cuDNN attention is on by default"
    with _sdpa_without_cudnn():
        assert not cuda.cudnn_sdp_enabled()
        assert (cuda.flash_sdp_enabled(), cuda.mem_efficient_sdp_enabled(), cuda.math_sdp_enabled()) == before[:3]
    assert (cuda.flash_sdp_enabled(), cuda.mem_efficient_sdp_enabled(), cuda.math_sdp_enabled(), cuda.cudnn_sdp_enabled()) == before
    cuda.enable_flash_sdp(False)
    try:
        with _sdpa_without_cudnn():
            assert not cuda.flash_sdp_enabled() and not cuda.cudnn_sdp_enabled() and cuda.mem_efficient_sdp_enabled()
    finally:
        cuda.enable_flash_sdp(before[0])


# -- one block, planted extremes --------------------------------------------------------------------


def _planted(kind: str, C: int, ws: int) -> torch.Tensor:
    """A ``(2, C, 2ws+3, 2ws+3)`` map (zero padding on two sides) of one kind of window."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, C, 2 * ws + 3, 2 * ws + 3, generator=g)
    if kind == "zero windows":
        x[0] = 0.0
        x[1, :, :ws, :ws] = 0.0
    elif kind == "duplicated vectors":
        x[0, :, :ws, :ws] = x[0, :, :1, :1]  # a window of one vector
        x[1, :, ws:, :] = x[1, :, ws : ws + 1, :1]  # the lower windows of one vector
        x[1, :, 0, 1] = x[1, :, 2, 3]
    elif kind == "large norms":
        x = x * 1e3
    return x


def _block_pass(layer: WindowGraphAttention, x: torch.Tensor, bf16: bool):
    """Output and gradients (input, qkv weight) of one pass, the loss a fixed linear function of the output."""
    xi = x.clone().requires_grad_()
    layer.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = layer(xi)
    weights = torch.linspace(-1, 1, out.numel()).view_as(out)
    (out.float() * weights).sum().backward()
    return out.detach().float(), xi.grad, layer.conv.qkv.weight.grad.clone()


KINDS = ["random", "zero windows", "duplicated vectors", "large norms", "very negative edge bias"]


@pytest.mark.parametrize("ws", [4, 8])
@pytest.mark.parametrize("kind", KINDS)
def test_block_in_bf16_agrees_with_fp32_and_between_backends(ws, kind):
    C = 64
    passes = {}
    for backend in ("dense", "pyg"):
        torch.manual_seed(0)
        layer = WindowGraphAttention(C, ws, 9, 8, backend=backend)
        if kind == "very negative edge bias":  # beta = -8 per head: whole rows of scores far below -88.7
            torch.nn.init.constant_(layer.conv.lin_edge.weight, -1.0)
        x = _planted(kind, C, ws)
        passes[backend] = {p: _block_pass(layer, x, p == "bf16") for p in ("fp32", "bf16")}
    for backend, p in passes.items():
        assert all(torch.isfinite(t).all() for t in p["bf16"]), (backend, "non-finite in bf16")
        # bf16 keeps 8 bits: scores of size S are off by about S/256; window 8's edge bias reaches 196 beta
        tol = 0.01 if ws == 4 and kind != "large norms" else 0.05
        assert _rel(p["bf16"][0], p["fp32"][0]) < tol, (backend, "output")
        if kind != "large norms":  # there softmax saturates: its gradient is ~0 in fp32, ties in bf16
            assert _rel(p["bf16"][1], p["fp32"][1]) < tol, (backend, "input gradient")
            assert _rel(p["bf16"][2], p["fp32"][2]) < 2 * tol, (backend, "qkv gradient")
    dense, pyg = passes["dense"]["bf16"], passes["pyg"]["bf16"]
    assert _rel(dense[0], pyg[0]) < 0.02
    if kind != "large norms":
        assert _rel(dense[1], pyg[1]) < 0.02


# -- the paper-size model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paper_passes():
    """fp32 and bf16 forward and backward passes of the paper-size GABIC (both backends) on a 64x64 image."""
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = GABIC().train()
    passes = {}
    for backend in ("dense", "pyg"):
        model.set_backend(backend)
        for precision in ("fp32", "bf16"):
            model.zero_grad()
            torch.manual_seed(1)  # the same training noise in every pass
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                out = model(x)
            terms = rd_loss(out, x, 0.0130)
            terms["loss"].backward()
            grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
            passes[backend, precision] = ({k: float(v.detach()) for k, v in terms.items()}, out["x_hat"].detach().float(), grads)
    return passes


@pytest.mark.slow  # the paper-size passes (the fixture): about 11 s on a CPU
@pytest.mark.parametrize("backend", ["dense", "pyg"])
def test_paper_gabic_in_bf16_agrees_with_fp32(paper_passes, backend):
    terms, x_hat, grads = paper_passes[backend, "bf16"]
    ref_terms, ref_x_hat, ref_grads = paper_passes[backend, "fp32"]
    assert all(math.isfinite(v) for v in terms.values()) and torch.isfinite(x_hat).all() and torch.isfinite(grads).all()
    assert _rel(x_hat, ref_x_hat) < 0.02
    assert terms["bpp"] == pytest.approx(ref_terms["bpp"], rel=0.03)
    assert terms["loss"] == pytest.approx(ref_terms["loss"], rel=0.01)
    assert _rel(grads, ref_grads) < 0.02
    assert torch.nn.functional.cosine_similarity(grads, ref_grads, dim=0) > 0.999


@pytest.mark.slow
def test_paper_gabic_backends_agree_in_bf16(paper_passes):
    (t_d, x_d, g_d), (t_p, x_p, g_p) = paper_passes["dense", "bf16"], paper_passes["pyg", "bf16"]
    assert _rel(x_d, x_p) < 0.01
    assert t_d["bpp"] == pytest.approx(t_p["bpp"], rel=0.01)
    assert _rel(g_d, g_p) < 0.01
