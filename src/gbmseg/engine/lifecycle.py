"""The one training lifecycle of ``train`` and ``finetune``: fit, then (rank 0 alone)
publish the model folder, metrics and curves, then shut torchrun's process group down.

A published model folder holds ``model.pt`` (weights + the training images' histogram),
``model_config.json``, ``trained_on.json`` (every image the model saw, by pixel hash: its
own training and validation images and those of the model it started from) and
``_meta.json``, plus any extra text files the step passes (e.g. a transfer report).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from gbmseg.config import AugmentParams, TrainParams
from gbmseg.data import plots
from gbmseg.data.atomic import atomic_dir, meta, write_json, write_text
from gbmseg.data.stats import histogram
from gbmseg.engine import calibration, checkpoint, crops, distributed
from gbmseg.engine.amp import Precision, choose_precision
from gbmseg.engine.data import Batches, load_splits
from gbmseg.engine.seed import seed_everything
from gbmseg.engine.trainer import FitResult, Trainer
from gbmseg.model.unet import UNet, count_parameters
from gbmseg.runlog import RunLog, numbers

log = logging.getLogger(__name__)
TRAINED_ON = "trained_on.json"


def history_csv(history: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    if history:
        w = csv.DictWriter(buf, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)
    return buf.getvalue()


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


def online_transform(augment: AugmentParams, tile: int, seed: int):
    """The offline stage's albumentations pipeline as a per-tile training transform."""
    from gbmseg.data import augmentations

    pipe = augmentations.build(augment, (tile, tile), seed=seed)

    def apply(img, msk):
        res = pipe(image=img, mask=msk)
        return res["image"], res["mask"]

    return apply


def seen_images(packed: Iterable[str | Path]) -> list[str]:
    """Pixel hashes of the training and validation images of packed sets."""
    seen: set[str] = set()
    for folder in packed:
        path = Path(folder) / "manifest.json"
        if path.is_file():
            splits = json.loads(path.read_text())["splits"]
            for split in ("train", "val"):
                seen.update(splits[split].get("pixels_sha256", []))
    return sorted(seen)


def packed_pixel_size(packed: Iterable[str | Path]) -> float | None:
    """The one pixel size of packed sets' tiles (None: unknown, or sets at different scales:
    set pack.scale_nm to bring them to one)."""
    found = set()
    for folder in packed:
        path = Path(folder) / "manifest.json"
        found.add(json.loads(path.read_text()).get("pixel_size_nm") if path.is_file() else None)
    if len(found) == 1:
        return found.pop()
    log.warning(
        "the packed sets are at different or unknown scales %s: the model records none; "
        "set pack.scale_nm to bring them to one",
        sorted(map(str, found)),
    )
    return None


def read_trained_on(model_dir: str | Path) -> list[str]:
    path = Path(model_dir) / TRAINED_ON
    return json.loads(path.read_text())["pixels_sha256"] if path.is_file() else []


def learnt_from_labels(model_dir: str | Path) -> bool:
    """False for a model pretrained on unlabelled images only (its head reconstructs
    images; it does not segment)."""
    path = Path(model_dir) / TRAINED_ON
    return bool(json.loads(path.read_text()).get("labelled", True)) if path.is_file() else True


def batches(
    p: TrainParams,
    packed: list[Path],
    augment: AugmentParams | None,
    *,
    rank: int,
    world: int,
    multiple: int = 16,
) -> tuple[Batches, Batches, str]:
    """Training and validation batches of the packed sets, and what training draws from:
    random crops from whole images when ``p.steps_per_epoch`` > 0, else every packed tile.
    Without validation images, strips held out of the training images (``held_out``; tiles
    a multiple of ``multiple`` px, the model's)."""
    xtr, ytr = load_splits(packed, "train")
    xva, yva = load_splits(packed, "val")
    transform = None
    if p.augment_online and augment is not None:
        transform = online_transform(augment, xtr.shape[-1], p.seed)
    drawn, what = None, f"{len(xtr)} tiles"
    if p.steps_per_epoch:
        wholes = crops.load(packed)
        if not len(xva) and p.holdout:  # few labels: validate on strips kept out of training
            wholes, xva, yva = held_out(p, packed, wholes, xtr.shape[-1], multiple)
        drawn = crops.Crops(wholes, xtr.shape[-1], seed=p.seed,
                            foreground=p.foreground_oversample)  # fmt: skip
        what = f"{p.steps_per_epoch} batches of crops per epoch from {len(drawn.wholes)} images"
    train = Batches(
        xtr, ytr, p.batch_size, train=True, seed=p.seed, rank=rank, world=world,
        transform=transform, foreground=p.foreground_oversample, steps=p.steps_per_epoch,
        crops=drawn,
    )  # fmt: skip
    val = Batches(xva, yva, p.batch_size, train=False, rank=rank, world=world)
    return train, val, what


