"""The ``gabic`` command: ``compress``, ``decompress``, ``info``, ``evaluate``, ``rd``, ``evaluate-codec``, ``codecs``,
``data``, ``train`` and ``demo``.

Built as ``setup_args()`` -> ``main(argv)``; every user error is one line on stderr and
exit status 1.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from gabic._version import __version__
from gabic.analysis.compare import check_tile, checkpoint_labels, pair_names
from gabic.analysis.report import compare_report, save_report
from gabic.bitstream import decode_image, unpack
from gabic.checkpoints import load_checkpoint
from gabic.codecs import list_codecs
from gabic.data import KODAK_URL, download_kodak, list_images
from gabic.errors import GabicError
from gabic.evaluate import evaluate_checkpoints, evaluate_codec, write_results
from gabic.files import FIGURE_FORMATS, write_atomic
from gabic.images import load_image
from gabic.measurement import measure
from gabic.models import MODELS, option_owners
from gabic.names import display_name
from gabic.released import DEFAULT_DEST, LOCK_NAME, download, evaluate_released, local_status, missing
from gabic.results import load, save, slug
from gabic.train import PRECISIONS, PRESETS, TrainConfig, run_distributed
from gabic.train.loop import Terminated

log = logging.getLogger("gabic")

_IMAGE_FORMATS = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".ppm": "PPM", ".webp": "WEBP"}


def setup_args() -> argparse.ArgumentParser:
    """The argument parser of the ``gabic`` command."""
    parser = argparse.ArgumentParser(prog="gabic", description="GABIC learned image compression toolkit.")
    parser.add_argument("--version", action="version", version=f"gabic {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("compress", help="compress an image into a .gabic file")
    p.add_argument("image", type=Path, help="input image (any format and mode PIL reads)")
    p.add_argument("output", type=Path, help="output .gabic file")
    _model_args(p)

    p = sub.add_parser("decompress", help="decode a .gabic file into an image")
    p.add_argument("stream", type=Path, help="input .gabic file")
    p.add_argument("output", type=Path, help="output image (.png, .bmp, .tif, .ppm or lossless .webp)")
    _model_args(p)

    p = sub.add_parser("info", help="show the header of a .gabic file")
    p.add_argument("stream", type=Path)

    p = sub.add_parser("evaluate", help="RD points of checkpoints over a folder of images (real coding)")
    p.add_argument("checkpoints", type=Path, nargs="*", metavar="CKPT", help="checkpoint files or folders of them")
    p.add_argument(
        "--released",
        nargs="+",
        metavar="NAME",
        help="the released checkpoints of these architectures or names found in --dest (see gabic checkpoints list) instead",
    )
    p.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="where the released checkpoints are (default: checkpoints)")
    p.add_argument("--dataset", type=Path, help="folder of images (default: the embedded sample photos)")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="results file (.json); checkpoints of several architectures or configurations give one file per curve, "
        "named FILE_<curve>.json",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    _option_args(p, inference=True)
    _trust_arg(p)

    p = sub.add_parser("checkpoints", help="the catalogue of released checkpoints: list, download (verified)")
    what = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = what.add_parser("list", help="the catalogue, with what is already in --dest")
    q.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="the checkpoints folder (default: checkpoints)")
    q = what.add_parser(
        "download",
        help="download, verify (data only, keys and shapes, the SHA-256 digits a CompressAI zoo file's name carries; "
        "SHA-256 in checkpoints.lock) and unpack",
    )
    q.add_argument(
        "names", nargs="+", metavar="NAME", help="entries or architectures of the catalogue (see gabic checkpoints list), or all"
    )
    q.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="the checkpoints folder (default: checkpoints)")
    q.add_argument("--accept-changed", action="store_true", help="take a file that changed upstream and record its new SHA-256")
    q.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser(
        "compare", help="GABIC against WACNN over a folder: bits by region, redundancy, attention, BD-rate (report and figure sheet)"
    )
    p.add_argument("first", type=Path, nargs="+", metavar="CKPT", help="checkpoints of the first model (GABIC): files or folders")
    p.add_argument("--against", type=Path, nargs="+", required=True, metavar="CKPT", help="checkpoints of the second model (WACNN)")
    p.add_argument("--dataset", type=Path, help="folder of images (default: the embedded sample photos)")
    p.add_argument("--out", type=Path, required=True, help="output folder: report.json, report.pdf/.png and the data as CSV")
    p.add_argument("--names", nargs=2, metavar=("FIRST", "SECOND"), help="labels (default: the architectures, GABIC WACNN)")
    p.add_argument("--tile", type=int, default=64, help="tile side of the region comparison, a multiple of 64 (default 64)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    _trust_arg(p)

    p = sub.add_parser("rd", help="RD figures and a BD table from results files and published curves")
    p.add_argument(
        "results", nargs="+", metavar="RESULTS", help="results files (.json) or published curve names (gabic.results.list_published())"
    )
    p.add_argument("--anchor", help="BD-rate / BD-PSNR against this curve (a file, a published name or a curve's name)")
    p.add_argument("--out", type=Path, required=True, help="output folder for the figures and tables")
    p.add_argument(
        "--metric",
        nargs="+",
        choices=("psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb"),
        help="quality metrics to plot (default: each one some curve has)",
    )
    p.add_argument(
        "--formats", nargs="+", choices=FIGURE_FORMATS, default=list(FIGURE_FORMATS), help="figure formats (default: pdf svg png)"
    )
    p.add_argument(
        "--across-image-sets",
        action="store_true",
        help="compute BD values between curves measured on different image sets too (default: n/a, with the reason)",
    )
    p.add_argument(
        "--full-range",
        action="store_true",
        help="show every RD point (default: the bpp axis fits the learned codecs; classical ones go on beyond, noted on the figure)",
    )

    p = sub.add_parser("evaluate-codec", help="RD points of a classical codec over a folder of images")
    p.add_argument("codec", help="jpeg, webp, avif, heif, jpeg2000, jpegxl or bpg (see `gabic codecs`)")
    p.add_argument("--dataset", type=Path, help="folder of images (default: the embedded sample photos)")
    p.add_argument("--qualities", type=int, nargs="+", help="quality settings (default: the codec's list)")
    p.add_argument("--out", type=Path, required=True, help="results file (JSON, CompressAI's results schema)")
    p.add_argument("--workers", type=int, help="processes (default: all cores)")

    sub.add_parser("codecs", help="list the classical codecs and whether they are available here")

    p = sub.add_parser("train", help="train a model (same options as `torchrun -m gabic.train`)")
    _train_args(p)

    p = sub.add_parser("data", help="datasets")
    p.add_argument("dataset", choices=("kodak",), help="kodak: download the 24 Kodak images and check their pixels")
    p.add_argument("--dest", type=Path, default=Path("data/kodak"), help="destination folder (default: data/kodak)")
    p.add_argument("--url", help="download from this mirror instead of the official Kodak page")

    p = sub.add_parser("demo", help="run notebooks 01-05 headless on the sample photos; figures and index.html in --out")
    p.add_argument("--out", type=Path, default=Path("results/demo"), help="output folder (default: results/demo)")
    p.add_argument("--quick", action="store_true", help="tiny settings: checks an installation in about two minutes")
    p.add_argument("--dataset", type=Path, help="images for notebooks 02-03 (default: data/kodak if complete, else the samples)")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--notebooks", type=Path, help="folder of the notebooks 01-05 (default: notebooks/ of the gabic checkout)")
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted or failed demo (OUT-partial/), reusing its finished notebooks"
    )
    p.add_argument("--threads", type=int, help="CPU threads (default: the cores, fewer when the machine is busy)")
    return parser


def _option_args(p: argparse.ArgumentParser, inference: bool) -> None:
    """The model options of every registered architecture (:attr:`gabic.models.LearnedCodec.OPTIONS`;
    with ``inference``: those a loaded checkpoint takes), each once, its help naming the
    architectures that take it. A model refuses an option it does not take (one line)."""
    for name, owners in option_owners(inference).items():
        opt = owners[0].options()[name]
        choices = sorted({c for cls in owners for c in (cls.options()[name].choices or ())}) or None
        models = ", ".join(cls.name for cls in owners)
        helps = {cls.options()[name].help for cls in owners}
        text = opt.help if len(helps) == 1 else " / ".join(dict.fromkeys(re.sub(r"\s*\(.*\)$", "", h) for h in helps))
        p.add_argument(opt.flag, dest=name, type=opt.type if opt.type is not bool else None, choices=choices, help=f"{models}: {text}")


def _trust_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="unpickle checkpoints that hold more than data in full; this can run code from the file: only for files you trust",
    )


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, help="released, CompressAI zoo or gabic checkpoint")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    _option_args(p, inference=True)
    _trust_arg(p)


def _overrides(args: argparse.Namespace) -> dict:
    """The inference options given on the command line (those of :func:`_option_args`)."""
    return {key: getattr(args, key) for key in option_owners(inference=True) if getattr(args, key, None) is not None}


def _load(args: argparse.Namespace):
    """The model of ``--checkpoint`` with the command line's overrides, on ``--device``."""
    return load_checkpoint(args.checkpoint, device=args.device, trust=args.trust_checkpoint, **_overrides(args))


