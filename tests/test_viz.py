"""Looking inside the attention: captured graphs and weights, coordinates, drawings, statistics, k sweep, widget."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.patches import Circle, FancyArrowPatch

from gabic import viz
from gabic.data import samples
from gabic.evaluate import k_sweep
from gabic.figure_data import figure_data
from gabic.images import as_rgb, center_crop, crop, image_to_tensor, pad, tensor_to_image
from gabic.measurement import measure
from gabic.metrics import bpp_from_likelihoods, psnr
from gabic.results import load, save, validate
from gabic.viz.drawing import (
    ARROW_GID,
    K_LABEL_GID,
    LABEL_ALL_UP_TO,
    LABEL_GID,
    MAX_K_LABELS,
    MAX_K_TICKS,
    MAX_WEIGHT_LABELS,
    NODE_GID,
    attention_matrix,
)
from tests.conftest import sample_capture, small_model, synthetic_block

BLOCKS = ["g_a.4.conv_b.0", "g_a.8.conv_b.0", "g_s.0.conv_b.0", "g_s.5.conv_b.0"]


@pytest.fixture(scope="module")
def model():
    return small_model("gabic")


@pytest.fixture(scope="module")
def photo():
    return center_crop(as_rgb(samples()[0]), 128)


@pytest.fixture(scope="module")
def cap(model, photo):
    return viz.capture(model, photo)


@pytest.fixture(scope="module")
def odd():
    """A 100x70 (H x W) image: padded to 128x128 at offset (top 14, left 29)."""
    return sample_capture((100, 70), index=1)


def _windows(block: viz.BlockCapture) -> torch.Tensor:
    """The block's input as windows ``(nW, n, C)``, written out independently of gabic.layers."""
    ws, (Hp, Wp) = block.window_size, block.padded_size
    x = block.input[0]
    x = F.pad(x, (0, Wp - x.shape[-1], 0, Hp - x.shape[-2]))
    C = x.shape[0]
    return x.view(C, Hp // ws, ws, Wp // ws, ws).permute(1, 3, 2, 4, 0).reshape(-1, ws * ws, C)


# --------------------------------------------------------------------------- capture
def test_capture_has_every_block(cap, photo):
    assert cap.names() == BLOCKS
    assert cap["g_a.4"] is cap["g_a.4.conv_b.0"]
    expected = {"g_a.4": (4, 8, (32, 32)), "g_a.8": (16, 4, (8, 8)), "g_s.0": (16, 4, (8, 8)), "g_s.5": (4, 8, (32, 32))}
    for short, (scale, ws, res) in expected.items():
        b = cap[short]
        assert (b.scale, b.window_size, b.resolution, b.knn, b.kind) == (scale, ws, res, 9, "graph")
        nW, n = b.num_windows, ws * ws
        assert b.idx.shape == (nW, n, 9) and b.idx.dtype == torch.int64
        assert b.weights.shape == b.edge_bias.shape == (nW, b.heads, n, 9)
    assert cap.x_hat.shape == cap.image.shape == (1, 3, 128, 128)
    with pytest.raises(KeyError, match="no attention block"):
        cap["g_a.5"]


def test_neighbours_are_the_k_nearest_by_the_block_distance(cap):
    """The published rule: the k + 1 nearest nodes (the node itself among them) with the nearest
    dropped, so the chosen distances are the 2nd to (k+1)-th smallest; where another node ties with
    the node itself at distance 0, the node itself may be kept instead of it."""
    for b in cap.values():
        xn = F.normalize(_windows(b).double(), dim=-1)
        d = torch.cdist(xn, xn) ** 2
        chosen = d.gather(-1, b.idx)
        nearest = d.sort(-1).values[..., 1 : b.knn + 1]
        torch.testing.assert_close(chosen.sort(-1).values, nearest, atol=1e-6, rtol=0)
        itself = b.idx == torch.arange(b.n)[None, :, None]
        tied = (d.diagonal(dim1=1, dim2=2)[..., None] - d).abs().le(1e-6).sum(-1) > 1  # another node at distance 0
        assert not (itself.any(-1) & ~tied).any(), "a node kept itself without a tie"
        assert all(len(set(row)) == b.knn for row in b.idx.reshape(-1, b.knn).tolist()), "repeated neighbours"


def test_self_excluded_neighbours_are_the_k_nearest_other_nodes(photo):
    model = small_model("gabic")
    model.set_knn_rule("self-excluded")
    for b in viz.capture(model, photo).values():
        xn = F.normalize(_windows(b).double(), dim=-1)
        d = torch.cdist(xn, xn) ** 2
        d.diagonal(dim1=1, dim2=2).fill_(math.inf)
        # the chosen distances are the k smallest ones (ties may pick either node)
        torch.testing.assert_close(d.gather(-1, b.idx).sort(-1).values, d.sort(-1).values[..., : b.knn], atol=1e-6, rtol=0)
        assert not (b.idx == torch.arange(b.n)[None, :, None]).any(), "a node is its own neighbour"


def test_weights_sum_to_one(cap):
    for b in cap.values():
        torch.testing.assert_close(b.weights.sum(-1), torch.ones(b.weights.shape[:-1]), atol=1e-5, rtol=0)
        assert (b.weights >= 0).all()


def test_captured_output_is_the_block_output(cap, model, photo):
    xp, _ = pad(image_to_tensor(photo))
    with torch.no_grad():
        a4_in = model.g_a[:4](xp)
        torch.testing.assert_close(cap["g_a.4"].input, a4_in, atol=1e-6, rtol=0)
        torch.testing.assert_close(cap["g_a.4"].output, model.g_a[4].conv_b[0](a4_in), atol=1e-6, rtol=0)
        torch.testing.assert_close(cap["g_a.8"].input, model.g_a[5:8](model.g_a[4](a4_in)), atol=1e-5, rtol=0)
        # the synthesis blocks saw the decoded latent of the forward pass
        y_hat = cap["g_s.0"].input
        torch.testing.assert_close(cap["g_s.0"].output, model.g_s[0].conv_b[0](y_hat), atol=1e-6, rtol=0)
        torch.testing.assert_close(cap["g_s.5"].input, model.g_s[1:5](model.g_s[0](y_hat)), atol=1e-5, rtol=0)
        # the return_attention path gives the same output as the plain forward
        for name in BLOCKS:
            y, _ = dict(model.named_modules())[name](cap[name].input, return_attention=True)
            torch.testing.assert_close(y, cap[name].output, atol=1e-5, rtol=1e-5)


def test_edge_bias_is_the_layer_bias(cap, model):
    b = cap["g_a.8"]
    conv = model.g_a[8].conv_b[0].conv
    beta = conv.lin_edge.weight.view(conv.heads, conv.head_dim).sum(-1)
    rc = torch.tensor([divmod(i, b.window_size) for i in range(b.n)])
    s = rc.sum(-1)
    e = (s[:, None] - s[b.idx]) ** 2  # ((r_i - r_j) + (c_i - c_j))^2, (nW, n, k)
    torch.testing.assert_close(b.edge_bias, beta.view(1, -1, 1, 1) * e[:, None].float(), atol=1e-5, rtol=1e-5)


def test_both_backends_give_the_same_graph(cap, model, photo):
    pyg = viz.capture(model, photo, backend="pyg")
    assert all(m.backend == "dense" for m in model.graph_attentions().values()), "backend not restored"
    # the first block sees the same input: the same graph and weights
    assert torch.equal(pyg["g_a.4"].input, cap["g_a.4"].input)
    assert torch.equal(pyg["g_a.4"].idx, cap["g_a.4"].idx)
    torch.testing.assert_close(pyg["g_a.4"].weights, cap["g_a.4"].weights, atol=1e-5, rtol=0)
    # later blocks see inputs that differ by float rounding (1e-8), which can swap near-tied neighbours:
    # on the same input each block builds the same graph with either backend
    for name in BLOCKS:
        module = dict(model.named_modules())[name]
        module.backend = "pyg"
        try:
            with torch.no_grad():
                _, info = module(cap[name].input, return_attention=True)
        finally:
            module.backend = "dense"
        assert torch.equal(info["idx"], cap[name].idx)
        torch.testing.assert_close(info["weights"], cap[name].weights, atol=1e-5, rtol=0)
        assert (pyg[name].idx != cap[name].idx).float().mean() < 1e-3


def test_image_inputs(cap, model, photo, tmp_path):
    path = tmp_path / "photo.png"
    photo.save(path)
    from_path = viz.capture(model, path)
    assert torch.equal(from_path["g_a.4"].idx, cap["g_a.4"].idx)
    with pytest.raises(ValueError, match="batch of 2"):
        viz.capture(model, torch.rand(2, 3, 64, 64))
    from_chw = viz.capture(model, image_to_tensor(photo)[0])  # (3, H, W): an ImageLike too
    assert torch.equal(from_chw["g_a.4"].idx, cap["g_a.4"].idx)
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        viz.capture(model, torch.rand(1, 4, 64, 64))
    with pytest.raises(ValueError, match="GABIC or WACNN"):
        viz.capture(torch.nn.Conv2d(3, 3, 1), photo)


def test_wacnn_window_maps(photo):
    wacnn = small_model("wacnn")
    cap = viz.capture(wacnn, photo)
    assert cap.names() == BLOCKS
    for name, b in cap.items():
        assert b.kind == "window" and b.idx is None and b.shift == b.window_size // 2
        assert b.weights.shape == (b.num_windows, b.heads, b.n, b.n)
        torch.testing.assert_close(b.weights.sum(-1), torch.ones(b.weights.shape[:-1]), atol=1e-5, rtol=0)
        with torch.no_grad():
            torch.testing.assert_close(b.output, dict(wacnn.named_modules())[name](b.input), atol=1e-6, rtol=0)
    assert viz.draw_window(cap["g_s.5"], 3, 10, head=1, top=5).axes[0].patches
    with pytest.raises(ValueError, match="no k to change"):
        viz.rebuild(cap["g_a.4"], wacnn, 3)


# --------------------------------------------------------------------------- coordinates
def test_coordinates_hand_worked(odd):
    b = odd["g_a.4"]
    assert b.offset == (14, 29) and b.image_size == (100, 70) and b.grid == (4, 4)
    # window 5 = grid (1, 1), node 10 = (1, 2): feature (9, 10), padded pixels (36, 40), image (22, 11)
    assert viz.feature_position(b, 5, 10) == (9, 10)
    assert viz.node_patch(b, 5, 10) == (22, 11, 26, 15)
    assert viz.pixel_to_node(b, 22, 11) == viz.pixel_to_node(b, 25, 14) == (5, 10)
    assert viz.window_box(b, 5) == (18, 3, 50, 35)
    b16 = odd["g_a.8"]
    # window 3 = grid (1, 1), node 5 = (1, 1): feature (5, 5), padded pixels (80, 80), image (66, 51)
    assert viz.node_patch(b16, 3, 5) == (66, 51, 82, 67)
    assert viz.pixel_to_node(b16, -14, -29) == (0, 0)  # the padded image's top-left corner
    # valid nodes at 1/16: rows 0..7 all touch the image; columns 1..6 only (column 0 covers x -29..-14)
    valid = viz.valid_nodes(b16)
    assert int(valid.sum()) == 8 * 6
    assert not valid[0, 0] and valid[0, 1]
    with pytest.raises(ValueError, match="outside the padded image"):
        viz.pixel_to_node(b16, 200, 0)
    with pytest.raises(ValueError, match="window must be in 0..3"):
        viz.node_patch(b16, 4, 0)


def test_coordinates_round_trip(odd):
    for b in odd.values():
        for window in range(b.num_windows):
            for node in range(b.n):
                top, left, bottom, right = viz.node_patch(b, window, node)
                assert (bottom - top, right - left) == (b.scale, b.scale)
                assert viz.pixel_to_node(b, top, left) == (window, node)
                assert viz.pixel_to_node(b, bottom - 1, right - 1) == (window, node)


def test_window_pixels(cap):
    b = cap["g_a.4"]
    px = viz.window_pixels(b, 5)  # grid (1, 1): padded pixels 32..63
    assert px.shape == (3, 32, 32)
    assert torch.equal(px, b.image[0, :, 32:64, 32:64])


# --------------------------------------------------------------------------- drawings
def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    return buf.getvalue()


def test_enlarged_window_has_k_arrows(cap):
    b = cap["g_a.4"]
    for head in ("mean", 2):
        fig = viz.draw_window(b, 5, 10, head=head)
        arrows = [p for p in fig.axes[0].patches if p.get_gid() == ARROW_GID]
        assert len(arrows) == b.knn
    assert _png(fig).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="head must be 'mean' or an integer in 0..7"):
        viz.draw_window(b, 5, 10, head=8)