def held_out(
    p: TrainParams, packed: list[Path], wholes: crops.Wholes, tile: int, multiple: int
) -> tuple[crops.Wholes, np.ndarray, np.ndarray]:
    """Strips of the labelled images to validate on (``p.holdout``), when they hold at least
    ``p.min_membrane_px`` of measurable labelled mid-line; else the images stay whole and
    there is no validation (a few tiles' membranes would pick the epoch and the threshold:
    benchmarks/README.md)."""
    kept, xva, yva = crops.hold_out(wholes, crops.originals(packed), p.holdout, tile, multiple)
    length = len(calibration.Widths.of(yva).pooled)
    if length < p.min_membrane_px:
        log.info(
            "no validation images; the bottom %.0f%% of each labelled image holds %d px of "
            "measurable membrane, fewer than train.min_membrane_px = %d: trained on the whole "
            "images (fixed schedule, threshold %s)", 100 * p.holdout, length,
            p.min_membrane_px, p.threshold if p.threshold != "auto" else "0.5",
        )  # fmt: skip
        empty = np.zeros((0, tile, tile), np.uint8)
        return wholes, empty, empty
    log.info(
        "no validation images: the bottom %.0f%% of each labelled image is held out and "
        "validated on (%d tiles, %d px of membrane; train.holdout)", 100 * p.holdout, len(xva),
        length,
    )  # fmt: skip
    return kept, xva, yva


def fit(
    model: UNet,
    p: TrainParams,
    packed: list[Path],
    run_log: RunLog | None = None,
    resume: bool = False,
    augment: AugmentParams | None = None,
    *,
    lr_scales: dict[str, float] | None = None,
) -> FitResult:
    """Train ``model`` in place on the packed sets; it ends holding the best epoch's weights.
    ``lr_scales``: learning-rate factors by parameter-name prefix (see ``Trainer``)."""
    ckpt_dir = Path(p.checkpoints)
    seed_everything(p.seed)
    d = distributed.from_env()
    prec = choose_precision(p.device, p.amp)
    prec = Precision(distributed.device_for(d, prec.device), prec.dtype)
    distributed.init(d, prec.device)
    model.to(prec.device)
    if p.channels_last:
        model.to(memory_format=torch.channels_last)
    train, val, what = batches(
        p, packed, augment, rank=d.rank, world=d.world, multiple=model.multiple
    )
    log.info(
        "training %d params on %s (%s), validating on %d tiles%s",
        count_parameters(model),
        what,
        prec.describe(),
        len(val.images),
        "" if len(val.images) else " (no validation images: fixed schedule, no early stopping)",
    )
    net = distributed.wrap(model, d, prec.device)
    if p.compile:
        net = torch.compile(net)
    hook = run_log.metrics if run_log and d.is_main else None
    trainer = Trainer(
        net, p, prec, ckpt_dir, on_metrics=hook, is_main=d.is_main, lr_scales=lr_scales
    )
    last = ckpt_dir / "last.pt"
    result = trainer.fit(train, val, resume_from=last if resume and last.is_file() else None)
    distributed.barrier()  # rank 0 has written best.pt
    model.load_state_dict(checkpoint.load(ckpt_dir / "best.pt")["model"])
    if d.is_main:
        result.threshold = calibration.record(model, p, val, prec)
    return result


