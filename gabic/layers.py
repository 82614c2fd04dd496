"""Building blocks shared by the GABIC, WACNN and STF models.

Module names and nesting follow the state_dict keys of the released checkpoints
(``conv_a``/``conv_b`` of the gated block, ``conv_b.0.attn`` for the Swin window
attention of WACNN and STF, ``conv_b.0.conv`` for the kNN graph attention of GABIC).

Shapes: images and feature maps are ``(B, C, H, W)``; windows are
``(B * nWh * nWw, ws * ws, C)`` with windows in row-major order over the image and
nodes in row-major order inside a window (node index ``r * ws + c``).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from functools import lru_cache
from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.layers import conv1x1, conv3x3
from torch import Tensor

from gabic._pyg import GraphAttentionPropagation
from gabic.checks import check_choice, check_int

__all__ = [
    "BACKENDS",
    "KNN_RULES",
    "DropPath",
    "GatedAttentionBlock",
    "KNNGraphAttention",
    "ResidualUnit",
    "SwinWindowAttention",
    "WindowAttention",
    "WindowGraphAttention",
    "check_choice",
    "check_knn",
    "edge_attribute_matrix",
    "graph_mask",
    "knn_window_graph",
    "shifted_window_mask",
    "window_merge",
    "window_partition",
]

Backend = Literal["dense", "pyg"]
#: The two implementations of the kNN graph attention (same parameters, same numbers).
BACKENDS: tuple[str, ...] = ("dense", "pyg")
KnnRule = Literal["published", "self-excluded"]
#: How the kNN graph picks neighbours (see :func:`knn_window_graph`): as the released code
#: does (``torch.topk`` of k + 1, the first dropped), or never the node itself with a stable tie-break.
KNN_RULES: tuple[str, ...] = ("published", "self-excluded")

#: Mask value of the shifted-window attention, as in the Swin / WACNN / STF code.
SHIFT_MASK_VALUE = -100.0


# --------------------------------------------------------------------------- windows
def window_partition(x: Tensor, ws: int) -> Tensor:
    """Split ``(B, H, W, C)`` into windows ``(B * H/ws * W/ws, ws*ws, C)``.

    H and W must be multiples of ``ws``.
    """
    B, H, W, C = x.shape
    x = x.view(B, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, C)


def window_merge(windows: Tensor, ws: int, H: int, W: int) -> Tensor:
    """Inverse of :func:`window_partition`: ``(B*nW, ws*ws, C)`` to ``(B, H, W, C)``."""
    C = windows.shape[-1]
    B = windows.shape[0] // ((H // ws) * (W // ws))
    x = windows.view(B, H // ws, W // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(B, H, W, C)


def device_constant(build):
    """Cache what ``build(*args)`` returns (a constant tensor on the CPU) per ``(args, device, dtype)``.

    The decorated function takes ``(*args, device=None, dtype=None)`` and returns the constant on
    that device in that dtype (the CPU and its own dtype by default), made once: a model's forward
    pass then neither rebuilds its masks and index tables nor copies them to the GPU (a synchronous
    host-to-device copy) on every call. The cached tensors are ordinary tensors (made outside
    inference mode, without gradient), so any caller may use them in training; callers must not
    change them in place.
    """

    @lru_cache(maxsize=128)
    def cached(args: tuple, device: torch.device, dtype: torch.dtype | None) -> Tensor:
        with torch.inference_mode(False), torch.no_grad():
            t = build(*args)
            return t.to(device=device, dtype=dtype or t.dtype)

    def get(*args: Any, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
        if torch.compiler.is_compiling():  # traced into the compiled graph once, as a constant: no cache
            t = build(*args)
            return t.to(device=device or "cpu", dtype=dtype or t.dtype)
        return cached(args, torch.device(device or "cpu"), dtype)

    get.__doc__, get.__name__, get.cache_clear = build.__doc__, build.__name__, cached.cache_clear
    return get


@device_constant
def _shifted_window_mask(H: int, W: int, ws: int, shift: int) -> Tensor:
    region = torch.zeros(1, H, W, 1)
    cuts = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for wsl in cuts:
            region[:, hs, wsl, :] = label
            label += 1
    regions = window_partition(region, ws).squeeze(-1)  # (nW, n)
    diff = regions[:, None, :] - regions[:, :, None]
    return torch.where(diff != 0, SHIFT_MASK_VALUE, 0.0)


def shifted_window_mask(H: int, W: int, ws: int, shift: int, device: torch.device) -> Tensor:
    """Additive mask ``(nW, n, n)`` of shifted-window attention on an ``H x W`` map.

    Pairs of nodes that came from different regions of the cyclically shifted map
    get ``-100`` (the value of the published Swin code), others 0. Made once per size and
    device; do not change it in place.
    """
    return _shifted_window_mask(H, W, ws, shift, device=device)


# --------------------------------------------------------------------------- small units
class ResidualUnit(nn.Module):
    """conv1x1 C->C/2, GELU, conv3x3 C/2->C/2, GELU, conv1x1 C/2->C, + input, GELU.

    ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Sequential(
            conv1x1(dim, dim // 2),
            nn.GELU(),
            conv3x3(dim // 2, dim // 2),
            nn.GELU(),
            conv1x1(dim // 2, dim),
        )
        self.relu = nn.GELU()  # name kept from the released checkpoints (no weights)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv(x) + x)


class GatedAttentionBlock(nn.Module):
    """The residual shell around the attention of WACNN and GABIC.

    ``out = x + conv_a(x) * sigmoid(conv_b(x))`` with ``conv_a`` three residual units
    and ``conv_b = [attention, 3 residual units, conv1x1]``. ``(B, C, H, W)`` in and out.
    """

    def __init__(self, dim: int, attention: nn.Module):
        super().__init__()
        self.conv_a = nn.Sequential(ResidualUnit(dim), ResidualUnit(dim), ResidualUnit(dim))
        self.conv_b = nn.Sequential(attention, ResidualUnit(dim), ResidualUnit(dim), ResidualUnit(dim), conv1x1(dim, dim))

    @property
    def attention(self) -> nn.Module:
        """The attention module (``conv_b[0]``)."""
        return self.conv_b[0]

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_a(x) * torch.sigmoid(self.conv_b(x))


class DropPath(nn.Module):
    """Stochastic depth per sample (identity in eval mode or when ``p == 0``)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


# --------------------------------------------------------------------------- Swin attention
class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative-position bias.

    The Swin formulation used by WACNN and STF: ``softmax(q k^T / sqrt(D) + B_rel + mask) v``
    followed by ``proj``. Input ``(nWindows, n, C)`` with ``n = ws*ws``; ``mask`` is an
    additive ``(nW, n, n)`` tensor repeated over the batch, or None.
    """

    def __init__(self, dim: int, window_size: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.dim, self.window_size, self.num_heads = dim, window_size, num_heads
        ws = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, num_heads))
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)  # (n, n, 2)
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * ws - 1) + rel[..., 1])
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self) -> Tensor:
        """The bias ``(heads, n, n)`` looked up from the table."""
        n = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """``(Bw, n, C)`` in and out; with ``return_attention`` also the weights ``(Bw, heads, n, n)``
        (each row sums to 1 over the last axis)."""
        # Written out rather than through scaled_dot_product_attention: the bias is learned,
        # and a mask that needs a gradient sends SDPA to a slower path than this one.
        Bw, n, C = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).view(Bw, n, 3, h, C // h).permute(2, 0, 3, 1, 4).unbind(0)
        attn = torch.matmul(q * (C // h) ** -0.5, k.transpose(-2, -1)) + self.relative_position_bias().unsqueeze(0)
        if mask is not None:
            nW = mask.shape[0]
            attn = (attn.view(Bw // nW, nW, h, n, n) + mask.to(attn.dtype)[:, None]).view(Bw, h, n, n)
        alpha = attn.softmax(-1)
        out = self.proj(torch.matmul(alpha, v).transpose(1, 2).reshape(Bw, n, C))
        return (out, alpha) if return_attention else out

    def on_map(self, t: Tensor, shift: int = 0, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Attend inside the windows of a map ``(B, H, W, C)`` (H, W multiples of the window),
        cyclically shifted by ``shift`` with the shifted-window mask; same shape out.

        With ``return_attention`` also the weights ``(B*nW, heads, n, n)`` of the windows of
        the shifted map (window w, node i sit at ``(w_r*ws + r_i + shift, w_c*ws + c_i + shift)``
        modulo H, W of the unshifted map)."""
        ws = self.window_size
        H, W = t.shape[1:3]
        mask = None
        if shift:
            t = torch.roll(t, shifts=(-shift, -shift), dims=(1, 2))
            mask = shifted_window_mask(H, W, ws, shift, t.device)
        res = self(window_partition(t, ws), mask, return_attention)
        out, alpha = res if return_attention else (res, None)
        t = window_merge(out, ws, H, W)
        t = torch.roll(t, shifts=(shift, shift), dims=(1, 2)) if shift else t
        return (t, alpha) if return_attention else t


class SwinWindowAttention(nn.Module):
    """WACNN's window attention on ``(B, C, H, W)`` maps, with cyclic shift and a shortcut.

    ``out = x + W-MSA(shift(x))``; H and W must be multiples of the window size (the
    models pad images to a multiple of 64 so this holds).
    """

    def __init__(self, dim: int, num_heads: int = 8, window_size: int = 8, shift_size: int = 0):
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, {window_size}), got {shift_size}")
        self.window_size, self.shift_size = window_size, shift_size
        self.attn = WindowAttention(dim, window_size, num_heads)

    def forward(self, x: Tensor, return_attention: bool = False):
        """``(B, C, H, W)`` in and out; with ``return_attention`` also a dict with the weights
        ``(B*nW, heads, n, n)`` of the shifted windows, the ``shift`` and the ``padded_size`` (H, W)."""
        B, C, H, W = x.shape
        ws, s = self.window_size, self.shift_size
        if H % ws or W % ws:
            raise ValueError(
                f"WACNN window attention needs H and W to be multiples of {ws}, got {H}x{W}: pad the image to a multiple of 64"
            )
        if return_attention:
            t, alpha = self.attn.on_map(x.permute(0, 2, 3, 1), s, return_attention=True)
            return x + t.permute(0, 3, 1, 2), {"weights": alpha, "shift": s, "padded_size": (H, W)}
        return x + self.attn.on_map(x.permute(0, 2, 3, 1), s).permute(0, 3, 1, 2)


# --------------------------------------------------------------------------- kNN graph attention
@device_constant
def _diagonal_index(ws: int) -> Tensor:
    """``s = r + c`` of every node ``r * ws + c`` of a window, ``(n,)`` float32."""
    r, c = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    return (r + c).flatten().float()


@device_constant
def _edge_attribute(ws: int) -> Tensor:
    s = _diagonal_index(ws)
    return (s[:, None] - s[None, :]) ** 2


def edge_attribute_matrix(ws: int, device: torch.device | None = None) -> Tensor:
    """The released edge attribute ``e(i, j) = ((r_i - r_j) + (c_i - c_j))**2``, ``(n, n)`` float32.

    This is what the published GABIC code computes (the square of the summed row and
    column offsets inside the window), not a Euclidean distance. Made once per window size and
    device; do not change it in place.
    """
    return _edge_attribute(ws, device=device)


#: Dtypes whose 8- or 11-bit mantissa cannot hold the folded edge terms: they get a second,
#: low-order channel for each (see :meth:`KNNGraphAttention.fold_edge_bias`).
_LOW_PRECISION = (torch.bfloat16, torch.float16)


@device_constant
def _edge_key_channels(ws: int, split: bool, pad: int) -> Tensor:
    """The keys' edge channels ``(n, 3 [x2 when split] + pad)``: ``[t_j^2, t_j, 1]`` with
    ``t = s - (ws - 1)`` the centred diagonal index (each repeated when ``split``), then zeros."""
    t = _diagonal_index(ws) - (ws - 1)
    keys = torch.stack((t * t, t, torch.ones_like(t)), dim=-1)
    if split:
        keys = keys.repeat_interleave(2, dim=-1)
    return F.pad(keys, (0, pad))


def _sdpa_without_cudnn():
    """A context in which ``scaled_dot_product_attention`` may use every backend enabled now
    except cuDNN's (MATH when no other is enabled).

    Why: PyTorch 2.11's cuDNN attention (the default for bf16 and fp16 on H100/H200) returns NaN
    in the query gradient when a mask is given, the sequence length is 64 modulo 128 and a row's
    logsumexp is below about -88.7 (pytorch/pytorch#196678): GABIC's 8x8 windows are 64 nodes with
    a mask, and its edge bias (``beta_h e(i, j)`` with ``e`` up to 196, ``beta_h`` of a few units at
    initialisation) can put a whole row of scores that low. The fused memory-efficient kernel is
    correct on the same inputs and takes over.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel

    enabled = [
        backend
        for backend, on in (
            (SDPBackend.FLASH_ATTENTION, torch.backends.cuda.flash_sdp_enabled()),
            (SDPBackend.EFFICIENT_ATTENTION, torch.backends.cuda.mem_efficient_sdp_enabled()),
            (SDPBackend.MATH, torch.backends.cuda.math_sdp_enabled()),
        )
        if on
    ]
    return sdpa_kernel(enabled or [SDPBackend.MATH])


def check_knn(k: Any, nodes: int) -> int:
    """``k`` (as an int) if it is a valid ``knn``, k, the number of neighbours per node, in windows of
    ``nodes`` nodes; else ValueError (:func:`gabic.checks.check_int`).

    A node can have 1 to ``nodes - 1`` neighbours (1..15 in the 4x4 windows of the paper's
    1/16-resolution blocks, 1..63 in the 8x8 ones). The one check of k: the layer, the model,
    the captures and the k sweeps all call it.
    """
    return check_int(k, "knn", 1, nodes - 1, detail=f" (windows of {nodes} nodes)")


def _window_distances(nodes: Tensor) -> Tensor:
    """Squared distances ``(Bw, n, n)`` between the L2-normalised features of each window's nodes.

    Computed as the published code does, in its memory layout: the windows as a contiguous
    ``(Bw, C, n)`` map normalised over channels, read back as ``(Bw, n, C)``, and
    ``|a|^2 + (-2 a.b) + |b|^2`` in that order. On the same device and PyTorch build this gives
    the original's distances bit for bit, so :func:`torch.topk` meets the same ties.
    """
    x = F.normalize(nodes.float().transpose(1, 2).contiguous(), p=2.0, dim=1).transpose(1, 2)  # (Bw, n, C)
    inner = -2 * torch.matmul(x, x.transpose(2, 1))
    square = torch.sum(torch.mul(x, x), dim=-1, keepdim=True)
    return square + inner + square.transpose(2, 1)


def knn_window_graph(nodes: Tensor, k: int, dissimilarity: bool = False, rule: str = "published") -> Tensor:
    """The k neighbours of every node of every window, ``(Bw, n, k)`` int64.

    ``nodes`` is ``(Bw, n, C)``. Features are L2-normalised over channels and squared
    Euclidean distances taken between all nodes of a window (:func:`_window_distances`). Then,
    by ``rule`` (:data:`KNN_RULES`):

    - ``"published"`` (the released code): the ``k + 1`` nearest by ``torch.topk(-dist)``, the
      first dropped; with ``dissimilarity`` the ``k`` farthest by ``torch.topk(dist)``. The
      dropped one is the node itself only when no other node of the window has the same
      features: where features tie (zero padding, flat regions, the quantised latent) the node
      can stay among its own neighbours, in ``topk``'s own order of ties.
    - ``"self-excluded"``: the k nearest (farthest) *other* nodes, ties broken by distance, then
      the lower node index; the node itself is never its own neighbour, on every device.

    No gradient flows through the graph.
    """
    n = nodes.shape[1]
    check_knn(k, n)
    check_choice(rule, KNN_RULES, "rule")
    with torch.no_grad():
        dist = _window_distances(nodes)
        if rule == "published":
            if dissimilarity:
                return torch.topk(dist, k=k).indices
            return torch.topk(-dist, k=k + 1).indices[..., 1:].contiguous()
        diag = torch.arange(n, device=nodes.device)
        dist[:, diag, diag] = -math.inf if dissimilarity else math.inf
        order = torch.sort(dist, dim=-1, descending=dissimilarity, stable=True).indices
    return order[..., :k].contiguous()


def graph_mask(idx: Tensor, n: int, dtype: torch.dtype) -> Tensor:
    """Additive mask ``(Bw, 1, n, n)`` of the graph: 0 where j is a neighbour of i, ``-inf`` elsewhere."""
    mask = torch.full((idx.shape[0], n, n), -math.inf, device=idx.device, dtype=dtype)
    return mask.scatter_(-1, idx, 0.0).unsqueeze(1)


class KNNGraphAttention(nn.Module):
    """Multi-head attention of each node over its k graph neighbours (GABIC, ICIP 2024).

    For head h with D = C / heads::

        score(i, j) = q_i . k_j / sqrt(D) + beta_h * e(i, j),   j in N(i)
        out_i = proj(concat_h sum_j softmax_j(score) v_j) + x_i

    where ``q, k, v = qkv(x)`` and ``beta_h`` is the sum of the D weights of the bias-free
    ``lin_edge = Linear(1, C)`` that belong to head h (the published layer adds
    ``lin_edge(e)`` to ``q_i * k_j`` before summing over the head's D channels).

    Two backends compute the same numbers with the same parameters:

    - ``"dense"``: ``scaled_dot_product_attention`` per window with an additive mask that
      is ``-inf`` outside the k neighbours, plus the per-head edge bias;
    - ``"pyg"``: a PyTorch Geometric ``MessagePassing`` over the edge list, as published.

    Input ``(Bw, n, C)`` windows and the graph ``idx`` ``(Bw, n, k)``; output ``(Bw, n, C)``.
    """

    def __init__(self, dim: int, heads: int = 8, use_edge_attr: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} is not divisible by heads={heads}")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.lin_edge = nn.Linear(1, dim, bias=False) if use_edge_attr else None
        self._pyg = None

    def edge_bias_weights(self) -> Tensor | None:
        """``beta`` ``(heads,)``: the per-head sum of the ``lin_edge`` weights, or None."""
        if self.lin_edge is None:
            return None
        return self.lin_edge.weight.view(self.heads, self.head_dim).sum(-1)

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        Bw, n, C = x.shape
        return self.qkv(x).view(Bw, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)

    def attention_bias(self, idx: Tensor, ws: int, dtype: torch.dtype) -> Tensor:
        """Additive score bias ``(Bw, heads or 1, n, n)``: ``-inf`` off the graph, edge bias on it."""
        bias = graph_mask(idx, ws * ws, dtype)
        beta = self.edge_bias_weights()
        if beta is not None:
            bias = bias + beta.to(dtype)[:, None, None] * edge_attribute_matrix(ws, idx.device).to(dtype)
        return bias

    def fold_edge_bias(self, q: Tensor, k: Tensor, ws: int) -> tuple[Tensor, Tensor]:
        """Queries and keys ``(Bw, heads, n, D + extra)`` whose scaled dot products include the edge bias.

        With ``t = r + c - (ws - 1)`` the centred diagonal index of a node (``e(i, j) = (t_i - t_j)^2``)::

            beta_h e(i, j) = [b, -2 b t_i, b t_i^2] . [t_j^2, t_j, 1] / sqrt(D),   b = beta_h sqrt(D)

        so the scores are exactly those of the written-out layer (no row constant dropped) and the
        mask stays a constant without gradient, which keeps ``scaled_dot_product_attention`` on its
        fused kernels. Centring keeps the terms small (``|t| <= ws - 1``). The query terms are
        computed in float32; in bfloat16 or float16 each is carried as a high and a low part
        (``v = hi + lo``, two channels against two equal key channels), so the folded bias is as
        exact as float32's while ``q . k`` keeps the dtype's precision; the key channels are
        small integers, exact in every dtype. On CUDA the extra channels are padded with zeros
        to a multiple of 8 channels in all, the head size the fused kernels need.
        """
        Bw, h, n, D = q.shape
        t = _diagonal_index(ws, device=q.device) - (ws - 1)  # (n,) float32
        b = (self.edge_bias_weights().float() * D**0.5)[:, None]  # (h, 1)
        terms = torch.stack((b.expand(h, n), -2 * b * t, b * t * t), dim=-1)  # (h, n, 3) float32
        split = q.dtype in _LOW_PRECISION
        if split:
            hi = terms.to(q.dtype)
            lo = (terms - hi.float()).to(q.dtype)
            terms = torch.stack((hi, lo), dim=-1).flatten(-2)  # hi_0, lo_0, hi_1, lo_1, ...
        extra = terms.shape[-1]
        pad = (-(D + extra)) % 8 if q.is_cuda else 0
        q_extra = F.pad(terms.to(q.dtype), (0, pad)).expand(Bw, h, n, extra + pad)
        k_extra = _edge_key_channels(ws, split, pad, device=q.device, dtype=k.dtype).expand(Bw, h, n, extra + pad)
        return torch.cat((q, q_extra), dim=-1), torch.cat((k, k_extra), dim=-1)

    def forward(
        self, x: Tensor, idx: Tensor, ws: int, backend: Backend = "dense", return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attend over the graph. With ``return_attention`` also return the weights
        ``(Bw, heads, n, k)`` of each node over its neighbours in the order of ``idx``."""
        if backend == "dense":
            return self._forward_dense(x, idx, ws, return_attention)
        check_choice(backend, BACKENDS, "backend")
        return self._forward_pyg(x, idx, ws, return_attention)

    def _forward_dense(self, x: Tensor, idx: Tensor, ws: int, return_attention: bool):
        Bw, n, C = x.shape
        q, k, v = self._qkv(x)
        if return_attention:
            bias = self.attention_bias(idx, ws, q.dtype)
            scores = torch.matmul(q, k.transpose(-2, -1)) * self.head_dim**-0.5 + bias
            alpha = scores.softmax(-1)
            out = torch.matmul(alpha, v)
            weights = alpha.gather(-1, idx.unsqueeze(1).expand(-1, self.heads, -1, -1))
        else:
            if self.lin_edge is not None:
                q, k = self.fold_edge_bias(q, k, ws)
            mask = graph_mask(idx, n, q.dtype)
            with _sdpa_without_cudnn() if q.is_cuda and q.dtype in _LOW_PRECISION else nullcontext():
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.head_dim**-0.5)
        out = self.proj(out.transpose(1, 2).reshape(Bw, n, C)) + x
        return (out, weights) if return_attention else out

    def _forward_pyg(self, x: Tensor, idx: Tensor, ws: int, return_attention: bool):
        Bw, n, C = x.shape
        kk = idx.shape[-1]
        if self._pyg is None:
            # Kept out of the module tree: it holds no parameters, and the tree must not change in forward.
            object.__setattr__(self, "_pyg", GraphAttentionPropagation())
        flat = x.reshape(Bw * n, C)
        q, k, v = self.qkv(flat).view(Bw * n, 3, self.heads, self.head_dim).unbind(1)
        edge_index = knn_edge_index(idx)
        edge_bias = None
        if self.lin_edge is not None:
            e = edge_attribute_matrix(ws, x.device)
            src, dst = edge_index[0] % n, edge_index[1] % n
            edge_attr = e[dst, src].unsqueeze(-1).to(x.dtype)
            edge_bias = self.lin_edge(edge_attr).view(-1, self.heads, self.head_dim)
        out, alpha = self._pyg(q * self.head_dim**-0.5, k, v, edge_index, edge_bias)
        out = self.proj(out.reshape(Bw * n, C)) + flat
        out = out.view(Bw, n, C)
        if return_attention:
            return out, alpha.view(Bw, n, kk, self.heads).permute(0, 3, 1, 2)
        return out


def knn_edge_index(idx: Tensor) -> Tensor:
    """PyG ``edge_index`` ``(2, Bw*n*k)`` from the graph ``(Bw, n, k)``.

    Row 0 holds the neighbour (source, global node index ``w*n + j``), row 1 the centre
    (target ``w*n + i``); edges are ordered by window, centre, then neighbour rank,
    as in the published code.
    """
    Bw, n, k = idx.shape
    offset = (torch.arange(Bw, device=idx.device) * n).view(Bw, 1, 1)
    src = (idx + offset).reshape(-1)
    dst = (torch.arange(n, device=idx.device).view(1, n, 1) + offset).expand(Bw, n, k).reshape(-1)
    return torch.stack((src, dst))


class WindowGraphAttention(nn.Module):
    """GABIC's attention on feature maps: kNN graph attention inside non-overlapping windows.

    ``(B, C, H, W) -> (B, C, H, W)``. The map is zero-padded right and bottom to multiples
    of ``window_size``, split into windows of ``n = ws*ws`` nodes, the kNN graph is built
    per window (:func:`knn_window_graph`), :class:`KNNGraphAttention` runs on it (which
    includes the residual), and the padding is cropped. No shift.

    Every argument is checked here, once (the model and the tools rely on it): ``knn`` with
    :func:`check_knn`, ``backend`` against :data:`BACKENDS`, ``knn_rule`` against :data:`KNN_RULES`.

    Args:
        dim: channels C.
        window_size: window side ws (8 at 1/4 resolution, 4 at 1/16 in the paper).
        knn: k, the number of neighbours per node, 1 <= k <= ws*ws - 1 (paper: 9).
        heads: attention heads (paper: 8).
        use_edge_attr: add the per-head edge bias (released models: True).
        dissimilarity: take the k farthest nodes instead of the nearest.
        backend: ``"dense"`` (default) or ``"pyg"``; both share parameters.
        knn_rule: ``"published"`` (default, the released code's graph) or ``"self-excluded"``
            (see :func:`knn_window_graph`).
    """

    def __init__(
        self,
        dim: int,
        window_size: int = 8,
        knn: int = 9,
        heads: int = 8,
        use_edge_attr: bool = True,
        dissimilarity: bool = False,
        backend: Backend = "dense",
        knn_rule: KnnRule = "published",
    ):
        super().__init__()
        self.window_size = window_size
        self.dissimilarity = dissimilarity
        self.knn = knn
        self.backend = backend
        self.knn_rule = knn_rule
        self.conv = KNNGraphAttention(dim, heads=heads, use_edge_attr=use_edge_attr)

    @property
    def knn(self) -> int:
        """k, the number of neighbours per node; can be changed at inference on the same weights."""
        return self._knn

    @knn.setter
    def knn(self, k: int) -> None:
        self._knn = check_knn(k, self.window_size**2)

    @property
    def backend(self) -> str:
        """``"dense"`` or ``"pyg"``; can be changed at any time."""
        return self._backend

    @backend.setter
    def backend(self, backend: str) -> None:
        self._backend = check_choice(backend, BACKENDS, "backend")

    @property
    def knn_rule(self) -> str:
        """``"published"`` or ``"self-excluded"``; can be changed at inference on the same weights."""
        return self._knn_rule

    @knn_rule.setter
    def knn_rule(self, rule: str) -> None:
        self._knn_rule = check_choice(rule, KNN_RULES, "knn_rule")

    def extra_repr(self) -> str:
        return (
            f"window_size={self.window_size}, knn={self.knn}, heads={self.conv.heads}, "
            f"edge_attr={self.conv.lin_edge is not None}, dissimilarity={self.dissimilarity}, "
            f"backend={self.backend!r}, knn_rule={self.knn_rule!r}"
        )

    def to_windows(self, x: Tensor) -> tuple[Tensor, int, int]:
        """Pad and split ``(B, C, H, W)`` into ``(B*nW, n, C)``; also return the padded H, W."""
        ws = self.window_size
        H, W = x.shape[-2:]
        x = F.pad(x, (0, (-W) % ws, 0, (-H) % ws))
        Hp, Wp = x.shape[-2:]
        return window_partition(x.permute(0, 2, 3, 1), ws), Hp, Wp

    def graph(self, windows: Tensor) -> Tensor:
        """The kNN graph ``(Bw, n, k)`` of windows ``(Bw, n, C)``."""
        return knn_window_graph(windows, self.knn, self.dissimilarity, self.knn_rule)

    def forward(self, x: Tensor, return_attention: bool = False):
        """``(B, C, H, W)`` in and out; with ``return_attention`` also a dict with the graph
        ``idx`` ``(Bw, n, k)``, the weights ``(Bw, heads, n, k)`` and the padded size."""
        H, W = x.shape[-2:]
        windows, Hp, Wp = self.to_windows(x)
        idx = self.graph(windows)
        res = self.conv(windows, idx, self.window_size, self.backend, return_attention)
        out, weights = res if return_attention else (res, None)
        y = window_merge(out, self.window_size, Hp, Wp).permute(0, 3, 1, 2)[..., :H, :W]
        if return_attention:
            return y, {"idx": idx, "weights": weights, "padded_size": (Hp, Wp)}
        return y
