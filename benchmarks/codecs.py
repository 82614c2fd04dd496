"""Wall time of a codec RD sweep (24 images x 10 qualities) on one core and on all cores.

Prints one JSON line per measurement, then the ratios. Not a test: nothing is asserted.

    python benchmarks/codecs.py                    # JPEG and HEIF, 24 images x 10 qualities
    python benchmarks/codecs.py --codec jpeg --codec webp

Measured: :func:`gabic.evaluate.evaluate_codec` over 24 images (``data/kodak`` when it holds
24 or more images, otherwise the 4 embedded sample photographs copied 6 times: the output
says which), 10 quality settings each, every job being encode + decode + PSNR + MS-SSIM.

- ``workers=1``: everything in this process, pinned to one CPU core (``sched_setaffinity``
  where the platform has it) with one torch thread, so that multi-threaded encoders (x265)
  also use one core.
- ``workers=<cores>``: one process per core (``os.cpu_count()``), no pinning.

A small warm-up sweep runs first so that the one-time imports (torch, the codec libraries)
are not timed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from gabic.codecs import get_codec
from gabic.data import list_images, samples
from gabic.evaluate import evaluate_codec

#: Ten settings per codec, spanning about 0.1-2 bpp (JPEG from 0.2).
QUALITIES = {
    "jpeg": [5, 10, 20, 35, 50, 60, 70, 80, 85, 90],
    "heif": [10, 20, 25, 30, 35, 40, 45, 50, 55, 60],
    "webp": [0, 5, 10, 20, 30, 50, 70, 80, 85, 90],
    "avif": [10, 20, 30, 40, 50, 55, 60, 70, 80, 85],
    "jpeg2000": [240, 160, 120, 100, 60, 40, 30, 24, 16, 12],
    "jpegxl": [0, 10, 20, 30, 40, 60, 75, 85, 90, 92],
    "bpg": [46, 43, 40, 38, 35, 32, 30, 28, 26, 23],
}
NUM_IMAGES = 24
KODAK = Path(__file__).resolve().parent.parent / "data" / "kodak"


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


@contextlib.contextmanager
def dataset(tmp: Path) -> Iterator[tuple[Path, str]]:
    """A folder of 24 images and a description of it."""
    if KODAK.is_dir():
        try:
            kodak = list_images(KODAK)
        except Exception:
            kodak = []
        if len(kodak) >= NUM_IMAGES:
            folder = tmp / "kodak"
            folder.mkdir()
            for path in kodak[:NUM_IMAGES]:
                os.symlink(path, folder / path.name)
            yield folder, f"data/kodak (first {NUM_IMAGES} images)"
            return
    folder = tmp / "samples"
    folder.mkdir()
    paths = samples()
    for k in range(NUM_IMAGES):
        src = paths[k % len(paths)]
        shutil.copyfile(src, folder / f"{k:02d}_{src.name}")
    yield folder, f"gabic samples x{NUM_IMAGES // len(paths)} (no data/kodak with {NUM_IMAGES} images)"


@contextlib.contextmanager
def one_core() -> Iterator[str]:
    """Pin this process to one CPU and torch to one thread; restore both afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        if affinity:
            os.sched_setaffinity(0, {min(affinity)})
        yield "pinned to 1 core" if affinity else "1 process (no pinning on this platform)"
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)
        torch.set_num_threads(threads)


def sweep(codec: str, folder: Path, workers: int) -> float:
    t0 = time.perf_counter()
    evaluate_codec(codec, folder, qualities=QUALITIES[codec], workers=workers, progress=False)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codec", choices=sorted(QUALITIES), action="append", help="codec to time (repeatable; default: jpeg, heif)")
    args = p.parse_args(argv)
    codecs = args.codec or ["jpeg", "heif"]
    cores = os.cpu_count() or 1
    machine = f"{platform.processor() or platform.machine()}, {cores} cores"
    ratios: dict[str, float] = {}
    one_core_times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gabic-bench-") as tmp:
        with dataset(Path(tmp)) as (folder, description):
            for name in codecs:
                codec = get_codec(name)
                if not codec.available:
                    emit({"codec": name, "skipped": codec.unavailable_reason})
                    continue
                evaluate_codec(name, qualities=QUALITIES[name][:1], workers=1, progress=False)  # warm-up
                with one_core() as how:
                    t1 = sweep(name, folder, workers=1)
                tn = sweep(name, folder, workers=cores)
                jobs = NUM_IMAGES * len(QUALITIES[name])
                common = {"codec": name, "label": codec.label, "dataset": description, "images": NUM_IMAGES}
                common |= {"qualities": len(QUALITIES[name]), "machine": machine}
                emit(common | {"workers": 1, "cores": how, "seconds": round(t1, 2), "ms_per_job": round(1000 * t1 / jobs, 1)})
                emit(
                    common
                    | {"workers": cores, "cores": f"{cores} cores", "seconds": round(tn, 2), "ms_per_job": round(1000 * tn / jobs, 1)}
                )
                ratios[f"{name}: speed-up of {cores} workers over 1"] = t1 / tn
                one_core_times[name] = t1
    if "jpeg" in one_core_times:
        for name, t in one_core_times.items():
            if name != "jpeg":
                ratios[f"{name} / jpeg sweep time on one core"] = t / one_core_times["jpeg"]
    for name, value in ratios.items():
        emit({"ratio": name, "value": round(value, 3)})


if __name__ == "__main__":
    main()
