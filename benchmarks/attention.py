"""Speed of the kNN graph attention (dense vs pyg), of building the graph, and of coding an image.

A training step of the whole models is timed by ``benchmarks/train_step.py`` (fit's own step).

Prints one JSON line per measurement, then the ratios. Not a test: nothing is asserted.

    python benchmarks/attention.py                 # sizes for the machine (CPU or GPU)
    python benchmarks/attention.py --batch 4 --repeats 5

Measured:

- ``attention``: forward + backward of the kNN graph attention module alone (where the
  two backends differ) and of the whole gated block (attention + 6 residual units), at the
  model's shapes: C=192 at 64x64 with window 8 (1/4 of a 256x256 crop) and C=320 at 16x16
  with window 4 (1/16). Batch 16 on a GPU, 2 on the CPU unless --batch says otherwise.
- ``graph``: building the kNN graph of every window (no gradient) by each rule, ``published``
  (``torch.topk`` of k + 1, as the released code) and ``self-excluded`` (a stable sort), at the
  same two shapes.
- ``coding``: compress and decompress of one 768x512 image with the paper-size GABIC and
  WACNN (untrained weights: the entropy coder sees wider symbol ranges than with trained
  ones, so coding times are an upper bound of the network time plus rANS).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from _common import emit, machine, sync

from gabic import GABIC, WACNN
from gabic.layers import KNN_RULES, GatedAttentionBlock, WindowGraphAttention, knn_window_graph


def timeit(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median seconds of ``fn`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_attention(device, batch, repeats, results):
    for dim, size, ws in ((192, 64, 8), (320, 16, 4)):
        x = torch.randn(batch, dim, size, size, device=device)
        for what in ("attention", "gated_block"):
            times = {}
            for backend in ("pyg", "dense"):
                torch.manual_seed(0)
                attn = WindowGraphAttention(dim, ws, knn=9, heads=8, backend=backend)
                module = (attn if what == "attention" else GatedAttentionBlock(dim, attn)).to(device)
                xi = x.clone().requires_grad_()

                def step(module=module, xi=xi):
                    module(xi).sum().backward()

                times[backend] = timeit(step, device, repeats)
                emit(
                    {
                        "bench": what,
                        "backend": backend,
                        "shape": [batch, dim, size, size],
                        "window": ws,
                        "seconds": round(times[backend], 5),
                        "device": machine(device),
                    }
                )
            results[f"{what} C={dim} ws={ws}: dense speed-up over pyg"] = times["pyg"] / times["dense"]


def bench_graph(device, batch, repeats, results):
    for dim, size, ws in ((192, 64, 8), (320, 16, 4)):
        torch.manual_seed(0)
        layer = WindowGraphAttention(dim, ws, knn=9)
        windows, _, _ = layer.to_windows(torch.randn(batch, dim, size, size, device=device))
        times = {}
        for rule in KNN_RULES:
            times[rule] = timeit(lambda r=rule, w=windows: knn_window_graph(w, 9, rule=r), device, repeats)
            emit(
                {
                    "bench": "graph",
                    "rule": rule,
                    "windows": list(windows.shape),
                    "seconds": round(times[rule], 6),
                    "device": machine(device),
                }
            )
        results[f"graph C={dim} ws={ws}: self-excluded / published time"] = times["self-excluded"] / times["published"]


def bench_coding(device, repeats, results):
    x = torch.rand(1, 3, 512, 768, device=device)
    for label, make in (("wacnn", WACNN), ("gabic-dense", GABIC)):
        torch.manual_seed(0)
        model = make()
        model.update(force=True)
        model = model.to(device).eval()
        with torch.no_grad():
            enc = model.compress(x)
        t_enc = timeit(lambda m=model: m.compress(x), device, repeats, warmup=1)
        t_dec = timeit(lambda m=model, e=enc: m.decompress(e["strings"], e["shape"]), device, repeats, warmup=1)
        emit(
            {
                "bench": "coding",
                "model": label,
                "image": "768x512",
                "compress_s": round(t_enc, 4),
                "decompress_s": round(t_dec, 4),
                "device": machine(device),
            }
        )
        results[f"coding {label}: compress s / 0.12 s (STF repo, WACNN on a GPU)"] = t_enc / 0.12
        results[f"coding {label}: decompress s / 0.12 s"] = t_dec / 0.12


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, help="attention batch (default 16 on a GPU, 2 on the CPU)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--only", choices=("attention", "graph", "coding"), action="append")
    args = p.parse_args(argv)
    from gabic.device import resolve_device

    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True
    only = set(args.only or ("attention", "graph", "coding"))
    results: dict[str, float] = {}
    if "attention" in only:
        bench_attention(device, args.batch or (16 if gpu else 2), args.repeats, results)
    if "graph" in only:
        bench_graph(device, args.batch or (16 if gpu else 2), args.repeats, results)
    if "coding" in only:
        bench_coding(device, max(1, args.repeats // 2), results)
    for name, value in results.items():
        emit({"ratio": name, "value": round(value, 3)})


if __name__ == "__main__":
    main()
