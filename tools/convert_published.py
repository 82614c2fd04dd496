"""Convert the reference folder of published RD curves into gabic results files.

    python tools/convert_published.py SRC_DIR DEST_DIR [--clean]

SRC_DIR holds one JSON per source (``{"name", "source", "dataset", "metric_notes", "results":
{"bpp", "psnr", "ms-ssim", "ms-ssim-db"}, "timing_seconds_per_image"?, "source_meta"?}``), or,
for a digitised figure, ``"results"`` holding several curves keyed by legend name. DEST_DIR
(normally ``gabic/published``, package data) gets one file per curve in the results schema of
:mod:`gabic.results`. Numbers are copied unchanged; the source, dataset and notes go to
``meta``. Anything the script does not recognise (a top-level key, a metric, a legend entry)
stops it, so nothing is dropped silently. Files in DEST_DIR that no source produced are
reported, and removed with ``--clean``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from gabic.results import save, validate

#: Source metric keys -> results-schema keys (CompressAI's names).
METRICS = {"psnr": "psnr-rgb", "ms-ssim": "ms-ssim-rgb", "ms-ssim-db": "ms-ssim-db-rgb"}

#: Keys of a source file that are understood.
KNOWN_KEYS = {"name", "source", "dataset", "metric_notes", "results", "timing_seconds_per_image", "source_meta"}

#: Source file stem -> published name, where the stem is not a good name.
RENAMES = {"bpg444_x265_ycbcr": "bpg444"}

#: Source files left out, with the reason (printed when the script runs). CompressAI's 8-bit
#: "ms-ssim" runs hold exactly the bpp, PSNR and MS-SSIM of its 8-bit MSE runs (their own
#: "name" fields say "-mse-8bit"): they are MSE models filed under an MS-SSIM path.
EXCLUDE = {
    f"compressai_{model}_ms-ssim_ans_cuda_8bit": "same RD points as the MSE file of that model: MSE models under an MS-SSIM name"
    for model in ("bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018", "mbt2018-mean")
}

#: Short legend labels, by published name (others: the source name, or built from the file name).
LABELS = {
    "bpg444": "BPG 4:4:4 (x265)",
    "stf_mse": "STF (mse)",
    "stf_ms-ssim": "STF (ms-ssim)",
    "wacnn_mse": "WACNN (mse)",
    "wacnn_ms-ssim": "WACNN (ms-ssim)",
}

#: Curves of a multi-curve (digitised figure) source: (source stem, first word of the legend key)
#: -> (published name, label).
CURVES = {
    ("gabic_icip2024_digitized", "GABIC"): ("gabic_icip2024_digitized", "GABIC"),
    ("gabic_icip2024_digitized", "Zou2022"): ("gabic_icip2024_digitized_zou2022", "Zou2022 (WACNN as plotted by GABIC)"),
    ("gabic_icip2024_digitized", "VTM"): ("gabic_icip2024_digitized_vtm", "VTM (as plotted by GABIC)"),
}

#: What the name and description of a curve digitised from the GABIC figure must say.
GABIC_FIGURE = "digitised from the GABIC paper figure, not published numbers"

#: Single per-image timings that a source gives only in its notes (seconds, one operating point):
#: the "Codec Efficiency on Kodak" table of the STF README, quoted in the notes of these files.
SINGLE_TIMINGS = {
    "stf_mse": {"encoding_time": 0.15, "decoding_time": 0.15},
    "wacnn_mse": {"encoding_time": 0.12, "decoding_time": 0.12},
}
_SINGLE_TIMING_NOTE = "one figure for the whole curve, from the STF README table (point near 0.65 bpp); not per RD point"


class ConversionError(Exception):
    """A source file that this script does not understand."""


def convert_file(src_path: Path) -> dict[str, dict[str, Any]]:
    """Convert one source file into ``{published name: result}`` (one entry per curve)."""
    src = json.loads(src_path.read_text(encoding="utf-8"))
    unknown = set(src) - KNOWN_KEYS
    if unknown:
        raise ConversionError(f"{src_path}: unknown top-level keys {sorted(unknown)}")
    stem = src_path.stem
    res = src["results"]
    if "bpp" in res:
        name = RENAMES.get(stem, stem)
        return {name: _convert_curve(src, src_path, name, res, legend=None)}
    out = {}
    for legend, curve in res.items():
        if not isinstance(curve, dict) or "bpp" not in curve:
            raise ConversionError(f"{src_path}: results[{legend!r}] is neither a metric list nor a curve")
        key = (stem, legend.split(" (")[0])
        if key not in CURVES:
            raise ConversionError(f"{src_path}: no published name for the curve {legend!r}; add it to CURVES")
        name, _ = CURVES[key]
        out[name] = _convert_curve(src, src_path, name, curve, legend=legend)
    return out


def _convert_curve(src: dict[str, Any], src_path: Path, name: str, curve: dict[str, Any], legend: str | None) -> dict[str, Any]:
    notes = src["metric_notes"]
    n = len(curve["bpp"])
    results: dict[str, list] = {"bpp": curve["bpp"]}
    renamed = {}
    meta: dict[str, Any] = {}
    for key, values in curve.items():
        if key == "bpp":
            continue
        if key in ("lambda", "quality"):
            meta[key] = values
        elif key in METRICS:
            results[METRICS[key]] = values
            renamed[key] = METRICS[key]
        else:
            raise ConversionError(f"{src_path}: unknown metric {key!r}; add it to METRICS")

    timing = src.get("timing_seconds_per_image")
    if timing is not None:
        per_point = isinstance(timing, dict) and all(
            isinstance(timing.get(k), list) and len(timing[k]) == n for k in ("encoding_time", "decoding_time")
        )
        if per_point and set(timing) == {"encoding_time", "decoding_time"}:
            results["encoding_time"] = timing["encoding_time"]
            results["decoding_time"] = timing["decoding_time"]
        else:
            meta["timing_seconds_per_image"] = timing
    if name in SINGLE_TIMINGS:
        meta["timing_seconds_per_image"] = {**SINGLE_TIMINGS[name], "note": _SINGLE_TIMING_NOTE}

    digitized = legend is not None or "digitiz" in src["name"].lower() or "WebPlotDigitizer" in notes
    quality = _zoo_qualities(name, notes, curve["bpp"])
    if quality is not None and "quality" not in meta:
        meta["quality"] = quality

    dataset = src["dataset"]
    if legend is not None:
        label = CURVES[(src_path.stem, legend.split(" (")[0])][1]
        title = f"{label}, {GABIC_FIGURE}"
        description = (
            f"{label} on {_dataset_label(dataset)}, {GABIC_FIGURE}: marker positions read off {src['source']}; "
            "about +-0.003 bpp and +-0.03 dB (see meta.notes)"
        )
    else:
        title = _label(name, src["name"])
        what = title if name.startswith(("compressai_", "paper_")) else src["name"]
        description = f"{what} on {_dataset_label(dataset)}; numbers copied from {src['source']}"
        if digitized:
            description += " (read off a paper figure with WebPlotDigitizer by CompressAI: approximate)"

    meta = {
        "kind": "published",
        "dataset": dataset,
        "digitized": digitized,
        "source": src["source"],
        "source_name": src["name"],
        **({"source_curve": legend} if legend is not None else {}),
        "source_file": src_path.name,
        "renamed_keys": renamed,
        **meta,
        **({"source_meta": src["source_meta"]} if "source_meta" in src else {}),
        "notes": notes,
        "converted_by": "tools/convert_published.py",
    }
    result = {"name": title, "description": description, "results": results, "meta": meta}
    validate(result, source=f"{src_path} -> {name}")
    return result


def _label(name: str, source_name: str) -> str:
    """A short legend label."""
    if name in LABELS:
        return LABELS[name]
    m = re.fullmatch(r"compressai_(?P<model>.+?)_(?P<metric>mse|ms-ssim)_(?P<run>cpu|cuda|ans_cuda_8bit)", name)
    if m:
        run = {"cpu": "cpu", "cuda": "cuda", "ans_cuda_8bit": "cuda, 8-bit decoded"}[m["run"]]
        return f"CompressAI {m['model']} ({m['metric']}, {run})"
    if name.startswith("compressai_"):
        return f"CompressAI {source_name}"
    m = re.fullmatch(r"paper_(?P<model>.+?)(?:_(?P<metric>mse|ms-ssim))?", name)
    if m:
        return f"{m['model']} (paper{', ' + m['metric'] if m['metric'] else ''})"
    return source_name


def _zoo_qualities(name: str, notes: str, bpp: list[float]) -> list[int] | None:
    """Per-point qualities 1..N of a CompressAI zoo model run, when the notes state N and it fits."""
    if not re.fullmatch(r"compressai_.+_(mse|ms-ssim)_.+", name):
        return None
    m = re.search(r"[Qq]ualities (?:\(1\.\.(\d+)\)|1\.\.(\d+))", notes)
    if not m:
        return None
    count = int(m[1] or m[2])
    if count != len(bpp) or any(b >= a for a, b in zip(bpp[1:], bpp, strict=False)):
        raise ConversionError(f"{name}: notes say qualities 1..{count} but the points do not fit (count or bpp order)")
    return list(range(1, count + 1))


def _check_no_duplicates(converted: dict[str, tuple[Path, dict[str, Any]]]) -> None:
    """Refuse two curves with the same RD points: one of them is filed under the wrong name."""
    seen: dict[str, str] = {}
    for name, (_, result) in converted.items():
        points = {k: v for k, v in result["results"].items() if k not in ("encoding_time", "decoding_time")}
        key = json.dumps(points, sort_keys=True)
        if key in seen:
            raise ConversionError(f"{name} and {seen[key]} hold the same RD points; leave one out (EXCLUDE)")
        seen[key] = name


def _dataset_label(dataset: str) -> str:
    return {"kodak": "Kodak"}.get(dataset, dataset)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="folder of source JSON files (reference/published)")
    parser.add_argument("dest", type=Path, help="folder to write the results files to (gabic/published)")
    parser.add_argument("--clean", action="store_true", help="remove .json files in DEST that no source produced")
    args = parser.parse_args(argv)

    sources = sorted(args.src.glob("*.json"))
    if not sources:
        print(f"error: {args.src}: no .json files", file=sys.stderr)
        return 1
    converted: dict[str, tuple[Path, dict[str, Any]]] = {}
    try:
        for path in sources:
            if path.stem in EXCLUDE:
                print(f"{path.name}: left out ({EXCLUDE[path.stem]})")
                continue
            for name, result in convert_file(path).items():
                if name in converted:
                    raise ConversionError(f"{path}: published name {name!r} also made from {converted[name][0]}")
                converted[name] = (path, result)
        _check_no_duplicates(converted)
    except (ConversionError, KeyError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name, (path, result) in sorted(converted.items()):
        save(result, args.dest / f"{name}.json")
        print(f"{path.name} -> {name}.json ({len(result['results']['bpp'])} points)")
    stale = sorted(p for p in args.dest.glob("*.json") if p.stem not in converted)
    for p in stale:
        if args.clean:
            p.unlink()
            print(f"removed {p} (no source)")
        else:
            print(f"warning: {p} was made by no source (use --clean to remove it)", file=sys.stderr)
    print(f"{len(converted)} curves from {len(sources)} source files in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
