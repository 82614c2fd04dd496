"""The training loop: ``fit()`` and ``run_distributed()`` (what ``gabic train`` and ``torchrun -m gabic.train`` call).

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

import json
import logging
import math
import os
import random
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

try:
    import fcntl  # POSIX; on Windows runs are not locked
except ImportError:  # pragma: no cover - not on the CI's platform
    fcntl = None

from gabic.checkpoints import checkpoint_config, read_checkpoint, save_checkpoint
from gabic.data import ImageFolder, sample_split
from gabic.device import resolve_device
from gabic.errors import CheckpointError, DataError, GabicError
from gabic.files import write_atomic
from gabic.images import tensor_to_image
from gabic.measurement import forward_padded, forward_psnr
from gabic.models import LearnedCodec, config_identity, model_class
from gabic.train.config import (
    PLATEAU_FACTOR,
    PLATEAU_PATIENCE,
    PRESETS,
    RESUMABLE,
    TrainConfig,
    initial_model,
    resolve_config,
    resume_config,
)

__all__ = ["NonFiniteError", "Terminated", "cuda_training_settings", "fit", "rd_loss", "run_distributed", "validate"]

log = logging.getLogger(__name__)


def rd_loss(out: dict[str, Any], x: Tensor, lmbda: float) -> dict[str, Tensor]:
    """The published rate-distortion loss of a forward pass on a batch ``x`` ``(B, 3, H, W)``.

    Returns ``loss = lmbda * 255^2 * mse + bpp``, ``mse`` (on [0, 1] pixels), ``bpp`` (bits of
    the y and z likelihoods per pixel of ``x``) and ``psnr`` (from the batch MSE on float pixels,
    for the training log; :func:`validate` reports the 8-bit PSNR).
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


#: The side of the central crops of the training photos that a run on the sample photos validates on.
VALIDATION_CROP = 256


