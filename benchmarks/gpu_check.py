"""Everything a GPU machine must run for gabic, in one go (about 5 minutes on one H200): one table, and
exit status 0 only when all is well.

    python benchmarks/gpu_check.py                      # on a machine with CUDA, from the repository root
    python benchmarks/gpu_check.py --device cpu --quick # the script itself, on a CPU, with tiny settings

The checks, in order (each a row of the table; the details go to ``--out``, default
``results/gpu_check/``: ``gpu_check.json``, ``gpu_check.md``, the logs and the profiles):

- ``setup``: PyTorch, CUDA and cuDNN versions, the GPU.
- ``cudnn-sdpa``: the cause of the dense backend's old bf16 NaN, on this machine: GABIC's
  window-8 block in bf16 with whole rows of scores below -88.7 (64 nodes and a mask: the case of
  pytorch/pytorch#196678), backward as gabic runs it (cuDNN's attention left out; must be
  finite) and with cuDNN's attention allowed (reported).
- ``gpu-tests``: ``pytest -m gpu tests/test_gpu.py`` (bf16 and fp32 training of the four
  paper-size models, the backends' agreement, coding on the device, a file across devices).
- ``train-step``: ``benchmarks/train_step.py`` (fp32, bf16, bf16+channels_last; ``--with-compile``
  adds bf16+compile), with the ratios against the targets (bf16 >= 1.5x fp32 for every model,
  GABIC-dense >= WACNN): the targets are reported, not required.
- ``profile wacnn``: the top CUDA kernels of a WACNN training step in fp32 and in bf16
  (``profile_wacnn_fp32.txt``, ``profile_wacnn_bf16.txt``): where to look if bf16 is slow.
- ``train <model>``: ``gabic train --preset paper --precision bf16 --steps 100`` on the sample
  photos for GABIC (dense), GABIC (pyg) and WACNN: exit 0, every loss finite, the last ten
  steps' mean loss below 90 % of the first ten's.
- ``evaluate cuda``, ``evaluate cpu``, ``evaluate cuda vs cpu``: ``gabic evaluate`` of the GABIC
  (dense) run's checkpoint on the sample photos on each device; their bpp must agree within 1 %
  and their PSNR within 0.1 dB.
- ``across devices``: that checkpoint codes a photo on CUDA and decodes it on the CPU, and the
  reverse: the same pixels, within one grey level, or refused with one line (which of them is
  what the README reports).

In this workplace's device machine gabic's dependencies that it lacks travel as wheels (see
``../shared/reference/GPU.md``): compressai 1.2.8, pytorch-msssim, gdown, beautifulsoup4 and
soupsieve, installed with ``pip install --no-deps --target /tmp/site`` and ``PYTHONPATH=/tmp/site``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The runs of check 5: name -> the ``gabic train`` options that differ.
RUNS = {"gabic-dense": ["--backend", "dense"], "gabic-pyg": ["--backend", "pyg"], "wacnn": ["--model", "wacnn"]}


class Check:
    """One row: a name, whether it passed, what it found, how long it took."""

    def __init__(self, name: str):
        self.name, self.ok, self.result, self.seconds, self.details = name, False, "", 0.0, {}

    def row(self) -> dict:
        return {"check": self.name, "ok": self.ok, "seconds": round(self.seconds, 1), "result": self.result, **self.details}


def _env() -> dict[str, str]:
    """The environment of the subprocesses: gabic importable from this checkout, output unbuffered."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def _run(argv: list[str], log: Path, timeout: float) -> tuple[int, str]:
    """Run ``argv`` (from the repository root), its output into ``log``; (exit status, output)."""
    try:
        proc = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
        out, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as err:
        out, code = f"{err.stdout or ''}{err.stderr or ''}\ntimed out after {timeout:.0f} s", 124
    log.write_text(out)
    return code, out


def _last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


# ------------------------------------------------------------------------------------ checks
def check_setup(c: Check, device: str) -> None:
    import torch

    c.details = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    c.ok = device == "cpu" or torch.cuda.is_available()
    c.result = f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {c.details['cudnn']}, {c.details['gpu'] or 'no GPU'}"