def summary(model: UNet, result: FitResult, extra: dict | None = None) -> dict:
    """The metrics a training run reports (a budget stop is flagged, not hidden)."""
    out = {
        "best_val_dice": None if np.isnan(result.best_val_dice) else round(result.best_val_dice, 5),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped": result.stopped,
        "cut_short_by_time_budget": result.budget_stop,
        "logging_fraction": round(result.logging_fraction, 5),  # tracking cost / train time
        "parameters": count_parameters(model),
        "img_per_s": round(
            sum(h["img_per_s"] for h in result.history) / max(1, len(result.history)), 2
        ),
    }
    chosen = result.threshold
    if chosen:
        out["threshold"] = chosen["threshold"]
        for key in ("val_dice", "val_thickness_err", "val_thickness_bias"):
            if key in chosen:
                out[f"threshold_{key}"] = chosen[key]
        if "at_0.5" in chosen:
            out["val_thickness_bias_at_0.5"] = chosen["at_0.5"]["thickness_bias"]
    return {**out, **(extra or {})}


def write_model_folder(
    out: str | Path,
    model: UNet,
    step: str,
    params: dict,
    trained_on: list[str],
    files: dict[str, str] | None = None,
    labelled: bool = True,
    inputs: dict[str, str] | None = None,
) -> None:
    """The published model folder, written atomically (see the module docstring)."""
    seen: dict = {"images": len(trained_on), "pixels_sha256": trained_on}
    seen["pixel_size_nm"] = model.pixel_size_nm()
    if not labelled:
        seen["labelled"] = False
    with atomic_dir(out) as tmp:
        checkpoint.save(tmp / "model.pt", checkpoint.model_state(model))
        write_json(tmp / "model_config.json", model.cfg.to_dict())
        write_json(tmp / TRAINED_ON, seen)
        for name, text in (files or {}).items():
            write_text(tmp / name, text)
        write_json(tmp / "_meta.json", meta(step, params, inputs))


def publish(
    model: UNet,
    p: TrainParams,
    result: FitResult,
    step: str,
    trained_on: list[str],
    extra: dict | None = None,
    files: dict[str, str] | None = None,
) -> dict:
    """Write the model folder, metrics JSON and history CSV atomically; return the metrics."""
    metrics = summary(model, result, extra)
    if result.threshold:  # what was chosen, and the validation sweep it was chosen on
        files = {**(files or {}), "threshold.json": json.dumps(result.threshold, indent=1)}
    write_model_folder(p.out, model, step, p.model_dump(mode="json"), trained_on, files)
    write_json(p.metrics, metrics)
    write_text(p.history, history_csv(result.history))
    return metrics


def log_run(run_log: RunLog, p: TrainParams, metrics: dict, history: list[dict]) -> None:
    run_log.metrics(numbers(metrics))
    run_log.artifact(p.history, "curves")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "learning_curve.png").write_bytes(curves_png(history))
        run_log.artifact(Path(tmp) / "learning_curve.png", "curves")


def train_and_publish(
    model: UNet,
    p: TrainParams,
    packed: list[Path],
    step: str,
    trained_on: list[str],
    run_log: RunLog | None = None,
    resume: bool = False,
    augment: AugmentParams | None = None,
    extra: dict | None = None,
    files: dict[str, str] | None = None,
    *,
    lr_scales: dict[str, float] | None = None,
) -> dict:
    """Fit, publish from rank 0 only, shut torchrun down; the step's result."""
    result = fit(model, p, packed, run_log, resume, augment, lr_scales=lr_scales)
    d = distributed.from_env()
    if not d.is_main:
        distributed.shutdown()
        return {"rank": d.rank, "best_val_dice": result.best_val_dice}
    model = model.cpu().to(memory_format=torch.contiguous_format)
    model.set_source_histogram(histogram(load_splits(packed, "train")[0]))
    model.set_pixel_size_nm(packed_pixel_size(packed))
    metrics = publish(model, p, result, step, trained_on, extra, files)
    if result.budget_stop:
        log.warning(
            "%s: training was cut short by the time budget (train.max_minutes = %s) after %d "
            "epoch(s); raise or zero train.max_minutes for a full run",
            step,
            p.max_minutes,
            result.epochs_run,
        )
    if run_log:
        log_run(run_log, p, metrics, result.history)
    log.info(
        "%s: best val Dice %s at epoch %d (%s) -> %s",
        step,
        metrics["best_val_dice"],
        result.best_epoch,
        result.stopped,
        p.out,
    )
    distributed.shutdown()
    return metrics