def _datasets(cfg: TrainConfig) -> tuple[ImageFolder, ImageFolder]:
    """The training crops and the validation images; records in ``cfg.extra`` what they are.

    - a validation folder given: its whole images;
    - the sample photos (no dataset, no validation folder): training on three of them, validation on
      the central :data:`VALIDATION_CROP` square of each of those, and the fourth, the test photo
      (:func:`gabic.data.sample_split`), used for neither (``extra["test_images"]``);
    - a training folder alone: the last tenth of its images (at least one) held out for validation,
      never a test set.
    """
    train = ImageFolder(cfg.dataset, split="train", patch_size=cfg.patch_size, seed=cfg.seed)
    if cfg.val_dataset is not None:
        val = ImageFolder(cfg.val_dataset, split="test")
    elif cfg.dataset is None:
        split = sample_split()
        train.paths = split["train"]
        val = ImageFolder(None, split="test", centre_crop=VALIDATION_CROP)
        val.paths = split["train"]
        cfg.extra["validation_crop"] = VALIDATION_CROP
        cfg.extra["test_images"] = [str(p) for p in split["test"]]
        log.info(
            "sample photos: training on %s, validating on their central %dx%d crops; %s, the test photo, is used for neither",
            ", ".join(p.name for p in split["train"]),
            VALIDATION_CROP,
            VALIDATION_CROP,
            ", ".join(p.name for p in split["test"]),
        )
    else:
        if len(train) < 2:
            raise DataError(f"{cfg.dataset}: one image only; give a validation folder (--val-dataset)")
        held = max(1, len(train) // 10)
        val = ImageFolder(cfg.dataset, split="test")
        val.paths, train.paths = train.paths[-held:], train.paths[:-held]
        log.info("validation: holding out %s from the training images", ", ".join(p.name for p in val.paths))
    cfg.extra["validation_images"] = [str(p) for p in val.paths]  # recorded in config.json
    return train, val


# ------------------------------------------------------------------------------------ helpers
class NonFiniteError(GabicError):
    """A training step whose loss, gradient or weights are not finite: the run stops there."""


#: How the stop and skip messages name the values a step checks.
_VALUE_NAMES = {"loss": "the loss", "grad_norm": "the gradient norm", "aux_loss": "the auxiliary (quantile) loss"}


#: A run folder holds a run when it holds one of these; all of _RUN_FILES are the run's.
_RUN_MARKERS = ("last.pth.tar", "best.pth.tar", "history.json")
_RUN_FILES = (*_RUN_MARKERS, "config.json", "tensorboard")


def _refuse_to_replace(run_dir: Path, locked: bool = False) -> None:
    """A :class:`GabicError` saying how to go on when ``run_dir`` holds a run (:data:`_RUN_MARKERS`); when
    another training is writing it (unless this process holds its lock, ``locked``), that it is."""
    if not locked:
        _RunLock(run_dir).check_free()
    if _holds_run(run_dir):
        raise GabicError(
            f"{run_dir}: holds a run{_trained_to(run_dir)}; continue it with --resume, or start again "
            "under another --name, or with --overwrite (which deletes it)"
        )


def _holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run: a checkpoint or a history (:data:`_RUN_MARKERS`)."""
    return any((run_dir / name).exists() for name in _RUN_MARKERS)


def _trained_to(run_dir: Path) -> str:
    """`` (trained to step N)`` from the run's ``history.json``, or "" when it says nothing."""
    try:
        rows = json.loads((run_dir / "history.json").read_text())["train"]
        return f" (trained to step {rows[-1]['step']})" if rows else ""
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return ""


def _non_finite_weights(model: torch.nn.Module) -> list[str]:
    """Names of the floating-point parameters and buffers that hold a NaN or an infinity (one
    synchronisation for all)."""
    state = [(k, t) for k, t in model.state_dict().items() if t.is_floating_point() and t.numel()]
    if not state:
        return []
    finite = torch.stack([torch.isfinite(t).all() for _, t in state]).tolist()
    return [k for (k, _), ok in zip(state, finite, strict=True) if not ok]


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


def _optimizers(model: LearnedCodec, cfg: TrainConfig):
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    opt = torch.optim.Adam(main, lr=cfg.lr)
    aux_opt = torch.optim.Adam(aux, lr=cfg.aux_lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE)
    return opt, aux_opt, sched


@torch.no_grad()
def validate(model: LearnedCodec, images: Dataset, lmbda: float, device: torch.device) -> dict[str, float]:
    """Mean RD loss, MSE, bpp and PSNR over whole validation images, eval mode.

    Each image goes through :func:`gabic.measurement.forward_padded` (padded to 64, the
    reconstruction cropped back): ``bpp`` counts the likelihoods' bits over the image's own pixels
    (the padding's bits are paid for by the image), as the evaluation's ``bpp-likelihoods``;
    ``mse`` and ``loss`` use the float reconstruction, as training does; ``psnr`` is on the 8-bit
    rounded reconstruction, as every other PSNR gabic reports.
    """
    was_training = model.training
    model.eval()
    totals = {"loss": 0.0, "mse": 0.0, "bpp": 0.0, "psnr": 0.0}
    for i in range(len(images)):
        x = images[i].unsqueeze(0).to(device)
        out, x_hat, _ = forward_padded(model, x)
        terms = rd_loss({"x_hat": x_hat, "likelihoods": out["likelihoods"]}, x, lmbda)
        terms["psnr"] = forward_psnr(tensor_to_image(x), x_hat)
        for k in totals:
            totals[k] += float(terms[k])
    model.train(was_training)
    return {k: v / len(images) for k, v in totals.items()}


# ------------------------------------------------------------------------------------ fit
class _Run:
    """The state of one training process: model, optimisers, scheduler, step, best loss, history;
    its methods are the steps of :func:`fit`."""

    def __init__(self, cfg: TrainConfig, device: torch.device, rank: int, world: int):
        self.cfg, self.device, self.rank, self.world = cfg, device, rank, world
        self.run_dir = Path(cfg.runs_dir) / cfg.name
        self.model = initial_model(cfg)
        self.step, self.best = 0, math.inf
        self.history: dict[str, list[dict[str, float]]] = {"train": [], "val": []}
        self.writer = None
        self._lock: _RunLock | None = None
        self._created = False
        self._saved_step: int | None = None  # the step of the last.pth.tar on disk, if any

    # ---------------------------------------------------------------- setting up
    def restore(self, ckpt: dict[str, Any], path: Path) -> dict[str, Any]:
        """Load the checkpoint ``ckpt`` (read from ``path``) to resume from, after checking it holds
        this run's model (:func:`gabic.train.resume_config` made the settings the run's). Returns
        its training state."""
        saved = checkpoint_config(ckpt, path)
        if config_identity(saved) != self.model.identity():
            raise CheckpointError(f"{path}: a {saved.get('model')} checkpoint ({saved}); this run is {self.model.config}")
        self.model.load_state_dict(ckpt["state_dict"])
        return ckpt["train"]

    def lock(self) -> None:
        """Take the run folder for this process (rank 0): a second training writing the same run
        is refused, naming the first; the lock goes with the process, even if it is killed."""
        if self.rank != 0:
            return
        self._created = not self.run_dir.exists()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        lock = _RunLock(self.run_dir)
        lock.acquire()  # a second writer stops here, before this run holds anything
        self._lock = lock

    def claim(self, resuming: bool, overwrite: bool) -> None:
        """A new run never replaces one: a run folder that holds a run (a checkpoint or a history)
        is refused unless ``resuming`` continues it or ``overwrite`` asks to delete it first."""
        if self.rank != 0 or resuming:
            return
        if not overwrite:
            _refuse_to_replace(self.run_dir, locked=True)
            return
        if not _holds_run(self.run_dir):
            return
        held = [self.run_dir / name for name in _RUN_FILES if (self.run_dir / name).exists()]
        log.warning("%s: deleting the run it held%s (overwrite)", self.run_dir, _trained_to(self.run_dir))
        for path in held:
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    def prepare(self, state: dict[str, Any] | None, changed: dict[str, list[Any]] | None = None) -> None:
        """Model on its device, optimisers and scheduler (restored from ``state`` when resuming),
        DistributedDataParallel under torchrun, the run folder's ``config.json``."""
        memory_format = torch.channels_last if self.cfg.channels_last else torch.preserve_format
        self.model = self.model.to(self.device, memory_format=memory_format).train()
        self.opt, self.aux_opt, self.sched = _optimizers(self.model, self.cfg)
        if state is not None:
            self.opt.load_state_dict(state["optimizer"])
            self.aux_opt.load_state_dict(state["aux_optimizer"])
            self.sched.load_state_dict(state["scheduler"])
            self.step, self.best, self.history = state["step"], state["best"], state["history"]
            self._saved_step = self.step
            _set_rng_state(state["rng"][self.rank] if isinstance(state["rng"], list) else state["rng"])
            resume = {"step": self.step, "time": time.strftime("%Y-%m-%d %H:%M:%S"), "changed": changed or {}}
            self.history.setdefault("resumes", []).append(resume)
            log.info("resuming %s at step %d%s", self.cfg.name, self.step, f" ({_changes(changed)})" if changed else "")
        self.net: torch.nn.Module = self.model
        if torch.distributed.is_initialized():
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if self.cfg.compile:
            # The training forward only (fixed crop size, so static shapes); validation, on whole
            # images of any size, and the checkpoints use the model itself.
            self.net = torch.compile(self.net, dynamic=False)
        self.writer = _tensorboard(self.run_dir) if self.cfg.tensorboard and self.rank == 0 else None
        if self.rank == 0:
            write_atomic(self.run_dir / "config.json", json.dumps(asdict(self.cfg), indent=2, default=str).encode())

    def loader(self, train_set: Dataset) -> DataLoader:
        """Batches from the current step on, in the seed's order."""
        sampler = _StreamSampler(len(train_set), self.cfg.batch_size, self.cfg.seed, self.rank, self.world, self.step, self.cfg.steps)
        # Its own generator: a DataLoader otherwise draws a seed from the global one when iterated,
        # which would shift the training noise of a resumed run.
        generator = torch.Generator().manual_seed(self.cfg.seed)
        return DataLoader(_Crops(train_set), batch_sampler=sampler, num_workers=self.cfg.workers, generator=generator)

    # ---------------------------------------------------------------- steps
    def train_step(self, batch: Tensor) -> dict[str, float] | None:
        """One optimisation step on a batch; returns its logged row, or None for a skipped step.

        The loss terms and the gradient norm (computed for clipping; for the log when clipping is
        off) are read back together, once, before the optimiser steps: a non-finite one never
        reaches the weights. It stops the run (:class:`NonFiniteError`), or, with
        ``skip_nonfinite``, skips this step's update (counted in ``history["skipped"]``) until that
        many were skipped. The auxiliary loss is checked the same way before its own step.
        """
        x = batch.to(self.device, non_blocking=True)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        self.opt.zero_grad(set_to_none=True)
        self.aux_opt.zero_grad(set_to_none=True)
        with self.autocast():
            out = self.net(x)
        terms = rd_loss(out, x, self.cfg.lmbda)
        terms["loss"].backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.cfg.clip:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.clip)
        else:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        names = ("loss", "mse", "bpp", "psnr", "grad_norm")
        values = torch.stack([terms[k].detach().float() for k in names[:4]] + [grad_norm.float()])
        row = {"step": self.step + 1, **dict(zip(names, self._read(values), strict=True))}
        if self._non_finite(row, ("loss", "grad_norm")):
            return None
        self.opt.step()
        aux = self.model.aux_loss()
        aux.backward()
        row["aux_loss"] = self._read(aux.detach().float().reshape(1))[0]
        if self._non_finite(row, ("aux_loss",)):
            return None
        self.aux_opt.step()
        self.step += 1
        row["lr"] = self.opt.param_groups[0]["lr"]
        self.history["train"].append(row)
        self._log("train", row, ("loss", "mse", "bpp", "psnr", "grad_norm", "aux_loss", "lr"))
        return row

    def autocast(self):
        """The forward pass's precision: bf16 autocast on the run's device, or nothing."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.cfg.precision == "bf16" else nullcontext()

    def _read(self, values: Tensor) -> list[float]:
        """``values`` as floats (one synchronisation); under torchrun a value that is not finite on
        any process is read as NaN on all, so that every process stops or skips together."""
        if torch.distributed.is_initialized():
            bad = (~torch.isfinite(values)).any().float()
            torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
            values = torch.where(bad > 0, torch.full_like(values, math.nan), values)
        return values.tolist()

    def _non_finite(self, row: dict[str, float], keys: tuple[str, ...]) -> bool:
        """Whether the step must be dropped for a value of ``keys`` that is not finite: stop
        (:class:`NonFiniteError`), or skip while fewer than ``skip_nonfinite`` steps were skipped."""
        bad = next((k for k in keys if not math.isfinite(row[k])), None)
        if bad is None:
            return False
        step, skipped = row["step"], self.history.get("skipped", [])
        if len(skipped) < self.cfg.skip_nonfinite:
            skipped = self.history.setdefault("skipped", skipped)
            skipped.append({"step": step, "value": bad})
            self.step += 1  # the batch is used up, as a mixed-precision trainer's skipped step
            self.opt.zero_grad(set_to_none=True)
            self.aux_opt.zero_grad(set_to_none=True)
            log.warning(
                "step %d: %s is %s; update skipped (%d of the %d allowed by skip_nonfinite)",
                step,
                _VALUE_NAMES[bad],
                row[bad],
                len(skipped),
                self.cfg.skip_nonfinite,
            )
            return True
        raise NonFiniteError(self._stop_message(step, f"{_VALUE_NAMES[bad]} is {row[bad]}"))

    def _stop_message(self, step: int, what: str) -> str:
        """The one line of a run stopped at step ``step`` because ``what``: where, what stays, what to try."""
        cfg = self.cfg
        config, cls = self.model.config, type(self.model)
        setting = ", ".join([cfg.precision, *(f"{k} {config[k]}" for k in cls.options(inference=True) if k in cls.UNHASHED)])
        skipped = self.history.get("skipped", [])
        if skipped:
            setting += f", after {len(skipped)} skipped step{'s' * (len(skipped) > 1)}"
        last = self.run_dir / "last.pth.tar"
        saved = self._saved_step
        kept = f"{last} (step {saved}) is the last checkpoint" if saved is not None else "no checkpoint was written"
        tries = ["--precision fp32"] if cfg.precision != "fp32" else []
        tries.append(f"a lower --lr (now {cfg.lr:g})")
        return f"step {step}: {what} ({setting}); training stopped, {kept}; try {' or '.join(tries)}"

    def validate_and_save(self, val_set: Dataset) -> None:
        """Validate, step the scheduler on the validation loss, save ``best`` when it improved and ``last``;
        a validation that is not finite stops the run (:class:`NonFiniteError`) before anything is saved."""
        try:
            v = validate(self.model, val_set, self.cfg.lmbda, self.device)
        except ValueError:  # the likelihoods' check (metrics.bpp_from_likelihoods): NaN or outside (0, 1]
            what = "the validation pass gave likelihoods that are NaN or not in (0, 1]"
            raise NonFiniteError(self._stop_message(self.step, what)) from None
        if not all(math.isfinite(x) for x in v.values()):
            raise NonFiniteError(self._stop_message(self.step, f"the validation loss is {v['loss']}"))
        self.sched.step(v["loss"])
        self.history["val"].append({"step": self.step, **v})
        self._log("val", v, tuple(v))
        if self.rank == 0:
            log.info("step %d: validation loss %.4f, %.4f bpp, %.2f dB", self.step, v["loss"], v["bpp"], v["psnr"])
        if v["loss"] < self.best:
            self.best = v["loss"]
            self.save("best.pth.tar")
        self.save("last.pth.tar")

    def save(self, name: str, rng: dict[str, Any] | None = None) -> None:
        """Write a checkpoint (model, optimisers, scheduler, step, history, every rank's random
        states) and ``history.json``; under torchrun every rank takes part and rank 0 writes."""
        rng = rng or _rng_state()
        bad = _non_finite_weights(self.model)
        if bad:  # never a checkpoint that cannot be used; the last good one stays
            raise NonFiniteError(self._stop_message(self.step, f"{len(bad)} weight tensors are not finite (first {bad[0]})"))
        if torch.distributed.is_initialized():
            gathered: list[Any] = [None] * self.world
            torch.distributed.all_gather_object(gathered, rng)
            rng = gathered
            if self.rank != 0:
                return
        state = {
            "optimizer": self.opt.state_dict(),
            "aux_optimizer": self.aux_opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "step": self.step,
            "best": self.best,
            "history": self.history,
            "rng": rng,
            "train_config": asdict(self.cfg),
        }
        with _INTERRUPTS.writing():  # Ctrl-C or SIGTERM now waits for both files to be whole
            save_checkpoint(self.model, self.run_dir / name, lmbda=self.cfg.lmbda, train=state)
            write_atomic(self.run_dir / "history.json", json.dumps(self.history).encode())
            if name == "last.pth.tar":
                self._saved_step = self.step

    def _log(self, group: str, row: dict[str, float], keys: tuple[str, ...]) -> None:
        if self.writer is not None:
            for k in keys:
                self.writer.add_scalar(f"{group}/{k}", row[k], self.step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
            if self._created and not any(self.run_dir.iterdir()):  # failed before writing anything: no empty run left
                self.run_dir.rmdir()


def fit(
    preset: str | None = None,
    resume: bool | str | os.PathLike = False,
    overwrite: bool = False,
    progress: bool = True,
    callback: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> dict[str, list[dict[str, float]]]:
    """Train a model; return the history ``{"train": [per step], "val": [per validation]}``.

    Args:
        preset: ``"small-cpu"`` or ``"paper"`` (see :data:`gabic.train.PRESETS`); options override it.
        resume: ``True`` continues ``runs_dir/name/last.pth.tar``; a path continues that
            checkpoint. The run keeps the settings of its experiment: those not given are the
            recorded ones (steps and epochs too), and one given with another value is refused;
            only :data:`gabic.train.RESUMABLE` (steps, epochs, val_interval, device, workers,
            tensorboard, channels_last, compile, skip_nonfinite) may change. ``history["resumes"]``
            records each resume (its step, time and what changed).
        overwrite: start again in a run folder that holds a run, deleting it first (without it,
            and without ``resume``, such a folder is refused).
        progress: show a progress bar with live loss, bpp and PSNR.
        callback: called with each step's metrics (``{"step", "loss", ...}``), e.g. to plot live.
        **options: fields of :class:`~gabic.train.TrainConfig`: model (a name of
            :data:`gabic.models.MODELS`: "gabic", "wacnn", "stf", "mbt2018-mean" ...), the model's
            options (its :attr:`~gabic.models.LearnedCodec.OPTIONS`: N, M, num_slices, knn, heads,
            backend, knn_rule for GABIC; one it does not take is refused), lmbda, dataset (folder; default the
            sample photos), val_dataset (default: the last tenth of the training images, at least
            one), patch_size, batch_size (per process), steps or epochs, lr, aux_lr, clip,
            val_interval (steps), seed, device, precision ("fp32"; "bf16" autocast on a GPU),
            channels_last (convolutions on NHWC tensors), compile (``torch.compile`` of the
            training forward, static shapes), skip_nonfinite (default 0), workers, name, runs_dir,
            tensorboard. channels_last and compile change the speed, not the model: the
            numbers agree with the default within float rounding.

    The loss, the gradient norm and the auxiliary loss are checked at every step, before the
    optimisers use them: the first that is not finite stops the run with a
    :class:`NonFiniteError` naming the step, the value, the precision (and backend) and what to
    try; the last checkpoint written stays and no checkpoint with non-finite weights is ever
    written. With ``skip_nonfinite=N`` up to N such steps are skipped instead (no update; listed
    in ``history["skipped"]`` and logged), as mixed-precision trainers do.

    Ctrl-C (SIGINT) and SIGTERM (a scheduler's time limit or pre-emption) save ``last.pth.tar``
    (rolled back to the start of an unfinished step) and stop, so that ``resume`` continues exactly.

    Bad options, a missing or empty dataset and a checkpoint of another architecture are
    refused before any work starts. Only rank 0 writes files under ``torchrun``.
    """
    cfg = resolve_config(preset, **options)
    cfg.name = cfg.name or f"{cfg.model}-lmbda{cfg.lmbda:g}"
    ckpt, path, changed = None, None, {}
    if resume:
        path = Path(cfg.runs_dir) / cfg.name / "last.pth.tar" if resume is True else Path(resume)
        ckpt = read_checkpoint(path)
        if not isinstance(ckpt.get("train"), dict) or not isinstance(ckpt.get("config"), dict):
            raise CheckpointError(f"{path}: not a gabic training checkpoint (no optimiser state to resume from)")
        model_config = checkpoint_config(ckpt, path)  # the model's own config decides
        takes = model_class(model_config).options()
        saved = {
            **ckpt["train"].get("train_config", {}),
            "model": model_config["model"],
            "options": {k: v for k, v in model_config.items() if k in takes},
        }
        preset_settings = PRESETS.get(preset, {}) if preset else {}
        given = set(preset_settings) | set(preset_settings.get("options", {})) | {k for k, v in options.items() if v is not None}
        given |= set(options.get("options") or {})
        cfg = resume_config(cfg, saved, given, str(path))
        changed = {k: [saved[k], getattr(cfg, k)] for k in RESUMABLE if k in saved and saved[k] != getattr(cfg, k)}
    if not resume and not overwrite:  # refused before any work (checked again under the run's lock)
        _refuse_to_replace(Path(cfg.runs_dir) / cfg.name)
    device = resolve_device(cfg.device)
    if cfg.precision == "bf16" and device.type != "cuda":
        raise GabicError("precision bf16 is autocast on a GPU; on the CPU train in fp32")
    distributed = torch.distributed.is_initialized()
    rank = torch.distributed.get_rank() if distributed else 0
    world = torch.distributed.get_world_size() if distributed else 1
    train_set, val_set = _datasets(cfg)
    if cfg.steps is None:
        cfg.steps = max(1, cfg.epochs * math.ceil(len(train_set) / (cfg.batch_size * world)))

    run = _Run(cfg, device, rank, world)
    state = None
    if ckpt is not None:
        state = run.restore(ckpt, path)
        if state["step"] >= cfg.steps:
            log.warning(
                "%s is already at step %d of the %d asked for: nothing to do (give more steps to continue)",
                cfg.name,
                state["step"],
                cfg.steps,
            )
            return state["history"]
    try:
        run.lock()
        run.claim(resuming=state is not None, overwrite=overwrite)
        run.prepare(state, changed)
        with cuda_training_settings(device), _INTERRUPTS.installed():
            _loop(run, run.loader(train_set), val_set, progress, callback)
    finally:
        run.close()
    skipped = run.history.get("skipped", [])
    if skipped and rank == 0:
        log.warning(
            "%s: %d steps skipped for a value that was not finite (steps %s)",
            cfg.name,
            len(skipped),
            ", ".join(str(r["step"]) for r in skipped),
        )
    return run.history


class Terminated(KeyboardInterrupt):
    """SIGTERM during :func:`fit`: handled as Ctrl-C (the run saves and stops), told apart by the CLI."""


class _Interrupts:
    """Ctrl-C (SIGINT) and SIGTERM during :func:`fit`: raised in the training loop as
    ``KeyboardInterrupt`` and :class:`Terminated` at once, except while a run's file is being
    written (:meth:`writing`): there the signal is held until the file is whole, then raised. An
    exception inside ``torch.save`` leaves its zip writer half-written, and its clean-up then fails
    with a ``RuntimeError`` ("unexpected pos") that replaces the interrupt: the checkpoint was lost and
    the run ended as a crash instead of saving ``last.pth.tar``."""

    def __init__(self) -> None:
        self._writing = 0
        self._held: KeyboardInterrupt | None = None

    def _handler(self, signum: int, frame: Any) -> None:
        err = Terminated(f"signal {signum}") if signum == signal.SIGTERM else KeyboardInterrupt()
        if self._writing:
            self._held = self._held or err
            return
        raise err

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold SIGINT and SIGTERM while the block writes files; raise the first one held after it."""
        self._writing += 1
        try:
            yield
        finally:
            self._writing -= 1
        if not self._writing and self._held is not None:
            err, self._held = self._held, None
            raise err

    @contextmanager
    def installed(self) -> Iterator[None]:
        """The handlers of SIGINT and SIGTERM while the block runs (main thread only; the previous ones
        restored after)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler if handler is not None else signal.SIG_DFL)
            self._held = None


#: The one :class:`_Interrupts` of this process: fit installs it, a run's saves write under it.
_INTERRUPTS = _Interrupts()


def _changes(changed: dict[str, list[Any]]) -> str:
    return ", ".join(f"{k} {old} -> {new}" for k, (old, new) in changed.items())


@contextmanager
def cuda_training_settings(device: torch.device) -> Iterator[None]:
    """What :func:`fit` sets for a run on a GPU, restored afterwards: ``torch.backends.cudnn.benchmark``
    on (training crops all have one size, so cuDNN's autotuned convolution algorithms are chosen
    once). TF32 is left as PyTorch sets it (on for cuDNN's convolutions, off for matmuls). Nothing
    on the CPU."""
    if device.type != "cuda":
        yield
        return
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def _loop(run: _Run, loader: DataLoader, val_set: Dataset, progress: bool, callback: Callable | None) -> None:
    """The steps, the validations and the saving; Ctrl-C saves ``last.pth.tar`` (rolled back to
    the start of an unfinished step) and stops."""
    cfg = run.cfg
    bar = tqdm(total=cfg.steps, initial=run.step, desc=cfg.name, unit="step", disable=not (progress and run.rank == 0))
    snapshot, step_done = _rng_state(), True
    try:
        for batch in loader:
            snapshot, step_done = _rng_state(), False  # what a Ctrl-C inside this step rolls back to
            row = run.train_step(batch)
            step_done = True
            bar.update(1)
            if row is not None:
                bar.set_postfix(loss=f"{row['loss']:.3f}", bpp=f"{row['bpp']:.3f}", psnr=f"{row['psnr']:.2f}")
                if callback is not None:
                    callback(row)
            if run.step % cfg.val_interval == 0 or run.step == cfg.steps:
                run.validate_and_save(val_set)
    except KeyboardInterrupt as err:
        what = "terminated (SIGTERM)" if isinstance(err, Terminated) else "interrupted"
        log.warning("%s after step %d: saving %s", what, run.step, run.run_dir / "last.pth.tar")
        run.save("last.pth.tar", rng=None if step_done else snapshot)
        raise
    finally:
        bar.close()


def _holder(fd: int) -> str:
    """Who holds a run's lock, as its lock file (open as ``fd``) says: pid, host and since when."""
    return os.read(fd, 200).decode(errors="replace").strip() or "another process"


class _RunLock:
    """An exclusive ``flock`` on ``<run>/.lock``, which says who holds it (pid, host, start) and is removed when
    the training ends; the lock (not the file) goes with the process when it is killed."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / ".lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            log.warning("%s: this platform has no flock; two trainings of one run are not kept apart", self.path.parent)
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _holder(fd)
                os.close(fd)
                raise self.held(holder) from None
            try:  # the holder before may have removed the file between our open and our lock: lock the one on disk
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        self.fd = fd

    def held(self, holder: str) -> GabicError:
        """The error of a run that another training holds (``holder``: who and since when)."""
        return GabicError(
            f"{self.path.parent}: another training is writing this run ({holder}); wait for it to end or choose another --name"
        )

    def check_free(self) -> None:
        """Raise :meth:`held` when another process holds the lock now (a stale lock file is free)."""
        if fcntl is None or not self.path.exists():
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            raise self.held(_holder(fd)) from None
        finally:
            os.close(fd)

    def release(self) -> None:
        """Remove the lock file and let it go (a killed process leaves the file, not the lock)."""
        if self.fd is not None:
            self.path.unlink(missing_ok=True)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional: tensorboard is not a dependency
    except ImportError:
        raise GabicError("tensorboard is not installed: pip install tensorboard") from None
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def run_distributed(preset: str | None = None, resume: bool = False, **options: Any) -> dict[str, list[dict[str, float]]]:
    """:func:`fit`, in one process of a ``torchrun`` job when ``WORLD_SIZE`` says there are several:
    the process group is set up first (nccl on GPUs, one per local rank; gloo on CPUs) and torn
    down after."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        use_cuda = torch.cuda.is_available() and options.get("device", "auto") != "cpu"
        if use_cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            options["device"] = f"cuda:{local}"
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    try:
        return fit(preset=preset, resume=resume, **options)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
