"""The one training loop, used by ``train`` and ``finetune``.

AdamW + linear warm-up and cosine decay, BCE + soft Dice, gradient clipping, early
stopping on validation Dice, atomic best/last checkpoints, resume, NaN guard.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from gbmseg.config import TrainParams
from gbmseg.engine import checkpoint, distributed
from gbmseg.engine.amp import Precision
from gbmseg.engine.data import Batches

log = logging.getLogger(__name__)
MetricsHook = Callable[[dict[str, float], int], None]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class FitResult:
    best_val_dice: float = -1.0
    best_epoch: int = -1
    epochs_run: int = 0
    stopped: str = "completed"
    history: list[dict[str, float]] = field(default_factory=list)
    train_s: float = 0.0  # seconds in training epochs
    logging_s: float = 0.0  # seconds spent in the metrics hook (MLflow)
    budget_stop: bool = False  # the wall-clock budget ended training early

    @property
    def logging_fraction(self) -> float:
        """Share of training time the tracking hook cost."""
        return self.logging_s / self.train_s if self.train_s else 0.0


def seg_loss(logits: torch.Tensor, target: torch.Tensor, p: TrainParams) -> torch.Tensor:
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(1, 2, 3))
    denom = prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    soft_dice = 1 - ((2 * inter + 1) / (denom + 1)).mean()
    return p.bce_weight * bce + p.dice_weight * soft_dice


def lr_lambda(total_steps: int, warmup_steps: int, kind: str = "cosine") -> Callable[[int], float]:
    """Linear warm-up, then cosine or poly (power 0.9, as in nnU-Net) decay to zero."""

    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if kind == "poly":
            return (1 - progress) ** 0.9
        return 0.5 * (1 + math.cos(math.pi * progress))

    return f


@torch.no_grad()
def validate(
    model: torch.nn.Module, batches: Batches, prec: Precision, channels_last: bool = False
) -> dict[str, float]:
    """Global Dice over the validation tiles (each rank scores its share, then all-reduce)."""
    model = unwrap(model)  # no DDP collectives: ranks may hold unequal shares
    model.eval()
    tp = fp = fn = 0.0
    for x, y in batches:
        x, y = x.to(prec.device), y.to(prec.device)
        with prec.autocast():
            pred = model(_layout(x, channels_last)).float() > 0
        t = y > 0.5
        tp += float((pred & t).sum())
        fp += float((pred & ~t).sum())
        fn += float((~pred & t).sum())
    tp, fp, fn = distributed.all_sum([tp, fp, fn], prec.device)  # every rank sees the same Dice
    denom = 2 * tp + fp + fn
    return {"val_dice": 1.0 if denom == 0 else 2 * tp / denom}


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain U-Net inside torch.compile and DDP wrappers."""
    model = getattr(model, "_orig_mod", model)
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def param_groups(model: torch.nn.Module, lr: float) -> list[dict]:
    """Trainable parameters grouped by learning rate: ``model.lr_scales`` (prefix -> factor,
    set by fine-tuning) scales the base ``lr``; frozen parameters are left out."""
    raw = unwrap(model)
    scales: dict[str, float] = getattr(raw, "lr_scales", {})
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, q in raw.named_parameters():
        if q.requires_grad:
            s = next((v for k, v in scales.items() if name.startswith(k + ".")), 1.0)
            groups.setdefault(s, []).append(q)
    return [{"params": qs, "lr": lr * s} for s, qs in groups.items()]


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class Trainer:
    def __init__(
        self,
        model: torch.nn.Module,
        p: TrainParams,
        prec: Precision,
        out: Path,
        on_metrics: MetricsHook | None = None,
        is_main: bool = True,
    ):
        self.model, self.p, self.prec, self.out = model, p, prec, Path(out)
        self.on_metrics, self.is_main = on_metrics, is_main
        params = param_groups(model, p.lr)
        if p.optimizer == "sgd":
            self.opt: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=p.lr, momentum=p.momentum, weight_decay=p.weight_decay, nesterov=True
            )
        else:
            self.opt = torch.optim.AdamW(params, lr=p.lr, weight_decay=p.weight_decay)
        self.scaler = torch.amp.GradScaler(prec.device.type, enabled=prec.scaler_needed)
        self.sched: torch.optim.lr_scheduler.LambdaLR | None = None
        self.result = FitResult()
        self.start_epoch = 0

    def _state(self, epoch: int, train_batches: Batches) -> dict:
        raw = unwrap(self.model)
        return {
            "model": raw.state_dict(),
            "model_config": raw.cfg.to_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict() if self.sched else {},
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "rng": torch.get_rng_state(),
            "batch_rng": train_batches.generator.get_state(),
            "best_val_dice": self.result.best_val_dice,
            "best_epoch": self.result.best_epoch,
            "history": self.result.history,
        }

    def resume(self, path: Path, train_batches: Batches) -> None:
        state = checkpoint.load(path)
        unwrap(self.model).load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])  # fit() builds it before resuming
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        train_batches.generator.set_state(state["batch_rng"])
        self.start_epoch = int(state["epoch"]) + 1
        self.result.best_val_dice = float(state["best_val_dice"])
        self.result.best_epoch = int(state["best_epoch"])
        self.result.history = list(state["history"])
        log.info("resumed from %s at epoch %d", path, self.start_epoch)

    def _train_epoch(self, epoch: int, batches: Batches) -> dict[str, float]:
        self.model.train()
        total, n_img, t0 = torch.zeros((), device=self.prec.device), 0, time.perf_counter()
        bar = tqdm(
            batches,
            desc=f"epoch {epoch + 1}/{self.p.epochs}",
            unit="batch",
            disable=None if self.is_main else True,
            leave=False,
        )
        for x, y in bar:
            x, y = (
                _layout(x.to(self.prec.device, non_blocking=True), self.p.channels_last),
                y.to(self.prec.device),
            )
            with self.prec.autocast():
                logits = self.model(x)
            loss = seg_loss(logits, y, self.p)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.p.grad_clip > 0:
                self.scaler.unscale_(self.opt)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.p.grad_clip)
            self.scaler.step(self.opt)
            self.scaler.update()
            self.sched.step()
            total += loss.detach()
            n_img += x.shape[0]
            bar.set_postfix(img_s=f"{n_img / (time.perf_counter() - t0):.1f}")
        mean_loss = distributed.all_sum([float(total) / max(1, len(batches))], self.prec.device)[0]
        mean_loss /= max(1, distributed.from_env().world)
        if not math.isfinite(mean_loss):
            raise TrainingDiverged(
                f"loss became {mean_loss} in epoch {epoch + 1}; last good checkpoint kept in "
                f"{self.out / 'last.pt'}. Lower train.lr or check the data"
            )
        secs = time.perf_counter() - t0
        return {
            "loss": mean_loss,
            "img_per_s": n_img / secs,
            "epoch_s": secs,
            "lr": self.opt.param_groups[0]["lr"],
        }

    def fit(self, train: Batches, val: Batches, resume_from: Path | None = None) -> FitResult:
        steps = self.p.epochs * len(train)
        warm = int(self.p.warmup_epochs * len(train))
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lr_lambda(steps, max(1, warm), self.p.schedule)
        )
        if resume_from is not None:
            self.resume(resume_from, train)
        t_start, r = time.perf_counter(), self.result
        fixed = len(val.images) == 0  # no validation images: fixed schedule, keep the last epoch
        for epoch in range(self.start_epoch, self.p.epochs):
            scores = (
                {"val_dice": math.nan}
                if fixed
                else validate(self.model, val, self.prec, self.p.channels_last)
            )
            row = {"epoch": epoch + 1, **self._train_epoch(epoch, train), **scores}
            r.history.append(row)
            r.train_s += row["epoch_s"]
            r.epochs_run = epoch + 1
            improved = fixed or row["val_dice"] > r.best_val_dice
            if improved:
                r.best_val_dice, r.best_epoch = row["val_dice"], epoch + 1
                if fixed:
                    r.stopped = "fixed schedule (no validation images)"
            if self.is_main:
                self._checkpoint(epoch, train, improved)
                if self.on_metrics:
                    t_log = time.perf_counter()
                    self.on_metrics({k: v for k, v in row.items() if k != "epoch"}, epoch + 1)
                    r.logging_s += time.perf_counter() - t_log
                log.info(
                    "epoch %d: loss %.4f val_dice %.4f (%.1f img/s)",
                    epoch + 1,
                    row["loss"],
                    row["val_dice"],
                    row["img_per_s"],
                )
            if not fixed and epoch + 1 - r.best_epoch >= self.p.patience:
                r.stopped = f"early stop: no val Dice gain in {self.p.patience} epochs"
                break
            late = (
                bool(self.p.max_minutes)
                and (time.perf_counter() - t_start) / 60 >= self.p.max_minutes
            )
            if distributed.any_rank(late, self.prec.device) and epoch + 1 < self.p.epochs:
                r.stopped = f"time budget of {self.p.max_minutes} min reached"
                r.budget_stop = True
                break
        return r

    def _checkpoint(self, epoch: int, train: Batches, improved: bool) -> None:
        state = self._state(epoch, train)
        checkpoint.save(self.out / "last.pt", state)
        if improved:
            best = {k: state[k] for k in ("model", "model_config", "epoch", "best_val_dice")}
            checkpoint.save(self.out / "best.pt", best)
