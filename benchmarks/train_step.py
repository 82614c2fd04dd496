"""Speed and peak memory of one training step of the paper-size WACNN, STF, GABIC-pyg and GABIC-dense.

Prints one JSON line per measurement, then the ratios. Not a test: nothing is asserted.

    python benchmarks/train_step.py                          # sizes for the machine (CPU or GPU)
    python benchmarks/train_step.py --variants fp32 bf16 bf16+channels_last
    python benchmarks/train_step.py --no-tf32 --no-cudnn-benchmark   # as code that runs without them

A step is :func:`gabic.train.fit`'s own (``gabic.train.loop._Run.train_step``, on a run built by
the ``paper`` preset): forward (under ``torch.autocast(bfloat16)`` for bf16), the loss ``lambda *
255^2 * MSE + bpp`` in fp32, backward, gradient clipping at 1.0, the read-back of the step's
numbers and their finiteness check, the Adam step, then the auxiliary loss's backward and its
Adam step. Inputs are uniform noise crops: batch 16 of 256x256 on a GPU, 2 of 128x128 on the CPU.

A variant is a precision with options: ``fp32``, ``bf16`` (autocast; CUDA only), and
``+channels_last`` / ``+compile`` (the ``fit`` options of those names). Default: ``fp32 bf16``
on a GPU, ``fp32`` on the CPU.

Settings: as ``fit`` runs (:func:`gabic.train.loop.cuda_training_settings`: ``cudnn.benchmark``
on; TF32 as PyTorch leaves it, on for cuDNN's convolutions and off for matmuls) unless
``--no-cudnn-benchmark`` / ``--no-tf32`` (TF32 off for both) say otherwise. The ``setup`` line
prints them.

Each model runs in a process of its own (CUDA started and the model's code loaded once per
model; on the CPU one per model and variant, see below); in it each variant in turn is built,
warmed up (``--warmup`` steps), timed over ``--rounds`` steps (median, min, max) and its peak
memory read, then freed. Peak memory on a GPU
is ``torch.cuda.max_memory_allocated`` since the variant was built (weights, gradients, Adam
moments, activations, the batch); on the CPU, the increase of the process's peak resident set
size (``VmHWM``) over its resident size before the variant was built: coarser, it also counts the
allocator's caches, which is why each CPU variant gets a fresh process.

``--preset small-cpu`` times the reduced models that a CPU trains (N=64, M=96, 8 slices; STF
keeps its size).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack

import torch
from _common import emit, machine, sync

#: The models: label -> ``fit`` options on top of the ``paper`` preset (N=192, M=320, 10 slices;
#: GABIC k=9, 8 heads; STF at its published size, whose latent of 384 channels has 12 slices).
MODELS = {
    "wacnn": {"model": "wacnn"},
    "stf": {"model": "stf", "num_slices": 12},
    "gabic-pyg": {"model": "gabic", "backend": "pyg"},
    "gabic-dense": {"model": "gabic", "backend": "dense"},
}
LMBDA = 0.0130
OPTIONS = ("channels_last", "compile")


def parse_variant(spec: str) -> dict:
    """``"bf16+channels_last"`` -> ``{"precision": "bf16", "channels_last": True}``; ValueError if unknown."""
    precision, *options = spec.split("+")
    if precision not in ("fp32", "bf16") or any(o not in OPTIONS for o in options):
        raise ValueError(f"variant {spec!r}: a precision (fp32, bf16) and options from {', '.join(OPTIONS)}, joined by '+'")
    return {"precision": precision, **{o: True for o in options}}


def settings(no_tf32: bool, no_cudnn_benchmark: bool) -> dict:
    """Apply the speed settings (after :func:`cuda_training_settings`) and return them as printed."""
    if no_tf32:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if no_cudnn_benchmark:
        torch.backends.cudnn.benchmark = False
    return {
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
    }


# ----------------------------------------------------------------------------------- memory
def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return None


def _reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux 4.0+); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------------- one model
def run_model(
    label: str, variants: list[str], device: torch.device, batch: int, size: int, rounds: int, warmup: int, preset: str = "paper"
) -> None:
    """Time and measure every variant of one model in this process; print a JSON line each."""
    from gabic.train.config import resolve_config
    from gabic.train.loop import _Run

    gpu = device.type == "cuda"
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    for spec in variants:
        record = {"bench": "train_step", "model": label, "variant": spec, "preset": preset, "shape": [batch, 3, size, size]}
        variant = parse_variant(spec)
        if variant["precision"] == "bf16" and not gpu:
            emit(record | {"skipped": "bf16 is torch.autocast on CUDA only; not run on the CPU"})
            continue
        if gpu:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        cpu_peak = not gpu and _reset_peak_rss()
        rss_before = _status_kib("VmRSS")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                options = {"lmbda": LMBDA, "steps": 10**9, "device": str(device), "runs_dir": tmp, "name": "bench"}
                cfg = resolve_config(preset, **{**options, **MODELS[label], **variant})
                run = _Run(cfg, device, 0, 1)
                run.prepare(None)
                t0 = time.perf_counter()
                for _ in range(warmup):
                    run.train_step(x)
                sync(device)
                first = time.perf_counter() - t0
                times = []
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    run.train_step(x)
                    sync(device)
                    times.append(time.perf_counter() - t0)
                losses = [row["loss"] for row in run.history["train"]]
                del run
        except Exception as err:  # a variant that cannot run is reported, the others still are
            emit(
                record | {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", "device": machine(device)}
            )
            continue
        median = statistics.median(times)
        record |= {
            "images_per_s": round(batch / median, 3),
            "step_s_median": round(median, 4),
            "step_s_min": round(min(times), 4),
            "step_s_max": round(max(times), 4),
            "rounds": rounds,
            "warmup_s": round(first, 2),
            "loss_first_last": [round(losses[0], 3), round(losses[-1], 3)],
        }
        if gpu:
            record |= {
                "peak_mem_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
                "memory": "torch.cuda.max_memory_allocated",
            }
        elif cpu_peak and rss_before is not None:
            record |= {"peak_mem_mib": round((_status_kib("VmHWM") - rss_before) / 1024, 1), "memory": "peak RSS increase (VmHWM)"}
        emit(record | {"device": machine(device)})


def in_subprocess(label: str, variants: list[str], args: argparse.Namespace, device: torch.device) -> list[dict]:
    """Run :func:`run_model` for ``label`` in a fresh process; its JSON lines, printed as they come."""
    argv = [sys.executable, __file__, "--model-only", label, "--device", str(device), "--batch", str(args.batch)]
    argv += ["--size", str(args.size), "--rounds", str(args.rounds), "--warmup", str(args.warmup), "--variants", *variants]
    argv += ["--preset", args.preset]
    argv += ["--no-tf32"] * args.no_tf32 + ["--no-cudnn-benchmark"] * args.no_cudnn_benchmark
    records = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            if line.startswith("{"):
                records.append(json.loads(line))
                print(line, end="", flush=True)
        err = proc.stderr.read()
    if proc.returncode != 0:
        emit({"bench": "train_step", "model": label, "error": f"exit {proc.returncode}: {(err.strip().splitlines() or ['?'])[-1]}"})
    return records


def ratios(records: list[dict]) -> None:
    """bf16 against fp32 per model, GABIC-dense against GABIC-pyg and WACNN, per variant pair."""

    def ips(model: str, variant: str) -> float | None:
        return next((r.get("images_per_s") for r in records if r.get("model") == model and r.get("variant") == variant), None)

    def ratio(name: str, a: float | None, b: float | None) -> None:
        emit({"ratio": name, "value": round(a / b, 3) if a and b else None})

    variants = list(dict.fromkeys(r["variant"] for r in records if "variant" in r))
    for model in MODELS:
        for v in variants:
            if v != "fp32" and v.startswith("bf16"):
                ratio(f"images/s: {model} {v} / {model} fp32 (GPU target 1.5)", ips(model, v), ips(model, "fp32"))
    for v in variants:
        ratio(f"images/s: gabic-dense {v} / gabic-pyg {v}", ips("gabic-dense", v), ips("gabic-pyg", v))
        ratio(f"images/s: gabic-dense {v} / wacnn {v} (target >= 1)", ips("gabic-dense", v), ips("wacnn", v))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--preset", choices=("paper", "small-cpu"), default="paper", help="model sizes: paper (default) or small-cpu")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="which models (default all)")
    p.add_argument("--variants", nargs="+", help="e.g. fp32 bf16 bf16+channels_last (default: fp32 bf16 on a GPU, fp32 on the CPU)")
    p.add_argument("--batch", type=int, help="crops per step (default 16 on a GPU, 2 on the CPU)")
    p.add_argument("--size", type=int, help="crop side, a multiple of 64 (default 256 on a GPU, 128 on the CPU)")
    p.add_argument("--rounds", type=int, help="timed steps per variant (default 7 on a GPU, 5 on the CPU)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--no-tf32", action="store_true", help="TF32 off for matmuls and cuDNN")
    p.add_argument("--no-cudnn-benchmark", action="store_true", help="cudnn.benchmark off (fit turns it on)")
    p.add_argument("--model-only", choices=list(MODELS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    from gabic.device import resolve_device
    from gabic.train.loop import cuda_training_settings

    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    args.variants = args.variants or (["fp32", "bf16"] if gpu else ["fp32"])
    for spec in args.variants:
        try:
            parse_variant(spec)
        except ValueError as err:
            p.error(str(err))
    args.batch, args.size = args.batch or (16 if gpu else 2), args.size or (256 if gpu else 128)
    args.rounds = args.rounds or (7 if gpu else 5)
    with ExitStack() as stack:
        stack.enter_context(cuda_training_settings(device))
        applied = settings(args.no_tf32, args.no_cudnn_benchmark)
        if args.model_only:
            run_model(args.model_only, args.variants, device, args.batch, args.size, args.rounds, args.warmup, args.preset)
            return
    setup = {"bench": "setup", "device": machine(device), "torch": torch.__version__, "preset": args.preset, "variants": args.variants}
    emit(setup | (applied if gpu else {}) | {"threads": torch.get_num_threads(), "cpus": os.cpu_count()})
    t0 = time.perf_counter()
    # A process per model on a GPU; per model and variant on the CPU, whose peak resident size cannot
    # be told apart between variants once a first one has grown the allocator's caches.
    groups = [args.variants] if gpu else [[v] for v in args.variants]
    records = [r for label in args.models for variants in groups for r in in_subprocess(label, variants, args, device)]
    ratios(records)
    emit({"bench": "done", "wall_s": round(time.perf_counter() - t0, 1)})


if __name__ == "__main__":
    main()