#: The options of ``gabic train`` that are :func:`gabic.train.fit` options of the same name: the
#: fields of :class:`~gabic.train.TrainConfig` but the flag and what a run records by itself.
_TRAIN_OPTIONS = tuple(f for f in TrainConfig.__dataclass_fields__ if f not in ("tensorboard", "extra", "options"))


def _train_args(p: argparse.ArgumentParser) -> None:
    """The options of ``gabic train`` (and ``python -m gabic.train``)."""
    p.add_argument("--preset", choices=sorted(PRESETS), help="small-cpu (a reduced model for a CPU) or paper")
    p.add_argument("--model", choices=sorted(MODELS), help=f"architecture (default {TrainConfig.model})")
    _option_args(p, inference=False)
    p.add_argument("--lambda", dest="lmbda", type=float, help="rate-distortion trade-off (default 0.0130)")
    p.add_argument("--dataset", help="folder of training images (default: the sample photos)")
    p.add_argument("--val-dataset", help="folder of validation images (default: hold out a tenth of the training images)")
    p.add_argument("--patch-size", type=int, help="square crop side, a multiple of 64 (default 256)")
    p.add_argument("--batch-size", type=int, help="crops per step and process (default 16)")
    p.add_argument("--steps", type=int, help="optimisation steps")
    p.add_argument("--epochs", type=int, help="passes over the training images (instead of --steps)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-4)")
    p.add_argument("--aux-lr", type=float, help="learning rate of the quantiles (default 1e-3)")
    p.add_argument("--clip", type=float, help="gradient norm clipping (default 1.0; 0 disables)")
    p.add_argument("--val-interval", type=int, help="validate every this many steps (default 100)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--precision", choices=PRECISIONS, help="fp32 (default) or bf16 autocast on a GPU")
    p.add_argument("--channels-last", action="store_true", default=None, help="convolutions on NHWC tensors (speed only)")
    p.add_argument(
        "--compile", action="store_true", default=None, help="torch.compile the training forward (speed only; compiles first)"
    )
    p.add_argument(
        "--skip-nonfinite",
        type=int,
        metavar="N",
        help="skip the update of up to N steps whose loss or gradient is not finite, counting them (default 0: stop at the first)",
    )
    p.add_argument("--workers", type=int, help="data-loader processes (default 0)")
    p.add_argument("--name", help="run name (default MODEL-lambdaL): results/runs/NAME/")
    p.add_argument("--runs-dir", help="folder of runs (default results/runs)")
    p.add_argument("--resume", action="store_true", help="continue the run's last.pth.tar exactly, with the run's own settings")
    p.add_argument("--overwrite", action="store_true", help="start again in a run folder that holds a run, deleting that run")
    p.add_argument("--tensorboard", action="store_true", help="also log to results/runs/NAME/tensorboard")


