"""Training: ``fit()``, the ``gabic train`` command and ``torchrun -m gabic.train``.

The published recipe (GABIC / STF / WACNN): loss ``lambda * 255^2 * MSE + bpp`` with bpp
summed over the y and z likelihoods; Adam (lr 1e-4) on every parameter but the entropy
bottleneck's ``quantiles``, which have their own Adam (lr 1e-3) on the auxiliary loss;
gradient clipping at 1.0; ReduceLROnPlateau (factor 0.3, patience 4) on the validation loss.

Runs live in ``results/runs/NAME/``: ``last.pth.tar`` and ``best.pth.tar`` (best by the
validation loss on the validation images, never a test set), ``history.json`` (per-step and
per-validation metrics) and ``config.json``. A checkpoint holds the model (gabic's
``{"state_dict", "config"}``), both optimisers, the scheduler, the step and the random
states, so ``resume=True`` continues exactly: on the CPU an interrupted-and-resumed run
gives the same losses as an uninterrupted one. Ctrl-C saves ``last.pth.tar`` and stops.

Data order is a pure function of the seed: step ``s`` takes the batch at positions
``[s*B*W + r*B, ...)`` of an endless stream of per-epoch permutations of the training images
(rank ``r`` of ``W`` processes), and each crop depends on ``(seed, epoch, index)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from gabic.bitstream import config_hash
from gabic.checkpoints import read_checkpoint, save_checkpoint
from gabic.device import resolve_device
from gabic.errors import CheckpointError, DataError, GabicError
from gabic.files import write_atomic
from gabic.images import pad
from gabic.models import MODELS, ChannelContextCodec, build_model

__all__ = ["PRESETS", "TrainConfig", "fit", "initial_model", "main", "rd_loss", "resolve_config"]

log = logging.getLogger(__name__)

#: The published schedule: ReduceLROnPlateau factor and patience, Adam learning rates, clipping.
PAPER_LR, PAPER_AUX_LR, PAPER_CLIP = 1e-4, 1e-3, 1.0
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.3, 4

#: Named settings. "small-cpu" visibly learns on 2 CPU cores in a few minutes; "paper" is the
#: published model and recipe (a GPU job).
PRESETS: dict[str, dict[str, Any]] = {
    "small-cpu": {
        "model": "gabic",
        "N": 64,
        "M": 96,
        "num_slices": 8,
        "patch_size": 128,
        "batch_size": 4,
        "lr": 5e-4,
        "val_interval": 50,
    },
    "paper": {"model": "gabic", "N": 192, "M": 320, "num_slices": 10, "patch_size": 256, "batch_size": 16, "lr": PAPER_LR},
}


@dataclass
class TrainConfig:
    """Everything a run needs; stored in its checkpoints and in ``config.json``."""

    model: str = "gabic"
    N: int | None = None
    M: int | None = None
    num_slices: int | None = None
    knn: int = 9
    heads: int = 8
    backend: str = "dense"
    lmbda: float = 0.0130
    dataset: str | None = None
    val_dataset: str | None = None
    patch_size: int = 256
    batch_size: int = 16
    steps: int | None = None
    epochs: int | None = None
    lr: float = PAPER_LR
    aux_lr: float = PAPER_AUX_LR
    clip: float | None = PAPER_CLIP
    val_interval: int = 100
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    workers: int = 0
    name: str | None = None
    runs_dir: str = "results/runs"
    tensorboard: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def model_config(self) -> dict[str, Any]:
        """The ``build_model`` config of the architecture and its hyper-parameters."""
        cfg: dict[str, Any] = {"model": self.model}
        for key in ("N", "M", "num_slices"):
            if getattr(self, key) is not None:
                cfg[key] = getattr(self, key)
        if self.model == "gabic":
            cfg.update(knn=self.knn, heads=self.heads, backend=self.backend)
        elif self.model == "stf":
            cfg = {"model": "stf", **({"num_slices": self.num_slices} if self.num_slices else {})}
        return cfg


def rd_loss(out: dict[str, Any], x: Tensor, lmbda: float) -> dict[str, Tensor]:
    """The published rate-distortion loss of a forward pass on a batch ``x`` ``(B, 3, H, W)``.

    Returns ``loss = lmbda * 255^2 * mse + bpp``, ``mse`` (on [0, 1] pixels), ``bpp`` (bits of
    the y and z likelihoods per pixel) and ``psnr`` (from the batch MSE, for logging).
    """
    num_pixels = x.shape[0] * x.shape[2] * x.shape[3]
    bpp = sum(torch.log(v.float()).sum() for v in out["likelihoods"].values()) / (-math.log(2) * num_pixels)
    mse = F.mse_loss(out["x_hat"].float(), x.float())
    psnr = 10 * torch.log10(1.0 / mse.detach().clamp_min(1e-10))
    return {"loss": lmbda * 255**2 * mse + bpp, "mse": mse, "bpp": bpp, "psnr": psnr}


# ------------------------------------------------------------------------------------ data
class _Crops(Dataset):
    """Training crops addressed by ``(epoch, index)`` so that the order can be replayed."""

    def __init__(self, folder: Any):
        self.folder = folder

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, key: tuple[int, int]) -> Tensor:
        epoch, index = key
        self.folder.epoch = epoch
        return self.folder[index]


class _StreamSampler(Sampler):
    """Batches of ``(epoch, index)`` from the stream of per-epoch permutations, from ``start_step``."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int, world: int, start_step: int, steps: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world, self.start_step, self.steps = rank, world, start_step, steps

    def _perm(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __len__(self) -> int:
        return max(0, self.steps - self.start_step)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        per_step = self.batch_size * self.world
        for step in range(self.start_step, self.steps):
            first = step * per_step + self.rank * self.batch_size
            batch = []
            for pos in range(first, first + self.batch_size):
                epoch, i = divmod(pos, self.n)
                batch.append((epoch, self._perm(epoch)[i]))
            yield batch


def _datasets(cfg: TrainConfig):
    from gabic.data import ImageFolder

    train = ImageFolder(cfg.dataset, split="train", patch_size=cfg.patch_size, seed=cfg.seed)
    if cfg.val_dataset is not None:
        val = ImageFolder(cfg.val_dataset, split="test")
    else:
        # No validation folder: hold out the last image(s) of the training folder (never a test set).
        if len(train) < 2:
            raise DataError(f"{cfg.dataset or 'the sample photos'}: one image only; give a validation folder (--val-dataset)")
        held = max(1, len(train) // 10)
        val = ImageFolder(cfg.dataset, split="test")
        val.paths, train.paths = train.paths[-held:], train.paths[:-held]
        log.info("validation: holding out %s from the training images", ", ".join(p.name for p in val.paths))
    return train, val


# ------------------------------------------------------------------------------------ helpers
def _check(cfg: TrainConfig) -> None:
    if cfg.model not in MODELS:
        raise GabicError(f"--model must be one of {', '.join(sorted(MODELS))}, got {cfg.model!r}")
    if not (cfg.lmbda > 0 and math.isfinite(cfg.lmbda)):
        raise GabicError(f"lambda must be a positive number, got {cfg.lmbda}")
    for key in ("patch_size", "batch_size", "val_interval"):
        if getattr(cfg, key) < 1:
            raise GabicError(f"{key} must be at least 1, got {getattr(cfg, key)}")
    if cfg.patch_size % 64:
        raise GabicError(f"patch_size must be a multiple of 64 (the codecs downsample by 64), got {cfg.patch_size}")
    if (cfg.steps is None) == (cfg.epochs is None):
        raise GabicError("give either steps or epochs")
    if (cfg.steps or 1) < 1 or (cfg.epochs or 1) < 1:
        raise GabicError("steps and epochs must be at least 1")
    if cfg.precision not in ("fp32", "bf16"):
        raise GabicError(f"precision must be fp32 or bf16, got {cfg.precision!r}")
    if cfg.workers < 0:
        raise GabicError(f"workers must be >= 0, got {cfg.workers}")


def _rng_state() -> dict[str, Any]:
    """The random states, in types that ``torch.load(weights_only=True)`` reads back."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _optimizers(model: ChannelContextCodec, cfg: TrainConfig):
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(main, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux, lr=cfg.aux_lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE)
    return opt, aux_opt, sched


@torch.no_grad()
def validate(model: ChannelContextCodec, images: Dataset, lmbda: float, device: torch.device) -> dict[str, float]:
    """Mean RD loss, MSE, bpp and PSNR over whole validation images (padded to 64), eval mode."""
    was_training = model.training
    model.eval()
    totals = {"loss": 0.0, "mse": 0.0, "bpp": 0.0, "psnr": 0.0}
    for i in range(len(images)):
        x = images[i].unsqueeze(0).to(device)
        xp, unpad = pad(x)
        out = model(xp)
        h, w = x.shape[-2:]
        out_crop = {"x_hat": F.pad(out["x_hat"], unpad).clamp(0, 1), "likelihoods": out["likelihoods"]}
        # bpp over the image's own pixels (the padding's bits are paid for by the image)
        terms = rd_loss(out_crop, x, lmbda)
        terms["bpp"] = terms["bpp"] * (xp.shape[-2] * xp.shape[-1]) / (h * w)
        terms["loss"] = lmbda * 255**2 * terms["mse"] + terms["bpp"]
        for k in totals:
            totals[k] += float(terms[k])
    model.train(was_training)
    return {k: v / len(images) for k, v in totals.items()}


# ------------------------------------------------------------------------------------ fit
def resolve_config(preset: str | None = None, **options: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a run: the preset's settings, then ``options`` (None ignored).

    Checks every value (see :func:`fit`); 1000 steps when neither steps nor epochs is given.
    """
    if preset and preset not in PRESETS:
        raise GabicError(f"unknown preset {preset!r}: {', '.join(PRESETS)}")
    base = dict(PRESETS[preset]) if preset else {}
    base.update({k: v for k, v in options.items() if v is not None})
    unknown = set(base) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise GabicError(f"unknown training options: {', '.join(sorted(unknown))}")
    cfg = TrainConfig(**base)
    if cfg.steps is None and cfg.epochs is None:
        cfg.steps = 1000
    _check(cfg)
    return cfg


def initial_model(cfg: TrainConfig) -> ChannelContextCodec:
    """The model a run starts from (seeded with ``cfg.seed``, then built), on the CPU, train mode."""
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    return build_model(cfg.model_config())


def fit(
    preset: str | None = None,
    resume: bool | str | os.PathLike = False,
    progress: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> dict[str, list[dict[str, float]]]:
    """Train a model; return the history ``{"train": [per step], "val": [per validation]}``.

    Args:
        preset: ``"small-cpu"`` or ``"paper"`` (see :data:`PRESETS`); options override it.
        resume: ``True`` continues ``runs_dir/name/last.pth.tar``; a path continues that
            checkpoint. The options must describe the same architecture.
        progress: show a progress bar with live loss, bpp and PSNR.
        callback: called with each step's metrics (``{"step", "loss", ...}``), e.g. to plot live.
        **options: fields of :class:`TrainConfig`: model ("gabic", "wacnn", "stf"), N, M,
            num_slices, knn, heads, backend, lmbda, dataset (folder; default the sample photos),
            val_dataset (default: the last tenth of the training images, at least one), patch_size,
            batch_size (per process), steps or epochs, lr, aux_lr, clip, val_interval (steps),
            seed, device, precision ("fp32"; "bf16" autocast on a GPU), workers, name, runs_dir,
            tensorboard.

    Bad options, a missing or empty dataset and a checkpoint of another architecture are
    refused before any work starts. Only rank 0 writes files under ``torchrun``.
    """
    cfg = resolve_config(preset, **options)
    device = resolve_device(cfg.device)
    if cfg.precision == "bf16" and device.type != "cuda":
        raise GabicError("precision bf16 is autocast on a GPU; on the CPU train in fp32")
    distributed = torch.distributed.is_initialized()
    rank = torch.distributed.get_rank() if distributed else 0
    world = torch.distributed.get_world_size() if distributed else 1

    train_set, val_set = _datasets(cfg)
    cfg.extra["validation_images"] = [str(p) for p in val_set.paths]  # recorded in config.json
    if cfg.steps is None:
        cfg.steps = max(1, cfg.epochs * math.ceil(len(train_set) / (cfg.batch_size * world)))
    name = cfg.name or f"{cfg.model}-lmbda{cfg.lmbda:g}"
    cfg.name = name
    run_dir = Path(cfg.runs_dir) / name

    model = initial_model(cfg)
    start_ckpt = None
    if resume:
        path = run_dir / "last.pth.tar" if resume is True else Path(resume)
        start_ckpt = read_checkpoint(path)
        saved = start_ckpt.get("config", {})
        if "train" not in start_ckpt:
            raise CheckpointError(f"{path}: not a gabic training checkpoint (no optimiser state to resume from)")
        if config_hash(saved) != config_hash(model.config):  # the backend may change, nothing else
            raise CheckpointError(f"{path}: a {saved.get('model')} checkpoint ({saved}); this run is {model.config}")

    model = model.to(device).train()
    opt, aux_opt, sched = _optimizers(model, cfg)
    step, best, history = 0, math.inf, {"train": [], "val": []}
    if start_ckpt is not None:
        model.load_state_dict(start_ckpt["state_dict"])
        t = start_ckpt["train"]
        opt.load_state_dict(t["optimizer"])
        aux_opt.load_state_dict(t["aux_optimizer"])
        sched.load_state_dict(t["scheduler"])
        step, best, history = t["step"], t["best"], t["history"]
        _set_rng_state(t["rng"][rank] if isinstance(t["rng"], list) else t["rng"])
        log.info("resuming %s at step %d", name, step)

    net: torch.nn.Module = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    writer = _tensorboard(run_dir) if cfg.tensorboard and rank == 0 else None
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(run_dir / "config.json", json.dumps(asdict(cfg), indent=2, default=str).encode())

    sampler = _StreamSampler(len(train_set), cfg.batch_size, cfg.seed, rank, world, step, cfg.steps)
    # Its own generator: a DataLoader otherwise draws a seed from the global one when iterated,
    # which would shift the training noise of a resumed run.
    loader = DataLoader(
        _Crops(train_set), batch_sampler=sampler, num_workers=cfg.workers, generator=torch.Generator().manual_seed(cfg.seed)
    )

    def save(path_name: str, rng: dict[str, Any] | None = None) -> None:
        rng = rng or _rng_state()
        if distributed:
            gathered: list[Any] = [None] * world
            torch.distributed.all_gather_object(gathered, rng)  # every rank takes part
            rng = gathered
            if rank != 0:
                return
        state = {
            "optimizer": opt.state_dict(),
            "aux_optimizer": aux_opt.state_dict(),
            "scheduler": sched.state_dict(),
            "step": step,
            "best": best,
            "history": history,
            "rng": rng,
            "train_config": asdict(cfg),
        }
        save_checkpoint(model, run_dir / path_name, lmbda=cfg.lmbda, train=state)
        write_atomic(run_dir / "history.json", json.dumps(history).encode())

    bar = tqdm(total=cfg.steps, initial=step, desc=name, unit="step", disable=not (progress and rank == 0))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cfg.precision == "bf16" else nullcontext()
    snapshot, step_done = _rng_state(), True
    try:
        for batch in loader:
            snapshot, step_done = _rng_state(), False  # what a Ctrl-C inside this step rolls back to
            x = batch.to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            aux_opt.zero_grad(set_to_none=True)
            with autocast:
                out = net(x)
            terms = rd_loss(out, x, cfg.lmbda)
            terms["loss"].backward()
            if cfg.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            aux = model.aux_loss()
            aux.backward()
            aux_opt.step()
            step += 1
            step_done = True
            row = {
                "step": step,
                **{k: float(v.detach()) for k, v in terms.items()},
                "aux_loss": aux.item(),
                "lr": opt.param_groups[0]["lr"],
            }
            history["train"].append(row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.3f}", bpp=f"{row['bpp']:.3f}", psnr=f"{row['psnr']:.2f}")
            if writer is not None:
                for k in ("loss", "mse", "bpp", "psnr", "aux_loss", "lr"):
                    writer.add_scalar(f"train/{k}", row[k], step)
            if callback is not None:
                callback(row)
            if step % cfg.val_interval == 0 or step == cfg.steps:
                v = validate(model, val_set, cfg.lmbda, device)
                sched.step(v["loss"])
                history["val"].append({"step": step, **v})
                if writer is not None:
                    for k, value in v.items():
                        writer.add_scalar(f"val/{k}", value, step)
                if rank == 0:
                    log.info("step %d: validation loss %.4f, %.4f bpp, %.2f dB", step, v["loss"], v["bpp"], v["psnr"])
                if v["loss"] < best:
                    best = v["loss"]
                    save("best.pth.tar")
                save("last.pth.tar")
    except KeyboardInterrupt:
        log.warning("interrupted after step %d: saving %s", step, run_dir / "last.pth.tar")
        save("last.pth.tar", rng=None if step_done else snapshot)
        raise
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    return history


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GabicError("tensorboard is not installed: pip install tensorboard") from None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


# ------------------------------------------------------------------------------------ CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``gabic train`` and ``python -m gabic.train``."""
    p.add_argument("--preset", choices=sorted(PRESETS), help="small-cpu (a reduced GABIC for a CPU) or paper")
    p.add_argument("--model", choices=sorted(MODELS), help="architecture (default gabic)")
    p.add_argument("--N", type=int, help="transform channels (paper 192)")
    p.add_argument("--M", type=int, help="latent channels (paper 320)")
    p.add_argument("--num-slices", type=int, help="slices of the channel-wise context (paper 10)")
    p.add_argument("--knn", type=int, help="GABIC neighbours per node (paper 9)")
    p.add_argument("--heads", type=int, help="GABIC attention heads (paper 8)")
    p.add_argument("--backend", choices=("dense", "pyg"), help="GABIC attention backend")
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
    p.add_argument("--precision", choices=("fp32", "bf16"), help="fp32 (default) or bf16 autocast on a GPU")
    p.add_argument("--workers", type=int, help="data-loader processes (default 0)")
    p.add_argument("--name", help="run name (default MODEL-lambdaL): results/runs/NAME/")
    p.add_argument("--runs-dir", help="folder of runs (default results/runs)")
    p.add_argument("--resume", action="store_true", help="continue the run's last.pth.tar exactly")
    p.add_argument("--tensorboard", action="store_true", help="also log to results/runs/NAME/tensorboard")


_OPTION_NAMES = (
    "model",
    "N",
    "M",
    "num_slices",
    "knn",
    "heads",
    "backend",
    "lmbda",
    "dataset",
    "val_dataset",
    "patch_size",
    "batch_size",
    "steps",
    "epochs",
    "lr",
    "aux_lr",
    "clip",
    "val_interval",
    "seed",
    "device",
    "precision",
    "workers",
    "name",
    "runs_dir",
)


def run_from_args(args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    """Run ``fit`` from parsed arguments (under torchrun: one process per rank)."""
    options = {k: getattr(args, k) for k in _OPTION_NAMES if getattr(args, k, None) is not None}
    if args.tensorboard:
        options["tensorboard"] = True
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        use_cuda = torch.cuda.is_available() and options.get("device", "auto") != "cpu"
        if use_cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            options["device"] = f"cuda:{local}"
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    try:
        history = fit(preset=args.preset, resume=args.resume, **options)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return history


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gabic.train ...`` (and ``torchrun ... -m gabic.train ...``): ``gabic train ...``."""
    from gabic.cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
