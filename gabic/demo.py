"""``gabic demo``: what the toolkit does today, run on the embedded sample photographs.

For now: a real compress / decompress round trip of each sample photo with a checkpoint
(or, without one, an untrained small GABIC, labelled so), writing the .gabic files, the
decoded images and a summary with bpp, PSNR and timings. Later issues add training,
RD curves and attention maps here.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from gabic.bitstream import decode_image, encode_image
from gabic.data import samples
from gabic.device import resolve_device
from gabic.files import write_atomic
from gabic.images import crop, image_to_tensor, load_image, pad, tensor_to_image
from gabic.metrics import bpp_from_bytes, psnr
from gabic.models import GABIC

__all__ = ["DEMO_MODEL", "run_demo"]

log = logging.getLogger(__name__)

#: The small GABIC used when no checkpoint is given (fits a CPU).
DEMO_MODEL = dict(N=64, M=96, num_slices=8)


def run_demo(out: str | Path = "results/demo", checkpoint: str | Path | None = None, device: str = "auto") -> dict[str, Any]:
    """Round-trip every sample photo; write ``out/summary.json`` and return it."""
    out = Path(out)
    if checkpoint is not None:
        from gabic.checkpoints import load_checkpoint

        model, trained = load_checkpoint(checkpoint, device=device), True
    else:
        log.warning(
            "no --checkpoint given: using an untrained GABIC(%s); the numbers only show the machinery",
            ", ".join(f"{k}={v}" for k, v in DEMO_MODEL.items()),
        )
        torch.manual_seed(0)
        model, trained = GABIC(**DEMO_MODEL), False
        model.update(force=True)
        model = model.to(resolve_device(device)).eval()
    rows = []
    for path in tqdm(samples(), desc="demo", unit="image"):
        img, _ = load_image(path)
        t0 = time.perf_counter()
        data = encode_image(model, img)
        t1 = time.perf_counter()
        decoded = decode_image(model, data, source=path.name)
        t2 = time.perf_counter()
        with torch.no_grad():
            x = image_to_tensor(img).to(next(model.parameters()).device)
            xp, unpad = pad(x)
            forward = tensor_to_image(crop(model(xp)["x_hat"], unpad))
        write_atomic(out / f"{path.stem}.gabic", data)
        decoded.save(out / f"{path.stem}.png")
        w, h = img.size
        rows.append(
            {
                "image": path.name,
                "width": w,
                "height": h,
                "bytes": len(data),
                "bpp": bpp_from_bytes(len(data), h, w),
                "psnr": psnr(img, decoded),
                "psnr_forward": psnr(img, forward),
                "round_trip_identical": decode_image(model, data, source=path.name).tobytes() == decoded.tobytes(),
                "encoding_time": t1 - t0,
                "decoding_time": t2 - t1,
            }
        )
    summary = {
        "model": model.name,
        "config": model.config,
        "trained": trained,
        "checkpoint": str(checkpoint) if checkpoint else None,
        "images": rows,
    }
    write_atomic(out / "summary.json", json.dumps(summary, indent=2).encode())
    return summary