def cmd_compress(args: argparse.Namespace) -> int:
    _check_output(args.output, args.image, args.checkpoint)
    img, notes = load_image(args.image)
    for note in notes:
        log.warning("%s: %s", args.image, note)
    model = _load(args)
    m = measure(model, img)  # codes, decodes and checks the file: the summary is what evaluate reports
    write_atomic(args.output, m.data)
    print(f"{args.output}: {m.summary()} ({m.width}x{m.height}, {model.name}, {m.encoding_time:.2f} s)")
    return 0


def cmd_decompress(args: argparse.Namespace) -> int:
    fmt = _IMAGE_FORMATS.get(args.output.suffix.lower())
    if fmt is None:
        raise GabicError(f"{args.output}: unsupported output extension (use one of {', '.join(sorted(_IMAGE_FORMATS))})")
    _check_output(args.output, args.stream, args.checkpoint)
    stream = unpack(_read_stream_bytes(args.stream), str(args.stream))  # a damaged file fails before the model loads
    model = _load(args)
    t0 = time.perf_counter()
    img = decode_image(model, stream, source=str(args.stream))
    elapsed = time.perf_counter() - t0
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    write_atomic(args.output, buf.getvalue())
    print(f"{args.output}: {img.size[0]}x{img.size[1]} ({elapsed:.2f} s)")
    return 0


