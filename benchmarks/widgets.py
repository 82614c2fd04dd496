"""How long the explorers take to answer a change of a control: the time from setting the control's
value to the widget's new picture (PNG) being ready, as in JupyterLab minus the browser's round trip.

Prints one JSON line per change, then a table. Not a test: nothing is asserted.

    python benchmarks/widgets.py               # the three explorers of notebooks 03 and 04
    python benchmarks/widgets.py --repeat 7

The set-up is that of the notebooks on the embedded sample photos, with a small GABIC of random
weights (the ``small-cpu`` sizes: N=64, M=96, 8 slices, k=9) instead of a trained one (the time
does not depend on the weights):

- **RD explorer** (notebook 03): JPEG and WebP measured on the sample photos, a GABIC checkpoint's
  curve, and the six published Kodak curves. Changes: the metric (a figure not drawn before), the
  anchor (the figure is kept, the BD table is new), the selection.
- **Quality explorer** (notebook 03): the first sample photo, JPEG and the GABIC checkpoint.
  Changes: a JPEG quality not coded before, one coded before, the error-map tick, the codec.
- **Attention explorer** (notebook 04): the GABIC on the first sample photo. Changes: the node,
  the window, the head, k (the graph rebuilt on the same weights), the block.

Each change is timed ``--repeat`` times with a value not shown just before (for "not coded before",
a value never coded); the median is reported. One thread per process, as in the browser test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _common import emit, machine

#: The small-cpu preset's sizes (gabic.train.presets) and GABIC's k.
SMALL_GABIC = {"model": "gabic", "N": 64, "M": 96, "num_slices": 8, "knn": 9}


def timed(changes: list[Callable[[], object]]) -> list[float]:
    """The wall time of each change, in seconds."""
    times = []
    for change in changes:
        start = time.perf_counter()
        change()
        times.append(time.perf_counter() - start)
    return times


def report(widget: str, change: str, times: list[float]) -> dict:
    record = {"widget": widget, "change": change, "median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)}
    record["n"] = len(times)
    emit(record)
    return record


def values(control) -> list:
    """The values a selection control (Dropdown, SelectionSlider) can take (its options are values or (label, value))."""
    return [o[1] if isinstance(o, tuple) else o for o in control.options]


def setter(control, value) -> Callable[[], None]:
    def change() -> None:
        control.value = value

    return change


def rd_changes(curves: list, repeat: int) -> list[dict]:
    from gabic.widgets.rd import rd_explorer

    ex = rd_explorer(curves)
    metrics = [m for m in values(ex.metric) if m != ex.metric.value]
    records = []
    # A metric not drawn before: a new explorer each time (its figures are cached per selection and metric).
    fresh = [rd_explorer(curves) for _ in range(repeat)]
    records.append(report("rd", "metric, figure not drawn before", timed([setter(e.metric, metrics[0]) for e in fresh])))
    back = [setter(e.metric, "psnr-rgb") for e in fresh]
    records.append(report("rd", "metric, back to a drawn figure", timed(back)))
    anchors = [a for a in values(ex.anchor) if a != ex.anchor.value]
    records.append(report("rd", "anchor", timed([setter(ex.anchor, anchors[i % len(anchors)]) for i in range(repeat)])))
    labels = values(ex.methods)
    selections = [tuple(labels[: len(labels) - 1 - i % (len(labels) - 2)]) for i in range(repeat)]
    fresh = [rd_explorer(curves) for _ in range(repeat)]
    chosen = [setter(e.methods, s) for e, s in zip(fresh, selections, strict=True)]
    records.append(report("rd", "selection, figure not drawn before", timed(chosen)))
    return records


def quality_changes(photo: Path, measured: list, checkpoint: Path, repeat: int) -> list[dict]:
    from gabic.widgets.rd import quality_explorer

    jpeg = [m for m in measured if m["meta"]["codec"] == "jpeg"]
    records = []
    fresh = [quality_explorer(photo, codecs=jpeg, checkpoints=[checkpoint], device="cpu") for _ in range(repeat)]
    qualities = values(fresh[0].quality)[1:]
    new = [setter(e.quality, qualities[i % len(qualities)]) for i, e in enumerate(fresh)]
    records.append(report("quality", "JPEG quality, not coded before", timed(new)))
    first = values(fresh[0].quality)[0]
    records.append(report("quality", "JPEG quality, coded before", timed([setter(e.quality, first) for e in fresh])))
    records.append(report("quality", "error map and crops on", timed([setter(e.details, True) for e in fresh])))
    records.append(report("quality", "error map and crops off", timed([setter(e.details, False) for e in fresh])))
    group = values(fresh[0].codec)[-1]
    records.append(report("quality", "codec: GABIC checkpoint, first time", timed([setter(e.codec, group) for e in fresh])))
    records.append(report("quality", "codec: back to JPEG", timed([setter(e.codec, "jpeg") for e in fresh])))
    return records


def attention_changes(model, photo: Path, repeat: int) -> list[dict]:
    from gabic import viz
    from gabic.widgets.attention import attention_explorer

    capture = viz.capture(model, photo)
    ex = attention_explorer(model, capture=capture)
    records = []
    rows = [(ex.node_row.value + 1 + i) % (ex.node_row.max + 1) for i in range(repeat)]
    records.append(report("attention", "node", timed([setter(ex.node_row, r) for r in rows])))
    windows = [(ex.window_col.value + 1 + i) % (ex.window_col.max + 1) for i in range(repeat)]
    records.append(report("attention", "window", timed([setter(ex.window_col, c) for c in windows])))
    heads = [h for h in values(ex.head) if h != "mean"] + ["mean"]
    records.append(report("attention", "head", timed([setter(ex.head, heads[i % len(heads)]) for i in range(repeat)])))
    ks = [k for k in range(ex.k.min, ex.k.max + 1) if k != ex.k.value]
    records.append(report("attention", "k (graph rebuilt)", timed([setter(ex.k, ks[(i * 7) % len(ks)]) for i in range(repeat)])))
    blocks = values(ex.block)
    records.append(report("attention", "block", timed([setter(ex.block, blocks[(i + 1) % len(blocks)]) for i in range(repeat)])))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="changes timed per kind (default 5)")
    args = parser.parse_args()
    if args.repeat < 2:
        parser.error(f"--repeat must be 2 or more, got {args.repeat}")
    torch.set_num_threads(1)
    import matplotlib

    matplotlib.use("Agg")

    from gabic.checkpoints import save_checkpoint
    from gabic.data import samples
    from gabic.evaluate import evaluate_checkpoints, evaluate_codec
    from gabic.models import build_model

    torch.manual_seed(0)
    model = build_model(SMALL_GABIC).eval()
    photo = samples()[0]
    emit({"machine": machine(torch.device("cpu")), "photo": photo.name, "model": SMALL_GABIC, "repeat": args.repeat})
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "small-gabic.pth.tar"
        save_checkpoint(model, checkpoint, lmbda=0.013)
        measured = [evaluate_codec(name, None, workers=1) for name in ("jpeg", "webp")]
        learned = evaluate_checkpoints([checkpoint], device="cpu")
        curves = [*measured, *learned, "stf_mse", "wacnn_mse", "gabic_icip2024_digitized", "bpg444", "vtm", "jpeg"]
        records = rd_changes(curves, args.repeat)
        records += quality_changes(photo, measured, checkpoint, args.repeat)
        records += attention_changes(model, photo, args.repeat)
    print(f"\n{'widget':<10} {'change':<38} {'median s':>9} {'max s':>7}")
    for r in records:
        print(f"{r['widget']:<10} {r['change']:<38} {r['median_s']:>9.3f} {r['max_s']:>7.3f}")


if __name__ == "__main__":
    main()
