"""Thickness on validation tiles, and the threshold chosen with a model.

A U-Net's probabilities are wide at the membrane's edges: thresholded at 0.5, a ribbon can come
out a pixel too wide on each side while Dice stays high, and a thin membrane reads normal.  So
validation measures what the product reports: the membrane's width along its mid-line (the
medial-axis chords of ``gbmseg.thickness``, in pixels) on prediction and label, tile by tile,
and the threshold recorded with a model is the one whose membrane is as thick as the labelled
one (pooled over the tiles), among the thresholds whose validation Dice is within a tolerance of
the best, when the tiles hold enough membrane to tell.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from gbmseg import metrics, thickness
from gbmseg.config import TrainParams
from gbmseg.engine.amp import Precision
from gbmseg.engine.data import Batches
from gbmseg.engine.objective import layout, unwrap

log = logging.getLogger(__name__)
CANDIDATES = np.round(np.arange(0.10, 0.91, 0.05), 2)
MIN_LENGTH_PX = 10  # mid-line pieces shorter than this are specks (measure.min_length_px)
TRIM_PX = 3
MISSED = -1.0  # a labelled membrane with none predicted: 100% too thin


def chords_px(mask: np.ndarray) -> np.ndarray:
    """The membrane's widths at the points of its mid-line, in pixels: the direct figures of
    ``measure`` (oblique stretches left out); empty when none is measurable."""
    if not mask.any():
        return np.zeros(0)
    prof = thickness.profile(mask, 1e9, MIN_LENGTH_PX, TRIM_PX)  # no intercept grid needed
    return prof.medial[~prof.medial_oblique]


def width_px(mask: np.ndarray) -> float:
    """Median width of the membrane along its mid-line, in pixels (NaN: none measurable)."""
    direct = chords_px(mask)
    return float(np.median(direct)) if len(direct) else float("nan")


@dataclass
class Widths:
    """The labelled widths of the validation tiles, measured once: each tile's median and
    the pooled mid-line widths of them all."""

    labels: np.ndarray
    pooled: np.ndarray

    @classmethod
    def of(cls, masks: np.ndarray) -> Widths:
        each = [chords_px(m) for m in masks]
        medians = np.array([np.median(c) if len(c) else np.nan for c in each])
        return cls(medians, np.concatenate(each) if each else np.zeros(0))

    def error(self, preds: np.ndarray) -> dict[str, float]:
        """``thickness_err``: mean |relative difference| of the predicted tiles' median widths
        from the labelled ones (tiles with a measurable label); ``thickness_bias``: the pooled
        median width of every predicted tile relative to the labels' (robust to the few
        tiles a small validation set measures); ``membrane_px``: labelled mid-line measured."""
        rel, pooled = [], []
        for label, pred in zip(self.labels, preds, strict=True):
            got = chords_px(pred)
            pooled.append(got)
            if np.isfinite(label) and label > 0:
                rel.append((np.median(got) - label) / label if len(got) else MISSED)
        every = np.concatenate(pooled) if pooled else np.zeros(0)
        nan = float("nan")
        bias = nan
        if len(self.pooled):
            bias = float(np.median(every) / np.median(self.pooled) - 1) if len(every) else MISSED
        r = np.array(rel)
        return {
            "thickness_err": float(np.abs(r).mean()) if len(r) else nan,
            "thickness_bias": bias,
            "tiles": len(r),
            "membrane_px": len(self.pooled),
        }


@torch.no_grad()
def probabilities(
    model: torch.nn.Module, batches: Batches, prec: Precision, channels_last: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (float16) and labels (bool) of every tile of ``batches``, (N, H, W)."""
    net = unwrap(model)
    net.eval()
    probs, masks = [], []
    for x, y in batches:
        with prec.autocast():
            logits = net(layout(x.to(prec.device), channels_last))
        probs.append(torch.sigmoid(logits.float())[:, 0].cpu().numpy().astype(np.float16))
        masks.append(y[:, 0].numpy() > 0.5)
    if not probs:
        return np.zeros((0, 1, 1), np.float16), np.zeros((0, 1, 1), bool)
    return np.concatenate(probs), np.concatenate(masks)