def _check_output(path: Path, *inputs: Path) -> None:
    """Refuse an output that is a folder or one of the command's inputs (it would be overwritten)."""
    if path.is_dir():
        raise GabicError(f"{path}: is a folder; give a file name for the output")
    for given in inputs:
        if path.resolve() == given.resolve() or (path.exists() and given.exists() and os.path.samefile(path, given)):
            raise GabicError(f"{path}: is also an input of this command; give another output file (nothing was written)")


def _read_stream_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise GabicError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    return path.read_bytes()


def cmd_info(args: argparse.Namespace) -> int:
    s = unpack(_read_stream_bytes(args.stream), str(args.stream))
    print(
        json.dumps(
            {
                "model": s.model_name,
                "format_version": s.version,
                "config_hash": s.config_hash.hex(),
                "fingerprint": s.fingerprint.hex(),
                "fingerprint_of": "the decoder's weights" if s.version >= 2 else "the entropy tables (format 1)",
                **({"written_on": s.device, "symbols_crc32": _checksum(s.symbols_crc)} if s.version >= 3 else {}),
                "image_size": [s.width, s.height],
                "z_shape": list(s.shape),
                "string_bytes": [[len(x) for x in g] for g in s.strings],
                "file_bytes": args.stream.stat().st_size,
            },
            indent=2,
        )
    )
    return 0


def _checksum(crc: int | None) -> str:
    return "none (the model reports no checksum of its symbols)" if crc is None else f"{crc:08x}"


