"""The one training loop, used by ``train`` and ``finetune``.

AdamW or SGD with momentum (train.optimizer), linear warm-up then cosine or polynomial decay
(train.schedule), BCE + soft Dice, gradient clipping, early stopping on validation Dice (or
Dice minus the thickness error of the validation tiles: train.select), atomic best/last
checkpoints, resume, NaN guard.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from gbmseg.config import TrainParams
from gbmseg.engine import calibration, checkpoint, distributed
from gbmseg.engine.amp import Precision
from gbmseg.engine.data import Batches
from gbmseg.engine.objective import (
    layout,
    lr_lambda,
    param_groups,
    seg_loss,
    unwrap,
    validation_dice,
)
from gbmseg.engine.preemption import StopRequest, TrainingInterrupted
from gbmseg.engine.threads import Governor
from gbmseg.errors import TrainingDiverged

log = logging.getLogger(__name__)
MetricsHook = Callable[[dict[str, float], int], None]


@dataclass
class FitResult:
    best_val_dice: float = -1.0
    best_score: float = -math.inf  # what train.select compares (= val Dice for `dice`)
    best_epoch: int = -1
    epochs_run: int = 0
    stopped: str = "completed"
    history: list[dict[str, float]] = field(default_factory=list)
    train_s: float = 0.0  # seconds in training epochs
    logging_s: float = 0.0  # seconds spent in the metrics hook (MLflow)
    budget_stop: bool = False  # the wall-clock budget ended training early
    threshold: dict = field(default_factory=dict)  # the threshold recorded and why

    @property
    def logging_fraction(self) -> float:
        """Share of training time the tracking hook cost."""
        return self.logging_s / self.train_s if self.train_s else 0.0


class Trainer:
    def __init__(
        self,
        model: torch.nn.Module,
        p: TrainParams,
        prec: Precision,
        out: Path,
        *,
        on_metrics: MetricsHook | None = None,
        is_main: bool = True,
        lr_scales: dict[str, float] | None = None,
    ):
        """``lr_scales``: parameter-name prefix -> factor of ``p.lr`` (fine-tuning's
        strategy, ``gbmseg.transfer.freezing.lr_scales``); none: one rate for all."""
        self.model, self.p, self.prec, self.out = model, p, prec, Path(out)
        self.on_metrics, self.is_main = on_metrics, is_main
        params = param_groups(model, p.lr, lr_scales)
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
        self.partial: dict = {}  # a resumed epoch's batches done, loss sum, images, seconds
        self.stop = StopRequest()
        self.threads = Governor(p.threads) if prec.device.type == "cpu" else None
        self.widths: calibration.Widths | None = None  # the validation labels' widths

    def validate(self, val: Batches) -> dict[str, float]:
        """Validation Dice and, with ``select: dice_thickness``, the mean |relative
        difference| of the validation tiles' predicted widths from their labelled ones."""
        keep: list | None = [] if self.p.select == "dice_thickness" else None
        scores = validation_dice(self.model, val, self.prec, self.p.channels_last, keep=keep)
        if keep is None:
            return scores | {"score": scores["val_dice"]}
        preds = np.concatenate([a for a, _ in keep]) if keep else np.zeros((0, 1, 1), bool)
        if self.widths is None:
            labels = np.concatenate([b for _, b in keep]) if keep else preds
            self.widths = calibration.Widths.of(labels)
        err = self.widths.error(preds)
        n = err["tiles"]
        summed = [err["thickness_err"] * n if n else 0.0, n]
        total, n = distributed.all_sum(summed, self.prec.device)
        thick = total / n if n else math.nan
        score = scores["val_dice"] - (thick if n else 0.0)
        return scores | {"val_thickness_err": thick, "score": score}

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
            "best_score": self.result.best_score,
            "best_epoch": self.result.best_epoch,
            "history": self.result.history,
        }

    def resume(self, path: Path, train_batches: Batches) -> None:
        state = checkpoint.load(path)
        try:
            unwrap(self.model).load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.sched.load_state_dict(state["scheduler"])  # fit() builds it before resuming
            self.scaler.load_state_dict(state["scaler"])
            torch.set_rng_state(state["rng"])
            train_batches.generator.set_state(state["batch_rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise checkpoint.CheckpointError(
                f"{path}: not a resumable checkpoint of this model ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:160]}); delete it to start afresh"
            ) from exc
        self.start_epoch = int(state["epoch"]) + 1
        if state.get("partial"):  # stopped inside an epoch: replay its batch order, skip done
            self.start_epoch = int(state["epoch"])
            self.partial = dict(state["partial"])
            train_batches.generator.set_state(state["partial"]["epoch_rng"])
        self.result.best_val_dice = float(state["best_val_dice"])
        self.result.best_score = float(state.get("best_score", state["best_val_dice"]))
        self.result.best_epoch = int(state["best_epoch"])
        self.result.history = list(state["history"])
        log.info("resumed from %s at epoch %d", path, self.start_epoch)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = (
            layout(x.to(self.prec.device, non_blocking=True), self.p.channels_last),
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
        return loss.detach()

    def _interrupt(self, epoch: int, batches: Batches, partial: dict) -> None:
        """Write a checkpoint of this point inside the epoch, then stop."""
        if self.is_main:
            state = self._state(epoch, batches) | {"partial": partial}
            checkpoint.save(self.out / "last.pt", state)
        raise TrainingInterrupted(
            f"stopped by SIGTERM in epoch {epoch + 1} after batch {partial['batches']}; "
            f"checkpoint {self.out / 'last.pt'}: run again with --resume to continue"
        )

    def train_epoch(self, epoch: int, batches: Batches) -> dict[str, float]:
        """One pass over ``batches`` (``schedule`` first): loss, img/s, seconds, rate.  fit
        calls it every epoch; the throughput benchmarks time it."""
        self.model.train()
        carried, self.partial = self.partial, {}
        epoch_rng = carried.get("epoch_rng", batches.generator.get_state())
        skip, n_img = int(carried.get("batches", 0)), int(carried.get("images", 0))
        total = torch.tensor(float(carried.get("loss_sum", 0.0)), device=self.prec.device)
        t0 = time.perf_counter() - float(carried.get("seconds", 0.0))
        bar = tqdm(
            batches,
            desc=f"epoch {epoch + 1}/{self.p.epochs}",
            unit="batch",
            disable=None if self.is_main else True,
            leave=False,
        )
        single = distributed.from_env().world == 1  # DDP: ranks stop together at epoch ends
        for i, (x, y) in enumerate(bar):
            if i < skip:  # done before the interruption: same order and flips, not retrained
                continue
            total += self._step(x, y)
            n_img += x.shape[0]
            if self.threads and i % 20 == 19:  # give way to other processes' work, or take back
                self.threads.adjust()
            bar.set_postfix(img_s=f"{n_img / (time.perf_counter() - t0):.1f}")
            if single and self.stop.requested and i + 1 < len(batches):
                partial = {
                    "batches": i + 1,
                    "loss_sum": float(total),
                    "images": n_img,
                    "seconds": time.perf_counter() - t0,
                    "epoch_rng": epoch_rng,
                }
                self._interrupt(epoch, batches, partial)
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

    def schedule(self, steps_per_epoch: int) -> None:
        """The learning-rate schedule for ``p.epochs`` epochs of ``steps_per_epoch`` steps."""
        steps = self.p.epochs * steps_per_epoch
        warm = int(self.p.warmup_epochs * steps_per_epoch)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lr_lambda(steps, max(1, warm), self.p.schedule)
        )

    def fit(self, train: Batches, val: Batches, resume_from: Path | None = None) -> FitResult:
        self.schedule(len(train))
        if resume_from is not None:
            self.resume(resume_from, train)
        with self.stop:
            return self._epochs(train, val)

    def _epochs(self, train: Batches, val: Batches) -> FitResult:
        t_start, r = time.perf_counter(), self.result
        fixed = len(val.images) == 0  # no validation images: fixed schedule, keep the last epoch
        for epoch in range(self.start_epoch, self.p.epochs):
            trained = self.train_epoch(epoch, train)  # then score the weights it left
            scores = {"val_dice": math.nan, "score": math.nan} if fixed else self.validate(val)
            score = scores.pop("score")
            row = {"epoch": epoch + 1, **trained, **scores}
            r.history.append(row)
            r.train_s += row["epoch_s"]
            r.epochs_run = epoch + 1
            improved = fixed or score > r.best_score
            if improved:
                r.best_val_dice, r.best_score, r.best_epoch = row["val_dice"], score, epoch + 1
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
                what = "val Dice" if self.p.select == "dice" else "val Dice - thickness error"
                r.stopped = f"early stop: no {what} gain in {self.p.patience} epochs"
                break
            late = (
                bool(self.p.max_minutes)
                and (time.perf_counter() - t_start) / 60 >= self.p.max_minutes
            )
            if distributed.any_rank(late, self.prec.device) and epoch + 1 < self.p.epochs:
                r.stopped = f"time budget of {self.p.max_minutes} min reached"
                r.budget_stop = True
                break
            if distributed.any_rank(self.stop.requested, self.prec.device):
                raise TrainingInterrupted(
                    f"stopped by SIGTERM after epoch {epoch + 1}; checkpoint "
                    f"{self.out / 'last.pt'}: run again with --resume to continue"
                )
        return r

    def _checkpoint(self, epoch: int, train: Batches, improved: bool) -> None:
        state = self._state(epoch, train)
        checkpoint.save(self.out / "last.pt", state)
        if improved:
            best = {k: state[k] for k in ("model", "model_config", "epoch", "best_val_dice")}
            checkpoint.save(self.out / "best.pt", best)