def sweep(
    probs: np.ndarray, masks: np.ndarray, candidates: np.ndarray = CANDIDATES
) -> list[dict[str, float]]:
    """Pooled Dice and thickness error of the validation tiles at each threshold."""
    widths = Widths.of(masks)
    rows = []
    for t in candidates:
        pred = probs > t
        dice = metrics.dice(masks, pred)
        rows.append({"threshold": float(t), "dice": dice, **widths.error(pred)})
    return rows


def choose(rows: list[dict[str, float]], dice_tolerance: float, min_membrane_px: int) -> dict:
    """The threshold among ``rows`` (a ``sweep``) whose pooled width is nearest the labels',
    among those with Dice within ``dice_tolerance`` of the best; 0.5 when the validation
    tiles hold less than ``min_membrane_px`` of measurable labelled mid-line (too little to
    choose on: a few tiles' membranes would set it)."""
    at_half = min(rows, key=lambda r: abs(r["threshold"] - 0.5))
    best_dice = max(r["dice"] for r in rows)
    fair = [r for r in rows if r["dice"] >= best_dice - dice_tolerance]
    measured = [r for r in fair if np.isfinite(r["thickness_bias"])]
    length = int(rows[0]["membrane_px"])
    if measured and length >= min_membrane_px:
        pick = min(measured, key=lambda r: (abs(r["thickness_bias"]), -r["dice"]))
        rule = (
            f"pooled width nearest the labels' among the thresholds within {dice_tolerance} of "
            f"the best validation Dice ({best_dice:.4f}), on {length} px of labelled mid-line"
        )
    else:
        pick = at_half
        rule = (
            f"0.5 kept: {length} px of labelled mid-line in the validation tiles, fewer than "
            f"train.min_membrane_px = {min_membrane_px}"
        )
    return {
        "threshold": pick["threshold"],
        "rule": rule,
        "val_dice": round(pick["dice"], 5),
        "val_thickness_err": _round(pick["thickness_err"]),
        "val_thickness_bias": _round(pick["thickness_bias"]),
        "val_tiles": int(pick["tiles"]),
        "val_membrane_px": length,
        "at_0.5": {k: _round(v) for k, v in at_half.items()},
    }


def _round(v: float) -> float | None:
    return round(float(v), 5) if np.isfinite(v) else None


def record(model: torch.nn.Module, p: TrainParams, val: Batches, prec: Precision) -> dict:
    """Set the model's threshold (``p.threshold``: a number, or ``auto``: chosen on the
    validation tiles, see ``gbmseg.engine.calibration``); what was chosen and why."""
    if p.threshold != "auto":
        model.set_threshold(p.threshold)
        return {"threshold": p.threshold, "rule": "train.threshold"}
    if not len(val.images):
        model.set_threshold(None)
        log.warning(
            "no validation tiles to choose a threshold on: the model records none (0.5 is "
            "used); validation images, or held-out strips with train.min_membrane_px of "
            "membrane (train.holdout, train.steps_per_epoch > 0), let one be chosen"
        )
        return {"threshold": None, "rule": "none chosen: no validation tiles"}
    every = Batches(val.images, val.masks, p.batch_size, train=False)  # all ranks' shares
    probs, masks = probabilities(model, every, prec, p.channels_last)
    rows = sweep(probs, masks)
    chosen = choose(rows, p.threshold_dice_tolerance, p.min_membrane_px)
    model.set_threshold(chosen["threshold"])
    log.info(
        "threshold %.2f: validation Dice %.4f, thickness %+.1f%% (at 0.5: Dice %.4f, %s); %s",
        chosen["threshold"],
        chosen["val_dice"],
        100 * (chosen["val_thickness_bias"] or 0.0),
        chosen["at_0.5"]["dice"],
        _signed_pct(chosen["at_0.5"]["thickness_bias"]),
        chosen["rule"],
    )
    return chosen | {"sweep": [{k: _round(v) for k, v in r.items()} for r in rows]}


def _signed_pct(v: float | None) -> str:
    return "thickness not measurable" if v is None else f"thickness {100 * v:+.1f}%"