def cmd_evaluate_codec(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise GabicError(f"--workers must be at least 1, got {args.workers}")
    _check_output(args.out, *(list_images(args.dataset) if args.dataset is not None else []))
    result = evaluate_codec(args.codec, dataset=args.dataset, qualities=args.qualities, workers=args.workers)
    write_results(result, args.out)
    r = result["results"]
    for i, q in enumerate(result["meta"]["quality"]):
        msssim = f", MS-SSIM {r['ms-ssim-rgb'][i]:.4f}" if "ms-ssim-rgb" in r else ""
        print(f"{args.codec} q={q}: {r['bpp'][i]:.4f} bpp, {r['psnr-rgb'][i]:.2f} dB{msssim}")
    if "omitted" in result["meta"]:
        print(f"note: {result['meta']['omitted']}")
    print(f"wrote {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.out.suffix != ".json":
        raise GabicError(f"{args.out}: the results file name must end in .json")
    if not args.checkpoints and not args.released:
        raise GabicError("give checkpoint files or folders, or --released NAME (e.g. --released gabic)")
    if args.checkpoints and args.released:
        raise GabicError(
            f"give checkpoint files or folders or --released NAME, not both (got {len(args.checkpoints)} checkpoint path(s) "
            f"and --released {' '.join(args.released)})"
        )
    _check_output(args.out, *args.checkpoints)
    if args.released:
        curves = evaluate_released(args.released, dataset=args.dataset, dest=args.dest, device=args.device, **_overrides(args))
    else:
        curves = evaluate_checkpoints(
            args.checkpoints, dataset=args.dataset, device=args.device, trust=args.trust_checkpoint, **_overrides(args)
        )
    part = [slug(c["meta"]["model"] if args.released else c["name"]) for c in curves]  # released: one curve per architecture
    outputs = [args.out] if len(curves) == 1 else [args.out.with_name(f"{args.out.stem}_{p}.json") for p in part]
    for curve in curves:
        r = curve["results"]
        for i, ckpt in enumerate(curve["meta"]["checkpoint"]):
            print(
                f"{curve['name']} {Path(ckpt).name}: {r['bpp'][i]:.4f} bpp ({r['bpp-likelihoods'][i]:.4f} estimated), "
                f"{r['psnr-rgb'][i]:.2f} dB, {r['encoding_time'][i]:.2f} s + {r['decoding_time'][i]:.2f} s"
            )
    for curve, out in zip(curves, outputs, strict=True):
        save(curve, out)
        print(f"wrote {out} ({curve['name']}, {len(curve['results']['bpp'])} point(s))")
    return 0


def cmd_checkpoints(args: argparse.Namespace) -> int:
    if args.action == "list":
        rows = local_status(args.dest)
        wn, wa, wl, ws = (
            max(len(title), *(len(value(r)) for r in rows))
            for title, value in (
                ("name", lambda r: r["name"]),
                ("architecture", lambda r: display_name(r["architecture"])),
                ("label", lambda r: r["quality"]),
                ("source", lambda r: r["source"]),
            )
        )
        print(f"{'name':{wn}} {'architecture':{wa}} {'lambda':>7}  {'label':{wl}} {'source':{ws}} in {args.dest}")
        for r in rows:
            lmbda = "-" if r["lambda"] is None else f"{r['lambda']:g}"
            here = "-" if r["file"] is None else f"{r['file'].name} ({r['lock']})"
            print(f"{r['name']:{wn}} {display_name(r['architecture']):{wa}} {lmbda:>7}  {r['quality']:{wl}} {r['source']:{ws}} {here}")
        print("not released:", *(f"  {m}" for m in missing()), sep="\n")
        return 0
    if args.dest.exists() and not args.dest.is_dir():
        raise GabicError(f"{args.dest}: exists and is not a folder")

    def done(entry, path, what):
        print(f"{entry.name}: {path} ({'already there, SHA-256 as in the lock' if what == 'verified' else 'downloaded and verified'})")

    paths = download(args.names, args.dest, accept_changed=args.accept_changed, quiet=args.quiet, on_file=done)
    print(f"{len(paths)} checkpoint(s) in {args.dest}; SHA-256 in {args.dest / LOCK_NAME}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise GabicError(f"{args.out}: exists and is not a folder; give a folder for the report")
    check_tile(args.tile)
    if args.names:
        pair_names("", "", args.names)
    report = compare_report(
        args.first,
        args.against,
        args.dataset,
        names=tuple(args.names) if args.names else None,
        device=args.device,
        tile=args.tile,
        trust=args.trust_checkpoint,
    )
    label = report["names"]  # {"first": ..., "second": ...}
    for name, curve in zip((label["first"], label["second"]), report["curves"], strict=True):
        r = curve["results"]
        points = ", ".join(f"{b:.4f} bpp {p:.2f} dB" for b, p in zip(r["bpp"], r["psnr-rgb"], strict=True))
        print(f"{name}: {points}")
    bd = report["bd"]
    if bd["bd_rate"] is None:
        print(f"BD-rate: n/a ({bd['note']})")
    else:
        print(f"BD-rate of {label['first']} against {label['second']}: {bd['bd_rate']:+.2f} % ({bd['method']})")
    for pair in report["pairs"]:
        share = [a["summary"]["share_tiles_b_fewer_bits"] for a in pair["images"].values()]
        print(
            f"{' vs '.join(checkpoint_labels(pair['first'], pair['second']))}: {label['second']} spends fewer bits on "
            f"{100 * sum(share) / len(share):.0f}% of the {args.tile}-pixel tiles (mean over {len(share)} image(s))"
        )
    written = save_report(report, args.out / "report.json", args.out / "report")
    print(f"wrote {len(written)} files to {args.out}: report.json, report.pdf, report.png and the data as CSV")
    return 0


def cmd_rd(args: argparse.Namespace) -> int:
    from gabic.plots import write_report  # needs matplotlib and pandas (the plots extra)

    if args.out.exists() and not args.out.is_dir():
        raise GabicError(f"{args.out}: exists and is not a folder")
    curves = [load(r) for r in args.results]
    kwargs = {"metrics": tuple(args.metric)} if args.metric else {}
    written = write_report(
        curves,
        args.out,
        anchor=args.anchor,
        formats=tuple(args.formats),
        across_image_sets=args.across_image_sets,
        xlim="full" if args.full_range else None,
        **kwargs,
    )
    for path in written:
        print(path)
    print(f"wrote {len(written)} files to {args.out}/")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    options = {k: getattr(args, k) for k in (*_TRAIN_OPTIONS, *option_owners()) if getattr(args, k, None) is not None}
    if args.resume and args.overwrite:
        raise GabicError("--resume continues a run and --overwrite deletes it: give one of them")
    history = run_distributed(
        preset=args.preset, resume=args.resume, overwrite=args.overwrite, tensorboard=args.tensorboard or None, **options
    )
    if history["val"] and int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 reports
        v = history["val"][-1]
        print(f"step {v['step']}: validation {v['bpp']:.4f} bpp, {v['psnr']:.2f} dB, loss {v['loss']:.4f}")
    return 0


def cmd_codecs(args: argparse.Namespace) -> int:
    for codec in list_codecs():
        state = "available" if codec.available else f"unavailable: {codec.unavailable_reason}"
        lo, hi = codec.quality_range
        direction = "higher is better" if codec.higher_is_better else "lower is better"
        print(f"{codec.name:>9}  {codec.label}  (quality {lo}..{hi}, {direction})  {state}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    paths = download_kodak(args.dest, base_url=args.url or KODAK_URL)
    print(f"{len(paths)} Kodak images verified in {args.dest}")
    return 0


class _DemoProgress:
    """The demo's progress on the terminal: a line per notebook, and the running cell with the
    time the notebook has taken so far, rewritten in place every second on a terminal (a line
    per cell otherwise)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self.label, self.cell, self.start = "", "", time.monotonic()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> _DemoProgress:
        if self.live:
            self.ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        with self.lock:
            if self.live and self.cell:
                self.stream.write("\n")
                self.stream.flush()
            self.cell = ""

    def notebook(self, i: int, n: int, name: str, seconds: float | None) -> None:
        with self.lock:
            if self.live and self.cell:
                self.stream.write("\r\033[K")
            self.cell = ""
            self.label = f"[{i}/{n}] {name}"
            if seconds is None:
                self.start = time.monotonic()
                self.stream.write(f"{self.label} ...\n")
            elif seconds < 0:
                self.stream.write(f"{self.label} kept from the partial run\n")
            else:
                self.stream.write(f"{self.label} done in {seconds:.0f} s\n")
            self.stream.flush()

    def cell_started(self, k: int, total: int, first_line: str) -> None:
        with self.lock:
            self.cell = f"cell {k}/{total} ({first_line})"
            self._write()

    def _write(self) -> None:
        elapsed = int(time.monotonic() - self.start)
        clock, cell = f"{elapsed // 60}:{elapsed % 60:02d}", self.cell
        if self.live:  # one terminal line, rewritten: cut the cell's text to the width
            room = shutil.get_terminal_size().columns - 1 - len(f"{self.label} ·  · {clock}")
            if len(cell) > room:
                cell = cell[: max(0, room - 1)] + "…"
        line = f"{self.label} · {cell} · {clock}"
        self.stream.write(f"\r\033[K{line}" if self.live else f"{line}\n")
        self.stream.flush()

    def _tick(self) -> None:
        while not self.stop.wait(1.0):
            with self.lock:
                if self.cell:
                    self._write()


def cmd_demo(args: argparse.Namespace) -> int:
    from gabic.demo import run_demo  # needs nbclient, nbformat, ipykernel (the notebooks extra)

    if args.threads is not None and args.threads < 1:
        raise GabicError(f"--threads must be at least 1, got {args.threads}")
    with _DemoProgress() as progress:
        summary = run_demo(
            out=args.out,
            quick=args.quick,
            device=args.device,
            dataset=args.dataset,
            notebooks=args.notebooks,
            on_notebook=progress.notebook,
            on_cell=progress.cell_started,
            resume=args.resume,
            threads=args.threads,
        )
    print(
        f"demo done in {summary['seconds']:.0f} s: {len(summary['figures'])} figures, {len(summary['results'])} results files; "
        f"open {args.out / 'index.html'}"
    )
    return 0


_COMMANDS = {
    "compress": cmd_compress,
    "decompress": cmd_decompress,
    "info": cmd_info,
    "evaluate": cmd_evaluate,
    "evaluate-codec": cmd_evaluate_codec,
    "checkpoints": cmd_checkpoints,
    "compare": cmd_compare,
    "rd": cmd_rd,
    "codecs": cmd_codecs,
    "train": cmd_train,
    "data": cmd_data,
    "demo": cmd_demo,
}


def _log_to_stderr(verbose: bool) -> None:
    """gabic's own messages at INFO (DEBUG with -v), other libraries' (nbclient, jupyter_client...)
    from WARNING up, one line each on the current standard error (a handler of this command's
    own: a second ``main()`` in one process, as in the tests, writes to its own stderr)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "gabic_cli", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("gabic: %(message)s"))
    handler.gabic_cli = True
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    logging.getLogger("gabic").setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gabic`` command; returns the exit status (2 for a usage error, as argparse's)."""
    try:
        args = setup_args().parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed by argparse
        return exit_.code if isinstance(exit_.code, int) else 2
    _log_to_stderr(args.verbose)
    try:
        return _COMMANDS[args.command](args)
    except GabicError as err:
        print(f"gabic: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # unwritable output folder, full disk...
        print(f"gabic: error: {err}", file=sys.stderr)
        return 1
    except (MemoryError, torch.OutOfMemoryError) as err:
        log.debug("out of memory", exc_info=True)
        print(
            f"gabic: error: out of memory ({type(err).__name__}); try a smaller image, the CPU, or a machine with more memory",
            file=sys.stderr,
        )
        return 1
    except ValueError as err:  # a bad argument that a library checked (its message names it)
        log.debug("bad argument", exc_info=True)
        print(f"gabic: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - never a stack trace on the terminal; -v logs it
        log.debug("unexpected error", exc_info=True)
        print(
            f"gabic: error: unexpected {type(err).__name__}: {err} (a bug in gabic: please report it; -v shows where)", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt as err:
        if isinstance(err, Terminated):  # SIGTERM during training: saved like Ctrl-C
            print("gabic: terminated by SIGTERM (the last checkpoint is saved; continue with --resume)", file=sys.stderr)
            return 128 + signal.SIGTERM
        after = {
            "train": " (the last checkpoint is saved; continue with --resume)",
            "demo": f" (the finished notebooks are kept in {getattr(args, 'out', '')}-partial/; continue with gabic demo --resume)",
        }
        print("gabic: interrupted" + after.get(args.command, ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
