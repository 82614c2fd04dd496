"""Speed and peak memory of one training step of the paper-size WACNN, GABIC-pyg and GABIC-dense.

Prints one JSON line per measurement, then the ratios. Not a test: nothing is asserted.

    python benchmarks/train_step.py                  # sizes for the machine (CPU or GPU)
    python benchmarks/train_step.py --rounds 9 --batch 8 --size 256

A step is what ``gabic.train.fit`` does: forward (under ``torch.autocast(bfloat16)`` for
bf16), the loss ``lambda * 255^2 * MSE + bpp`` (``gabic.train.rd_loss``, in fp32), backward,
gradient clipping at 1.0, the Adam step, then the auxiliary loss's backward and its Adam step.
Inputs are uniform noise crops: batch 16 of 256x256 on a GPU, 2 of 128x128 on the CPU.
bf16 is autocast on CUDA only; on the CPU it is reported as skipped.

Speed: every (model, precision) is built once, warmed up, then timed in interleaved rounds
(each round times each variant once, in turn), and the median over rounds is reported, so a
slow spell of a shared machine does not land on one variant alone.

Peak memory: each (model, precision) runs alone in a fresh process (warm-up steps, then one
step). On a GPU, ``torch.cuda.max_memory_allocated``: every tensor torch allocated (weights,
gradients, Adam moments, activations, the batch). On the CPU, the process's peak resident set
size after the steps (``VmHWM`` in ``/proc/self/status``, which is ``ru_maxrss`` of this process
image; ``resource.getrusage`` where there is no ``/proc``) less its resident size before the model
was built: coarser, it also counts the allocator's caches and oneDNN's workspaces.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext

import torch
from _common import emit, machine, sync

from gabic import GABIC, WACNN
from gabic.train import PAPER_AUX_LR, PAPER_CLIP, PAPER_LR, rd_loss

#: The models, paper size (N=192, M=320, 10 slices; GABIC k=9, 8 heads).
MODELS = {
    "wacnn": WACNN,
    "gabic-pyg": lambda: GABIC(backend="pyg"),
    "gabic-dense": lambda: GABIC(backend="dense"),
}
LMBDA = 0.0130
WARMUP = 2


def make_step(label: str, precision: str, x: torch.Tensor):
    """A closure running one full training step of a freshly built, seeded model ``label``."""
    torch.manual_seed(0)
    model = MODELS[label]().to(x.device).train()
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt, aux_opt = torch.optim.Adam(main, lr=PAPER_LR), torch.optim.Adam(aux, lr=PAPER_AUX_LR)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        aux_opt.zero_grad(set_to_none=True)
        with autocast:
            out = model(x)
        rd_loss(out, x, LMBDA)["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), PAPER_CLIP)
        opt.step()
        model.aux_loss().backward()
        aux_opt.step()

    return step


def _peak_rss_bytes() -> int:
    """Peak resident set size of this process image.

    Linux: ``VmHWM`` of ``/proc/self/status``. ``ru_maxrss`` is used only where there is no
    ``/proc``: on Linux a child process inherits its parent's ``ru_maxrss`` through fork and
    exec, so a child of this (large) benchmark would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def _rss_bytes() -> int:
    """The resident set size now (Linux); elsewhere the peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return _peak_rss_bytes()


def measure_memory(label: str, precision: str, device: torch.device, batch: int, size: int) -> dict:
    """Run in a fresh process: peak memory of ``WARMUP`` + 1 steps of one variant."""
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    before = _rss_bytes()
    step = make_step(label, precision, x)
    for _ in range(WARMUP + 1):
        step()
    sync(device)
    if device.type == "cuda":
        return {"peak_mem_mib": torch.cuda.max_memory_allocated(device) / 2**20, "memory": "torch.cuda.max_memory_allocated"}
    return {"peak_mem_mib": (_peak_rss_bytes() - before) / 2**20, "memory": "peak RSS increase (VmHWM / ru_maxrss)"}


def memory_in_subprocess(label: str, precision: str, device: torch.device, batch: int, size: int) -> dict:
    argv = [sys.executable, __file__, "--memory-of", label, precision, "--device", str(device), "--batch", str(batch)]
    proc = subprocess.run([*argv, "--size", str(size)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"peak_mem_mib": None, "memory_error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench(device: torch.device, batch: int, size: int, rounds: int) -> dict[tuple[str, str], dict]:
    """Images/s (median over interleaved rounds) and peak memory of every variant."""
    gpu = device.type == "cuda"
    variants = [(label, p) for p in (("fp32", "bf16") if gpu else ("fp32",)) for label in MODELS]
    if not gpu:
        emit({"bench": "train_step", "precision": "bf16", "skipped": "bf16 is torch.autocast on CUDA only; not run on the CPU"})
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    steps, errors = {}, {}
    for v in variants:
        try:
            steps[v] = make_step(*v, x)
            for _ in range(WARMUP):
                steps[v]()
            sync(device)
        except Exception as err:  # a variant that cannot run is reported, the others still are
            errors[v] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            steps.pop(v, None)
    samples: dict[tuple[str, str], list[float]] = {v: [] for v in steps}
    for _ in range(rounds):
        for v, step in steps.items():
            sync(device)
            t0 = time.perf_counter()
            step()
            sync(device)
            samples[v].append(time.perf_counter() - t0)
    del steps
    if gpu:
        torch.cuda.empty_cache()
    results = {}
    for v in variants:
        label, precision = v
        record = {"bench": "train_step", "model": label, "precision": precision, "shape": [batch, 3, size, size]}
        if v in errors:
            record["error"] = errors[v]
        else:
            t = samples[v]
            median = statistics.median(t)
            record |= {
                "images_per_s": round(batch / median, 3),
                "step_s_median": round(median, 4),
                "step_s_min": round(min(t), 4),
                "step_s_max": round(max(t), 4),
                "rounds": rounds,
            }
            mem = memory_in_subprocess(label, precision, device, batch, size)
            record |= {k: round(val, 1) if isinstance(val, float) else val for k, val in mem.items()}
        record["device"] = machine(device)
        emit(record)
        results[v] = record
    return results


def ratios(results: dict[tuple[str, str], dict], gpu: bool) -> None:
    def ips(label: str, precision: str) -> float | None:
        return results.get((label, precision), {}).get("images_per_s")

    def mem(label: str, precision: str) -> float | None:
        return results.get((label, precision), {}).get("peak_mem_mib")

    def ratio(name: str, a: float | None, b: float | None, note: str | None = None) -> None:
        record = {"ratio": name, "value": round(a / b, 3) if a and b else None}
        if note:
            record["note"] = note
        emit(record)

    pyg = ips("gabic-pyg", "fp32")
    ratio("images/s: gabic-dense fp32 / gabic-pyg fp32 (GPU target 1.5)", ips("gabic-dense", "fp32"), pyg)
    bf16_note = None if gpu else "bf16 skipped on the CPU"
    ratio("images/s: gabic-dense bf16 / gabic-pyg fp32 (GPU target 2.5)", ips("gabic-dense", "bf16"), pyg, bf16_note)
    ratio("images/s: gabic-dense fp32 / wacnn fp32", ips("gabic-dense", "fp32"), ips("wacnn", "fp32"))
    ratio("peak memory: gabic-dense fp32 / gabic-pyg fp32", mem("gabic-dense", "fp32"), mem("gabic-pyg", "fp32"))
    if gpu:
        ratio("peak memory: gabic-dense bf16 / gabic-pyg fp32", mem("gabic-dense", "bf16"), mem("gabic-pyg", "fp32"))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--batch", type=int, help="crops per step (default 16 on a GPU, 2 on the CPU)")
    p.add_argument("--size", type=int, help="crop side (default 256 on a GPU, 128 on the CPU)")
    p.add_argument("--rounds", type=int, help="interleaved timing rounds (default 7 on a GPU, 5 on the CPU)")
    p.add_argument("--memory-of", nargs=2, metavar=("MODEL", "PRECISION"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from gabic.device import resolve_device

    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    if gpu:
        torch.backends.cudnn.benchmark = True
    batch, size = args.batch or (16 if gpu else 2), args.size or (256 if gpu else 128)
    if args.memory_of:
        print(json.dumps(measure_memory(*args.memory_of, device, batch, size)))
        return
    emit(
        {
            "bench": "setup",
            "device": machine(device),
            "torch": torch.__version__,
            "cudnn_benchmark": torch.backends.cudnn.benchmark if gpu else None,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32 if gpu else None,
        }
    )
    results = bench(device, batch, size, args.rounds or (7 if gpu else 5))
    ratios(results, gpu)


if __name__ == "__main__":
    main()