def check_cudnn_sdpa(c: Check, device: str) -> None:
    """GABIC's window-8 graph attention (the paper's g_a.4 block: 192 channels, 8 heads, k = 9) in
    bf16, with an edge bias that puts whole rows of scores far below -88.7: the backward's
    non-finite gradients as gabic runs it (cuDNN's attention left out) and with cuDNN's attention
    allowed (what the dense backend did before)."""
    import contextlib

    import torch

    from gabic import layers
    from gabic.layers import WindowGraphAttention

    if device != "cuda":
        c.ok, c.result = True, "skipped: CUDA only"
        return
    found = {}
    for name, context in (("gabic (cuDNN left out)", layers._sdpa_without_cudnn), ("cuDNN allowed", contextlib.nullcontext)):
        torch.manual_seed(0)
        layer = WindowGraphAttention(192, 8, 9, 8).cuda()
        torch.nn.init.constant_(layer.conv.lin_edge.weight, -1.0)  # beta = -24 per head
        x = torch.randn(4, 192, 64, 64, device="cuda", requires_grad=True)
        real, layers._sdpa_without_cudnn = layers._sdpa_without_cudnn, context
        try:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                out = layer(x)
            out.float().square().mean().backward()
            found[name] = f"{int((~torch.isfinite(x.grad)).sum())} non-finite of {x.grad.numel()}"
        except RuntimeError as err:
            found[name] = f"failed ({str(err).splitlines()[0][:80]})"
        finally:
            layers._sdpa_without_cudnn = real
    c.details = found
    c.ok = found["gabic (cuDNN left out)"].startswith("0 non-finite")
    c.result = "input gradient: " + "; ".join(f"{k}: {v}" for k, v in found.items())