def hand_built(idx: list[list[int]], weights: list[list[float]], ws: int = 4) -> viz.BlockCapture:
    """One 4x4 window over a 16x16 image at 1/4 (every node covers the image), two heads with equal weights."""
    n, k = ws * ws, len(idx[0])
    w = torch.tensor(weights, dtype=torch.float32).view(1, 1, n, k).expand(1, 2, n, k).clone()
    image = torch.rand(1, 3, 4 * ws, 4 * ws, generator=torch.Generator().manual_seed(0))
    maps = {"input": torch.zeros(1, 8, ws, ws), "output": torch.zeros(1, 8, ws, ws)}
    return viz.BlockCapture(
        name="g_a.4.conv_b.0",
        kind="graph",
        scale=4,
        resolution=(ws, ws),
        padded_size=(ws, ws),
        window_size=ws,
        knn=k,
        heads=2,
        idx=torch.tensor(idx).view(1, n, k),
        weights=w,
        edge_bias=None,
        image=image,
        image_size=(4 * ws, 4 * ws),
        offset=(0, 0),
        **maps,
    )


def adjacent_graph(ws: int = 4) -> tuple[list[list[int]], list[list[float]]]:
    """Every node of a ws x ws window: its 3 nearest grid neighbours (distance 1 or sqrt 2), uniform attention."""
    idx = []
    for i in range(ws * ws):
        r, c = divmod(i, ws)
        near = sorted((j for j in range(ws * ws) if j != i), key=lambda j: (abs(j // ws - r) + abs(j % ws - c), j))[:3]
        idx.append(near)
    return idx, [[1 / 3] * 3 for _ in range(ws * ws)]


def local_share(block: viz.BlockCapture, window: int, node: int, head="mean") -> float:
    """The documented score of :func:`gabic.viz.informative_node`, written out independently: the
    attention of (window, node) on neighbours that cover the image and are not among the k nodes
    nearest to it on the window's grid (every node as near as the k-th counted as near; the node
    itself is near)."""
    ws, k = block.window_size, block.knn
    r0, c0 = divmod(node, ws)
    dist = {j: math.dist((r0, c0), divmod(j, ws)) for j in range(block.n)}
    kth = sorted(d for j, d in dist.items() if j != node)[k - 1]
    valid = viz.valid_nodes(block)[window]
    w = block.weights[window, :, node].double()
    w = w.mean(0) if head == "mean" else w[head]
    return sum(float(wj) for j, wj in zip(block.idx[window, node].tolist(), w, strict=True) if dist[j] > kth + 1e-9 and valid[j])


def test_spatial_neighbourhood_and_nonlocal_share_by_hand():
    from gabic.viz.statistics import nonlocal_share, spatial_neighbourhood

    def near(ws, k, node):
        return sorted(torch.nonzero(spatial_neighbourhood(ws, k)[node]).flatten().tolist())

    assert near(4, 3, 0) == [0, 1, 4, 5]  # a corner: (0,1), (1,0) at 1 and (1,1) at sqrt 2
    assert near(4, 3, 5) == [1, 4, 5, 6, 9]  # (1,1): four nodes at 1 tie for the 3 nearest, all kept
    assert near(8, 8, 27) == [18, 19, 20, 26, 27, 28, 34, 35, 36]  # k = 8 inside: the 3x3 block
    assert near(4, 20, 0) == list(range(16))  # k beyond the window: all of it
    # window attention (k = 8), uniform over a 4x4 window whose last column is padding (a 4 x 3 map):
    # node 5 = (1,1) is local to rows 0..2, columns 0..2; beyond: row 3 and column 3, of which
    # only (3,0), (3,1), (3,2) cover the image
    block = synthetic_block("window", 4, torch.full((1, 1, 16, 16), 1 / 16), resolution=(4, 3))
    assert float(nonlocal_share(block)[0, 0, 5]) == pytest.approx(3 / 16)
    assert float(nonlocal_share(block)[0, 0, 0]) == pytest.approx(3 / 16)  # the corner's 8 nearest reach (2,2): the same 3


def test_informative_node_picks_attention_beyond_the_local_neighbourhood():
    idx, weights = adjacent_graph()
    idx[5], weights[5] = [15, 12, 3], [0.7, 0.2, 0.1]  # (1,1): all its attention beyond its 3 nearest nodes
    idx[6], weights[6] = [12, 15, 2], [0.45, 0.45, 0.1]  # (1,2): 0.9 beyond (node 2 touches it)
    idx[10], weights[10] = [9, 11, 6], [0.8, 0.1, 0.1]  # (2,2): adjacent neighbours, focused attention
    block = hand_built(idx, weights)
    assert viz.informative_node(block) == (0, 5)
    assert (local_share(block, 0, 5), local_share(block, 0, 6), local_share(block, 0, 10)) == pytest.approx((1.0, 0.9, 0.0))
    assert viz.informative_node(block, head=1, window=0) == (0, 5)
    # a corner reaching as far ties with node 5 and loses: the node nearer its window's centre wins
    idx[0], weights[0] = [15, 10, 7], [1 / 3] * 3
    assert local_share(hand_built(idx, weights), 0, 0) == pytest.approx(1.0)
    assert viz.informative_node(hand_built(idx, weights)) == (0, 5)
    # every node attends only to its 3 nearest nodes: all score 0, the central nodes tie, the first wins
    ws = 4
    near = [
        sorted((j for j in range(16) if j != i), key=lambda j: (math.dist(divmod(i, ws), divmod(j, ws)), j))[:3] for i in range(16)
    ]
    local = hand_built(near, [[0.6, 0.3, 0.1]] * 16)
    assert [local_share(local, 0, i) for i in range(16)] == [0.0] * 16
    assert viz.informative_node(local) == (0, 5)
    with pytest.raises(ValueError, match="window must be in 0..0"):
        viz.informative_node(block, window=1)


def test_informative_node_is_no_corner_by_default_on_the_sample_photos(model):
    """On the 4 sample photos, in every block, the default node is the argmax of the documented
    score (computed here on its own), and is not a window's corner everywhere (the distance-based
    score picked corners: they are farthest from everything)."""
    chosen = []
    for index in range(len(samples())):
        cap = viz.capture(model, center_crop(as_rgb(samples()[index]), 128))
        for name, b in cap.items():
            window, node = viz.informative_node(b)
            valid = viz.valid_nodes(b)
            scores = {(w, i): local_share(b, w, i) for w in range(b.num_windows) for i in range(b.n) if valid[w, i]}
            assert scores[window, node] >= max(scores.values()) - 1e-6, (index, name)
            ws = b.window_size
            chosen.append((index, name, node, node in {0, ws - 1, b.n - ws, b.n - 1}))
    assert len(chosen) == 16
    corners = [c for c in chosen if c[3]]
    assert len(corners) < len(chosen) / 2, f"mostly corners: {chosen}"


def test_informative_node_is_valid_on_a_real_capture(odd):
    for b in odd.values():
        window, node = viz.informative_node(b)
        assert bool(viz.valid_nodes(b)[window, node]), b.name
    fig = viz.draw_window(odd["g_a.8"])  # window and node None: the informative node
    window, node = viz.informative_node(odd["g_a.8"])
    query = [r for r in figure_data(fig)["window"]["role"]].index("query")
    assert (figure_data(fig)["window"]["window"][query], figure_data(fig)["window"]["node"][query]) == (window, node)
    with pytest.raises(ValueError, match="node given without its window"):
        viz.draw_window(odd["g_a.8"], node=3)


def _renderer(fig):
    """Draw ``fig`` (layout done) on an Agg canvas; its renderer."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _inside(fig, artists, container) -> list[str]:
    """The texts of ``artists`` whose drawn extent leaves ``container``'s (pixels; half a pixel of slack)."""
    renderer = _renderer(fig)
    box = container.get_window_extent(renderer)
    out = []
    for a in artists:
        e = a.get_window_extent(renderer)
        if e.x0 < box.x0 - 0.5 or e.x1 > box.x1 + 0.5 or e.y0 < box.y0 - 0.5 or e.y1 > box.y1 + 0.5:
            out.append(a.get_text())
    return out


@pytest.mark.parametrize("ws", [4, 8])
def test_weight_labels_stay_inside_the_window(ws):
    idx, weights = adjacent_graph(ws)
    n = ws * ws
    idx[ws - 1] = [2 * ws - 1, n - 1, ws - 2]  # the top-right corner: neighbours on the right edge, one at the bottom
    idx[n - ws] = [n - ws + 1, n - 1, n - 2 * ws]  # the bottom-left corner: neighbours along the bottom edge
    block = hand_built(idx, weights, ws)
    for node in (ws - 1, n - ws, 0, n - 1):
        fig = viz.draw_window(block, 0, node)
        ax = fig.axes[0]
        labels = [t for t in ax.texts if t.get_gid() == LABEL_GID]
        assert len(labels) == 3 and [t.get_text() for t in labels] == ["0.33"] * 3
        assert _inside(fig, labels, ax) == [], f"node {node}: weight labels cut by the plot's edge"
        assert _inside(fig, [ax.title], fig) == [], "the title fits the figure"
        x0, x1 = sorted(ax.get_xlim())
        y0, y1 = sorted(ax.get_ylim())
        assert all(x0 <= t.xy[0] <= x1 and y0 <= t.xy[1] <= y1 for t in labels)


def test_window_legend_and_own_neighbour_ring():
    idx, weights = adjacent_graph()
    idx[5], weights[5] = [5, 15, 12], [0.5, 0.3, 0.2]  # node 5 keeps itself
    fig = viz.draw_window(hand_built(idx, weights), 0, 5)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == [
        "query node",
        "3 nearest neighbours (feature space)",
        "arrow colour/width: attention weight",
        "node is its own neighbour",
    ]
    marks = [p for p in fig.axes[0].patches if p.get_gid() == ARROW_GID]
    rings = [p for p in marks if isinstance(p, Circle)]
    assert len(marks) == 3 and len(rings) == 1 and rings[0].center == (1, 1)  # the star sits at (col 1, row 1)
    assert rings[0].get_linewidth() == max(p.get_linewidth() for p in marks), "the heaviest weight: the widest mark"
    plain = viz.draw_window(hand_built(*adjacent_graph()), 0, 5)
    assert "node is its own neighbour" not in [t.get_text() for t in plain.legends[0].get_texts()]


def _shafts(fig) -> list[tuple[np.ndarray, float]]:
    """The drawn shafts of the arrows of :func:`gabic.viz.draw_window` (display pixels, one polyline
    each, curves flattened) with their line widths in pixels."""
    _renderer(fig)
    ax = fig.axes[0]
    out = []
    for arrow in (p for p in ax.patches if p.get_gid() == ARROW_GID and isinstance(p, FancyArrowPatch)):
        shaft = arrow.get_transform().transform_path(arrow.get_path()).to_polygons(closed_only=False)[0]
        out.append((shaft, arrow.get_linewidth() * fig.dpi / 72))
    return out


def _middle(line: np.ndarray) -> np.ndarray:
    """The point half-way along a polyline."""
    steps = np.hypot(*np.diff(line, axis=0).T)
    at = np.searchsorted(np.cumsum(steps), steps.sum() / 2)
    return line[at + 1]


def _distance(point: np.ndarray, line: np.ndarray) -> float:
    """Distance from a point to a polyline."""
    a, b = line[:-1], line[1:]
    t = np.clip(((point - a) * (b - a)).sum(1) / np.maximum(((b - a) ** 2).sum(1), 1e-12), 0, 1)
    return float(np.hypot(*(a + t[:, None] * (b - a) - point).T).min())


def collinear_block() -> tuple[viz.BlockCapture, int]:
    """An 8x8 window whose node 25 (row 3, col 1) has 9 neighbours on three lines through it: its
    row (4 to the right), its column (2 below) and a diagonal (3 up-right), the farthest on a line
    with the heaviest weight (the 0.37 arrow that covered the 0.00 ones); the other nodes attend
    uniformly to the 9 nodes after them."""
    n = 64
    idx = [[(i + d) % n for d in range(1, 10)] for i in range(n)]
    weights = [[1 / 9] * 9 for _ in range(n)]
    idx[25], weights[25] = [26, 27, 28, 29, 33, 41, 18, 11, 4], [0.0, 0.0, 0.0, 0.37, 0.05, 0.2, 0.0, 0.01, 0.37]
    return hand_built(idx, weights, ws=8), 25


def test_collinear_arrows_stay_visible():
    """Neighbours on one line with the query: no arrow lies on another. Each arrow's middle is
    farther from every other arrow than half their widths together (so it shows there), and the
    arrows keep inside the window."""
    block, node = collinear_block()
    fig = viz.draw_window(block, 0, node)
    shafts = _shafts(fig)
    assert len(shafts) == 9
    box = fig.axes[0].get_window_extent()
    for i, (line, width) in enumerate(shafts):
        mid = _middle(line)
        for j, (other, other_width) in enumerate(shafts):
            if i != j:
                assert _distance(mid, other) > (width + other_width) / 2, f"arrow {i} is under arrow {j} at its middle"
        assert (line[:, 0] >= box.x0 - 1).all() and (line[:, 0] <= box.x1 + 1).all(), "an arrow bows out of the window"
        assert (line[:, 1] >= box.y0 - 1).all() and (line[:, 1] <= box.y1 + 1).all(), "an arrow bows out of the window"
    widths = {round(w, 6) for _, w in shafts}
    assert len(widths) > 1, "line width follows the weight"


def _circles(fig) -> list[tuple[float, float, float]]:
    """``(x, y, radius)`` in display pixels of the neighbours' circles and the query's star."""
    ax = fig.axes[0]
    out = []
    for line in ax.lines:
        if line.get_gid() == NODE_GID or line.get_marker() == "*":
            (x, y) = ax.transData.transform(np.column_stack(line.get_data())[0])
            out.append((x, y, (line.get_markersize() + line.get_markeredgewidth()) / 2 * fig.dpi / 72))
    return out


def _on_circle(box, circle) -> bool:
    x, y, r = circle
    nx, ny = min(max(x, box.x0), box.x1), min(max(y, box.y0), box.y1)
    return math.hypot(nx - x, ny - y) < r


@pytest.mark.parametrize("k", [9, 20, 63])
def test_weight_labels_beside_the_circles(cap, model, k):
    """No weight label sits on a neighbour's circle, on the query's star or on another label; with
    more than LABEL_ALL_UP_TO neighbours only the MAX_WEIGHT_LABELS largest weights are written."""
    block = cap["g_a.4"] if k == 9 else viz.rebuild(cap["g_a.4"], model, k)
    window, node = viz.informative_node(cap["g_a.4"])
    figures = [viz.draw_window(block, window, node)]
    if k == 9:
        collinear, query = collinear_block()
        figures.append(viz.draw_window(collinear, 0, query))
    for fig in figures:
        renderer = _renderer(fig)
        labels = [t for t in fig.axes[0].texts if t.get_gid() == LABEL_GID]
        boxes = [t.get_window_extent(renderer) for t in labels]
        circles = _circles(fig)
        assert len(circles) >= len(labels) > 0
        for i, box in enumerate(boxes):
            assert not any(_on_circle(box, c) for c in circles), f"label {labels[i].get_text()} on a circle"
            assert not any(box.overlaps(other) for other in boxes[i + 1 :]), f"label {labels[i].get_text()} on another label"
    written = [t for t in figures[0].axes[0].texts if t.get_gid() == LABEL_GID]
    if k <= LABEL_ALL_UP_TO:
        assert len(written) == k
    else:
        weights = block.weights[window, :, node].mean(0)
        assert len(written) == MAX_WEIGHT_LABELS
        largest = sorted(round(float(w), 2) for w in weights.topk(MAX_WEIGHT_LABELS).values)
        assert sorted(float(t.get_text()) for t in written) == pytest.approx(largest, abs=1e-9)
        assert f"the {MAX_WEIGHT_LABELS} largest" in figures[0].axes[0].get_title()


def test_attention_matrix_blanks_non_neighbours(cap):
    b = cap["g_a.8"]
    fig = viz.draw_attention_matrix(b, 2, head=1)
    shown = fig.axes[0].images[0].get_array()
    m = torch.as_tensor(attention_matrix(b, 2, head=1))
    neighbour = torch.zeros(b.n, b.n, dtype=torch.bool).scatter_(1, b.idx[2], True)
    assert torch.equal(torch.isnan(m), ~neighbour)
    assert int(torch.as_tensor(shown.mask).sum()) == b.n * (b.n - b.knn)
    torch.testing.assert_close(m[neighbour].view(b.n, b.knn), b.weights[2, 1].gather(-1, b.idx[2].sort(-1).indices).double())


def test_grid_and_statistics_figures(cap):
    fig = viz.draw_window_grid(cap["g_a.8"], window=1, node=3)
    assert len(fig.axes) == 1 and _png(fig)
    fig = viz.draw_statistics(cap)
    assert len(fig.axes) >= 3 + 4  # three panels, four heat maps (and their colour bars)
    assert _png(fig)


def test_grid_labels_inside_the_figure(odd):
    for name in ("g_a.4", "g_a.8"):
        block = odd[name]
        fig = viz.draw_window_grid(block, *viz.informative_node(block))
        ax = fig.axes[0]
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        ticks = [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]  # the drawn ones
        ticks += [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
        texts = [t for t in (ax.title, ax.xaxis.label, ax.yaxis.label, *ticks) if t.get_text()]
        assert len(texts) > 6 and _inside(fig, texts, fig) == [], name


def test_statistics_hand_computed():
    # 3x3 window, node i chooses (i + 1) % 9 and (i + 3) % 9
    idx = torch.tensor([[[(i + 1) % 9, (i + 3) % 9] for i in range(9)]])
    weights = torch.tensor([[0.5, 0.5], [1.0, 0.0]]).view(1, 2, 1, 2).expand(1, 2, 9, 2)
    stats = viz.graph_statistics(idx, 3, weights)
    # (i + 1): six steps of 1, (0,2)->(1,0) and (1,2)->(2,0) of sqrt(5), (2,2)->(0,0) of sqrt(8);
    # (i + 3): six steps of 1 down, three of 2 up
    assert stats["mean_distance"] == pytest.approx((18 + 2 * math.sqrt(5) + math.sqrt(8)) / 18)
    assert stats["adjacent_share"] == pytest.approx(12 / 18)
    torch.testing.assert_close(stats["entropy"], torch.tensor([math.log(2), 0.0]))
    torch.testing.assert_close(stats["frequency"], torch.full((3, 3), 2.0))
    only0 = viz.graph_statistics(idx, 3, weights, valid=torch.arange(9).view(1, 9) == 0)
    assert (only0["mean_distance"], only0["adjacent_share"]) == (1.0, 1.0)
    assert only0["frequency"].flatten().tolist() == [0, 1, 0, 1, 0, 0, 0, 0, 0]


def test_block_statistics(odd):
    b = odd["g_a.8"]
    stats = viz.block_statistics(b)
    assert stats["frequency_map"].shape == b.resolution
    assert float(stats["frequency_map"].sum()) == b.knn * int(viz.valid_nodes(b).sum())
    assert 0 <= stats["padded_neighbour_share"] <= 1
    assert stats["entropy"].shape == (b.heads,) and bool((stats["entropy"] <= math.log(b.knn) + 1e-5).all())


# --------------------------------------------------------------------------- k
def test_rebuild_with_another_k(cap, model):
    b = cap["g_a.4"]
    r = viz.rebuild(b, model, 3)
    assert r.knn == 3 and r.idx.shape == (b.num_windows, b.n, 3) and r.weights.shape == (b.num_windows, b.heads, b.n, 3)
    # the 3 nearest are the first 3 of the 9 nearest; torch.topk of 4 and of 10 (the published rule)
    # may order nodes at exactly the same distance differently, so here the distances agree ...
    xn = F.normalize(_windows(b).double(), dim=-1)
    d = torch.cdist(xn, xn) ** 2
    torch.testing.assert_close(d.gather(-1, r.idx).sort(-1).values, d.gather(-1, b.idx[..., :3]).sort(-1).values, atol=1e-6, rtol=0)
    torch.testing.assert_close(r.weights.sum(-1), torch.ones(r.weights.shape[:-1]), atol=1e-5, rtol=0)
    assert model.g_a[4].conv_b[0].knn == 9
    assert r.input is b.input


def test_rebuild_with_another_k_keeps_the_nearest_first_under_the_stable_rule(photo):
    """... and under the self-excluded rule (ties broken by index) the nodes themselves."""
    model = small_model("gabic")
    model.set_knn_rule("self-excluded")
    b = viz.capture(model, photo)["g_a.4"]
    assert torch.equal(viz.rebuild(b, model, 3).idx, b.idx[..., :3]), "the 3 nearest are the first 3 of the 9 nearest"


@pytest.mark.parametrize("k", [0, 64, 2.5, True])
def test_k_outside_the_window_is_refused(cap, model, k):
    with pytest.raises(ValueError, match=r"block g_a\.4\.conv_b\.0: knn must be an integer in 1\.\.63 \(windows of 64 nodes\), got"):
        viz.rebuild(cap["g_a.4"], model, k)
    assert model.g_a[4].conv_b[0].knn == 9


def test_rebuild_restores_k_on_error(cap, model, monkeypatch):
    module = model.g_a[8].conv_b[0]

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "forward", boom)
    with pytest.raises(RuntimeError, match="boom"):
        viz.rebuild(cap["g_a.8"], model, 4)
    assert module.knn == 9


def test_k_sweep(model, photo, tmp_path):
    result = k_sweep(model, [photo], ks=[3, 9], progress=False)
    validate(result)
    assert result["meta"]["knn"] == [3, 9] and result["meta"]["estimate"] == "likelihoods" and result["meta"]["trained_knn"] == 9
    assert all(m.knn == 9 for m in model.graph_attentions().values()) and model.config["knn"] == 9
    x = image_to_tensor(photo)
    xp, unpad = pad(x)
    with torch.no_grad():
        out = model(xp)
    assert result["results"]["bpp"][1] == pytest.approx(bpp_from_likelihoods(out["likelihoods"], 128 * 128), rel=1e-9)
    assert result["results"]["psnr-rgb"][1] == pytest.approx(psnr(photo, tensor_to_image(crop(out["x_hat"], unpad))), rel=1e-9)
    assert result["per_image"]["image0"]["bpp"] == result["results"]["bpp"]
    assert load(save(result, tmp_path / "k.json"))["meta"]["knn"] == [3, 9]
    assert len(viz.plot_k_sweep(result).axes) == 3

    with pytest.raises(ValueError, match=r"1\.\.15 .* got 16"):
        k_sweep(model, [photo], ks=[3, 16], progress=False)
    with pytest.raises(ValueError, match="GABIC"):
        k_sweep(small_model("wacnn"), [photo], ks=[3], progress=False)


def sweep_result(ks: list[int], trained: int = 9) -> dict:
    """A k sweep result with made-up values, as k_sweep returns it."""
    bpp = [0.35 + 0.001 * math.sin(k) for k in ks]
    psnr_values = [23.3 + 0.02 * k - 0.001 * k * k for k in ks]
    meta = {"knn": ks, "trained_knn": trained, "estimate": "likelihoods"}
    return {"name": "gabic k sweep", "results": {"bpp": bpp, "psnr-rgb": psnr_values}, "meta": meta}


@pytest.mark.parametrize("ks", [list(range(1, 16)), [1, 3, 6, 9, 12, 15], [9]])
def test_k_sweep_ticks_and_labels_do_not_collide(ks):
    fig = viz.plot_k_sweep(sweep_result(ks))
    left, right = fig.axes[0], fig.axes[1]
    ticks = [float(t) for t in right.get_xticks()]
    assert all(t.is_integer() and min(ks) <= t <= max(ks) for t in ticks), ticks
    assert len(set(ticks)) == len(ticks) <= MAX_K_TICKS and min(ks) in ticks
    if len(ks) <= MAX_K_TICKS:
        assert ticks == [float(k) for k in ks], "few k: a tick at each"
    labels = [t for t in left.texts if t.get_gid() == K_LABEL_GID]
    texts = [t.get_text() for t in labels]
    assert "k=9" in texts and labels[texts.index("k=9")].get_color() == "red", "the trained k is always labelled"
    assert len(set(texts)) == len(texts) and set(texts) <= {f"k={k}" for k in ks}
    if len(ks) <= MAX_K_LABELS:
        assert sorted(texts) == sorted(f"k={k}" for k in ks)
    renderer = _renderer(fig)
    boxes = [t.get_window_extent(renderer) for t in labels]
    ticklabels = [t.get_window_extent(renderer) for t in left.get_xticklabels() + left.get_yticklabels() if t.get_text()]
    for i, box in enumerate(boxes):
        assert not any(box.overlaps(other) for other in boxes[i + 1 :] + ticklabels), texts[i]
    assert _inside(fig, labels, left) == [], "every label inside the plot"


def test_k_sweep_real_coding(model, photo):
    small = center_crop(photo, 64)
    result = k_sweep(model, small, ks=[9], real_coding=True, progress=False)
    assert result["meta"]["estimate"] == "bitstream"
    m = measure(model, small)
    assert result["results"]["bpp"] == [m.bpp] and result["results"]["psnr-rgb"] == [m.psnr_rgb]
    assert result["per_image"]["image0"]["bpp-file"] == [m.bpp_file] and m.bpp_file > m.bpp


# --------------------------------------------------------------------------- widget
def test_explorer_widget(cap, model):
    pytest.importorskip("ipywidgets")
    from gabic.widgets.attention import attention_explorer

    ex = attention_explorer(model, capture=cap, dpi=40)
    seen = [bytes(ex.image.value)]
    assert seen[0].startswith(b"\x89PNG")
    ex.window_col.value = (ex.window_col.value + 1) % (ex.window_col.max + 1)
    seen.append(bytes(ex.image.value))
    ex.head.value = 3
    seen.append(bytes(ex.image.value))
    ex.k.value = 3
    seen.append(bytes(ex.image.value))
    assert len(set(seen)) == 4, "every change redraws the figure"
    assert ex.current_block().idx.shape[-1] == 3 and model.g_a[4].conv_b[0].knn == 9
    ex.block.value = "g_a.8.conv_b.0"
    assert (ex.k.value, ex.k.max, ex.window_row.max, ex.node_row.max) == (9, 15, 1, 3)
    ex.select_at(100, 20)  # 1/16: feature (6, 1) -> window (1, 0), node (2, 1)
    assert ex.selection() == (2, 9, "mean")
    # a click on the left panel (browser pixels from the top-left corner) selects the pixel under it
    x, y = ex._grid_ax.transData.transform((20, 30))
    height = ex._fig.get_size_inches()[1] * ex._fig.dpi
    ex._on_click({"relativeX": x, "relativeY": height - y})
    assert ex.selection()[:2] == viz.pixel_to_node(cap["g_a.8"], 30, 20)
