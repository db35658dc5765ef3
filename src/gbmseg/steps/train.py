"""train: fit a U-Net on packed tiles.

Checkpoints (``last.pt``, ``best.pt``) live in ``<out>.ckpt/`` while training so a killed
run resumes with ``resume=True``; the finished model is published atomically to
``<out>/model.pt`` with ``model_config.json`` and ``_meta.json``.
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
from pathlib import Path

import torch

from gbmseg.config import AugmentParams, TrainParams
from gbmseg.data import plots
from gbmseg.data.atomic import atomic_dir, meta, write_json, write_text
from gbmseg.engine import checkpoint, distributed
from gbmseg.engine.amp import Precision, resolve
from gbmseg.engine.data import Batches, load_split
from gbmseg.engine.trainer import FitResult, Trainer
from gbmseg.model.unet import UNet, UNetConfig, build, count_parameters
from gbmseg.seed import seed_everything
from gbmseg.transfer import auto

log = logging.getLogger(__name__)


def model_config(p: TrainParams) -> UNetConfig:
    return UNetConfig(**p.model.model_dump())


def history_csv(history: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    if history:
        w = csv.DictWriter(buf, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    return buf.getvalue()


def online_transform(augment: AugmentParams, tile: int, seed: int):
    """The offline stage's albumentations pipeline as a per-tile training transform."""
    from gbmseg.data import augmentations

    pipe = augmentations.build(augment, (tile, tile), seed=seed)

    def apply(img, msk):
        res = pipe(image=img, mask=msk)
        return res["image"], res["mask"]

    return apply


def curves_png(history: list[dict[str, float]]) -> bytes:
    """Training loss and validation Dice per epoch, one picture."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plots.figure(5.5, 3.2)
    (l1,) = ax.plot(epochs, [h["loss"] for h in history], "o-", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    (l2,) = ax2.plot(
        epochs, [h["val_dice"] for h in history], "s-", color="tab:green", label="val Dice"
    )
    ax2.set_ylabel("validation Dice")
    ax2.set_ylim(0, 1)
    ax2.legend(handles=[l1, l2], loc="center right", fontsize=7)
    return plots.png(fig)


def fit(
    model: UNet,
    p: TrainParams,
    packed: str | Path,
    out: str | Path,
    logger=None,
    resume: bool = False,
    augment: AugmentParams | None = None,
) -> FitResult:
    """Train ``model`` in place on ``packed`` with params ``p``; shared by train and finetune."""
    out = Path(out)
    ckpt_dir = out.with_name(out.name + ".ckpt")
    seed_everything(p.seed)
    d = distributed.from_env()
    prec = resolve(p.device, p.amp)
    prec = Precision(distributed.device_for(d, prec.device), prec.dtype)
    distributed.init(d, prec.device)
    model.to(prec.device)
    if p.channels_last:
        model.to(memory_format=torch.channels_last)
    xtr, ytr = load_split(packed, "train")
    xva, yva = load_split(packed, "val")
    transform = None
    if p.augment_online and augment is not None:
        transform = online_transform(augment, xtr.shape[-1], p.seed)
    train = Batches(
        xtr,
        ytr,
        p.batch_size,
        train=True,
        seed=p.seed,
        rank=d.rank,
        world=d.world,
        transform=transform,
    )
    val = Batches(xva, yva, p.batch_size, train=False, rank=d.rank, world=d.world)
    log.info(
        "training %d params on %d tiles (%s), validating on %d",
        count_parameters(model),
        len(xtr),
        prec.describe(),
        len(xva),
    )
    on_metrics = logger.metrics if logger else None
    net = distributed.wrap(model, d, prec.device)
    if p.compile:
        net = torch.compile(net)
    trainer = Trainer(
        net,
        p,
        prec,
        ckpt_dir,
        on_metrics=on_metrics if d.is_main else None,
        is_main=d.is_main,
    )
    last = ckpt_dir / "last.pt"
    result = trainer.fit(train, val, resume_from=last if resume and last.is_file() else None)
    distributed.barrier()  # rank 0 has written best.pt
    best = checkpoint.load(ckpt_dir / "best.pt")
    model.load_state_dict(best["model"])
    return result


def publish(
    model: UNet,
    p: TrainParams,
    result: FitResult,
    out: str | Path,
    step: str,
    extra: dict | None = None,
    histogram=None,
    files: dict[str, str] | None = None,
) -> dict:
    """Write model dir (weights, config, the training data's intensity ``histogram``, extra
    text ``files``), metrics JSON and history CSV atomically; return the metrics."""
    cfg = model.cfg.to_dict()
    metrics = {
        "best_val_dice": round(result.best_val_dice, 5),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped": result.stopped,
        "logging_fraction": round(result.logging_fraction, 5),  # tracking cost / train time
        "parameters": count_parameters(model),
        "img_per_s": round(
            sum(h["img_per_s"] for h in result.history) / max(1, len(result.history)), 2
        ),
        **(extra or {}),
    }
    with atomic_dir(out) as tmp:
        state = {"model": {k: v.cpu() for k, v in model.state_dict().items()}, "model_config": cfg}
        if histogram is not None:
            state["data_histogram"] = torch.as_tensor(histogram, dtype=torch.float64)
        checkpoint.save(tmp / "model.pt", state)
        write_json(tmp / "model_config.json", cfg)
        for name, text in (files or {}).items():
            write_text(tmp / name, text)
        write_json(tmp / "_meta.json", meta(step, p.model_dump(mode="json")))
    write_json(p.metrics, metrics)
    write_text(p.history, history_csv(result.history))
    return metrics


def run(
    p: TrainParams,
    packed: str | Path,
    logger=None,
    resume: bool = False,
    augment: AugmentParams | None = None,
) -> dict:
    seed_everything(p.seed)  # the initial weights too
    model = build(model_config(p))
    if logger:
        logger.params({"train": p.model_dump(mode="json")})
    result = fit(model, p, packed, p.out, logger, resume, augment)
    if not distributed.from_env().is_main:
        distributed.shutdown()
        return {"rank": distributed.from_env().rank, "best_val_dice": result.best_val_dice}
    metrics = publish(
        model.cpu().to(memory_format=torch.contiguous_format),
        p,
        result,
        p.out,
        "train",
        histogram=auto.histogram(load_split(packed, "train")[0]),
    )
    if logger:
        logger.metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        logger.artifact(p.history, "curves")
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "learning_curve.png").write_bytes(curves_png(result.history))
            logger.artifact(Path(tmp) / "learning_curve.png", "curves")
    log.info(
        "train: best val Dice %.4f at epoch %d (%s) -> %s",
        result.best_val_dice,
        result.best_epoch,
        result.stopped,
        p.out,
    )
    distributed.shutdown()
    return metrics