def check_gpu_tests(c: Check, out: Path, device: str, timeout: float) -> None:
    env_device = [] if device == "cuda" else ["env", f"GABIC_TEST_DEVICE={device}"]
    argv = [*env_device, sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests/test_gpu.py"]
    code, text = _run(argv, out / "gpu_tests.log", timeout)
    c.ok, c.result = code == 0, _last_line(text)


def check_train_step(c: Check, out: Path, device: str, quick: bool, compile_: bool, timeout: float) -> None:
    argv = [sys.executable, "benchmarks/train_step.py", "--device", device]
    if device == "cuda":
        argv += ["--variants", "fp32", "bf16", "bf16+channels_last", *(["bf16+compile"] if compile_ else [])]
    if quick:
        argv += ["--models", "wacnn", "gabic-dense", "--batch", "1", "--size", "64", "--rounds", "1", "--warmup", "1"]
    else:
        argv += ["--rounds", "5"]
    code, text = _run(argv, out / "train_step.log", timeout)
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    steps = [r for r in records if r.get("bench") == "train_step"]
    errors = [f"{r['model']} {r.get('variant', '')}: {r['error']}" for r in steps if "error" in r]
    ms = {f"{r['model']} {r['variant']}": round(1000 * r["step_s_median"], 1) for r in steps if "step_s_median" in r}
    ratios = {r["ratio"]: r["value"] for r in records if "ratio" in r}
    c.details = {"step_ms": ms, "ratios": ratios, "setup": next((r for r in records if r.get("bench") == "setup"), {})}
    targets = []
    for name, value in ratios.items():
        target = 1.5 if "target 1.5" in name else 1.0 if "target >= 1" in name else None
        if target is not None:  # "images/s: A / B (GPU target 1.5)" -> "A / B = value (met)"
            met = "met" if value and value >= target else "NOT met"
            targets.append(f"{name.split(':')[1].split('(')[0].strip()} = {value} ({met})")
    c.ok = code == 0 and not errors and bool(ms)
    c.result = "; ".join([", ".join(f"{k} {v} ms" for k, v in ms.items()), *targets, *errors]) or _last_line(text)


def check_training(c: Check, out: Path, label: str, device: str, quick: bool, timeout: float) -> Path | None:
    """100 bf16 steps of the paper preset (4 small-cpu steps in fp32 with --quick); the run's folder."""
    runs = out / "runs"
    argv = [sys.executable, "-m", "gabic.cli", "train", "--runs-dir", str(runs), "--name", label, "--device", device, *RUNS[label]]
    if quick:
        argv += ["--preset", "small-cpu", "--steps", "20", "--val-interval", "20", "--patch-size", "64", "--batch-size", "2"]
    else:
        argv += ["--preset", "paper", "--precision", "bf16", "--steps", "100", "--val-interval", "50"]
    code, text = _run(argv, out / f"train_{label}.log", timeout)
    history_file = runs / label / "history.json"
    if code != 0 or not history_file.exists():
        c.result = f"exit {code}: {_last_line(text)}"
        return None
    losses = [row["loss"] for row in json.loads(history_file.read_text())["train"]]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    finite = all(math.isfinite(v) for v in losses)
    c.ok = finite and last < 0.9 * first
    c.details = {"steps": len(losses), "loss_first10": round(first, 3), "loss_last10": round(last, 3)}
    c.result = (
        f"{len(losses)} steps, loss {first:.2f} -> {last:.2f} (means of the first and last ten){'' if finite else ', NOT finite'}"
    )
    return runs / label


def check_evaluate(c: Check, out: Path, run: Path, device: str, timeout: float) -> dict | None:
    result = out / f"evaluate_{device}.json"
    argv = [sys.executable, "-m", "gabic.cli", "evaluate", str(run / "last.pth.tar"), "--device", device, "--out", str(result)]
    code, text = _run(argv, out / f"evaluate_{device}.log", timeout)
    if code != 0 or not result.exists():
        c.result = f"exit {code}: {_last_line(text)}"
        return None
    r = json.loads(result.read_text())["results"]
    c.ok = all(math.isfinite(v) for v in (r["bpp"][0], r["psnr-rgb"][0]))
    c.details = {
        "bpp": r["bpp"][0],
        "psnr": r["psnr-rgb"][0],
        "encoding_time": r["encoding_time"][0],
        "decoding_time": r["decoding_time"][0],
    }
    c.result = (
        f"{r['bpp'][0]:.4f} bpp, {r['psnr-rgb'][0]:.3f} dB, encode {r['encoding_time'][0]:.3f} s, decode {r['decoding_time'][0]:.3f} s"
    )
    return c.details


def check_profile(c: Check, out: Path, device: str, quick: bool) -> None:
    """Where a WACNN training step spends its GPU time, fp32 against bf16 (the step that bf16 made
    slower): the top kernels of three profiled steps each, written to ``profile_wacnn_<precision>.txt``."""
    import tempfile

    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    from gabic.train.config import resolve_config
    from gabic.train.loop import _Run, cuda_training_settings

    if device != "cuda":
        c.ok, c.result = True, "skipped: CUDA only"
        return
    dev = torch.device("cuda")
    batch, size = (2, 128) if quick else (16, 256)
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(dev)
    found = {}
    with cuda_training_settings(dev), tempfile.TemporaryDirectory() as tmp:
        for precision in ("fp32", "bf16"):
            cfg = resolve_config("paper", model="wacnn", precision=precision, steps=10**9, device="cuda", runs_dir=tmp, name=precision)
            run = _Run(cfg, dev, 0, 1)
            run.prepare(None)
            for _ in range(2):
                run.train_step(x)
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                for _ in range(3):
                    run.train_step(x)
                torch.cuda.synchronize()
            events = prof.key_averages()
            (out / f"profile_wacnn_{precision}.txt").write_text(events.table(sort_by="self_device_time_total", row_limit=40))
            kernels = [e for e in events if e.device_type == DeviceType.CUDA]  # the kernels themselves, not the ops
            kernels.sort(key=lambda e: -e.self_device_time_total)
            total = sum(e.self_device_time_total for e in kernels) / 3 / 1000
            top = ", ".join(f"{e.key[:40]} {e.self_device_time_total / 3 / 1000:.1f} ms" for e in kernels[:3])
            found[precision] = f"{total:.1f} ms of GPU time per step; top: {top}"
            del run
            torch.cuda.empty_cache()
    c.ok, c.details = True, found
    c.result = "; ".join(f"{k}: {v}" for k, v in found.items())


def check_across_devices(c: Check, run: Path, device: str) -> None:
    """Code a sample photo on one device type and decode it on the other, both ways."""
    import torch

    from gabic import load_checkpoint, measure
    from gabic.bitstream import decode_image
    from gabic.data import samples
    from gabic.errors import BitstreamError

    if device != "cuda":
        c.ok, c.result = True, "skipped: needs CUDA and the CPU"
        return
    models = {d: load_checkpoint(run / "last.pth.tar", device=d) for d in ("cuda", "cpu")}
    image = samples()[0]
    outcomes = {}
    for writer, reader in (("cuda", "cpu"), ("cpu", "cuda")):
        m = measure(models[writer], image)
        try:
            decoded = decode_image(models[reader], m.data)
        except BitstreamError as err:
            outcomes[f"{writer}->{reader}"] = f"refused: {err}"
            continue
        a = torch.tensor(list(decoded.getdata()), dtype=torch.int16)
        b = torch.tensor(list(m.decoded.getdata()), dtype=torch.int16)
        diff = int((a - b).abs().max())
        outcomes[f"{writer}->{reader}"] = "same pixels" if diff == 0 else f"decoded, pixels differ by up to {diff}"
    c.details = outcomes
    c.ok = all(v == "same pixels" or v.startswith("refused") or v.endswith("up to 1") for v in outcomes.values())
    c.result = "; ".join(f"{k}: {v}" for k, v in outcomes.items())


# ------------------------------------------------------------------------------------ main
def table(checks: list[Check]) -> str:
    lines = ["| check | ok | s | result |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {'yes' if c.ok else 'NO'} | {c.seconds:.0f} | {c.result.replace('|', '/')} |" for c in checks]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cuda (default); cpu checks the script itself")
    p.add_argument("--quick", action="store_true", help="tiny settings (small-cpu runs, a short benchmark)")
    p.add_argument("--with-compile", action="store_true", help="also time bf16+compile in the benchmark (compiles first: minutes)")
    p.add_argument("--skip-tests", action="store_true", help="leave out the gpu tests")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "gpu_check", help="details and logs (default results/gpu_check)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    checks: list[Check] = []

    def step(name: str, fn, *a):
        c = Check(name)
        t0 = time.perf_counter()
        try:
            value = fn(c, *a)
        except Exception as err:  # a check that breaks is a failed row, the others still run
            c.ok, c.result, value = False, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", None
        c.seconds = time.perf_counter() - t0
        checks.append(c)
        print(f"{c.name}: {'ok' if c.ok else 'FAILED'} ({c.seconds:.0f} s) {c.result}", flush=True)
        return value

    t_start = time.perf_counter()
    step("setup", check_setup, args.device)
    step("cudnn-sdpa", check_cudnn_sdpa, args.device)
    if not args.skip_tests:
        step("gpu-tests", check_gpu_tests, args.out, args.device, 1200 if args.device == "cpu" else 240)
    step("train-step", check_train_step, args.out, args.device, args.quick, args.with_compile, 600 if args.with_compile else 240)
    step("profile wacnn", check_profile, args.out, args.device, args.quick)
    runs = {label: step(f"train {label}", check_training, args.out, label, args.device, args.quick, 300) for label in RUNS}
    if runs["gabic-dense"] is not None:
        devices = ("cuda", "cpu") if args.device == "cuda" else ("cpu",)
        found = {d: step(f"evaluate {d}", check_evaluate, args.out, runs["gabic-dense"], d, 300) for d in devices}
        if found.get("cuda") and found["cpu"]:
            c = Check("evaluate cuda vs cpu")
            a, b = found["cuda"], found["cpu"]
            c.ok = abs(a["bpp"] - b["bpp"]) <= 0.01 * b["bpp"] and abs(a["psnr"] - b["psnr"]) <= 0.1
            c.result = f"bpp {a['bpp']:.4f} / {b['bpp']:.4f}, PSNR {a['psnr']:.3f} / {b['psnr']:.3f} dB"
            checks.append(c)
            print(f"{c.name}: {'ok' if c.ok else 'FAILED'} {c.result}", flush=True)
        step("across devices", check_across_devices, runs["gabic-dense"], args.device)
    wall = time.perf_counter() - t_start
    text = table(checks) + f"\n\n{sum(c.ok for c in checks)} of {len(checks)} checks passed in {wall:.0f} s.\n"
    print("\n" + text, flush=True)
    (args.out / "gpu_check.md").write_text(text)
    (args.out / "gpu_check.json").write_text(json.dumps({"wall_s": round(wall, 1), "checks": [c.row() for c in checks]}, indent=2))
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
