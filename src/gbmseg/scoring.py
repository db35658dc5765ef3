"""Scoring a model on labelled images: the per-image table evaluate reports and register
compares, and the pooled threshold sweep, both from running counts (memory flat in the
number of images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from gbmseg import agreement
from gbmseg import metrics as M
from gbmseg.config import EvaluateParams, MeasureParams
from gbmseg.data.io import read, read_raw, to_uint8, write_png
from gbmseg.data.preview import error_overlay
from gbmseg.engine.amp import choose_precision
from gbmseg.inference import predict_at_scale, threshold_for

THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)


class Sweep:
    """Pooled TP/FP/FN per threshold, added up image by image."""

    def __init__(self, thresholds: np.ndarray = THRESHOLDS):
        self.thresholds = thresholds
        self.counts = np.zeros((len(thresholds), 3), np.int64)

    def add(self, truth: np.ndarray, prob: np.ndarray) -> None:
        for i, t in enumerate(self.thresholds):
            tp, fp, fn, _ = M.confusion(truth, prob > t)
            self.counts[i] += (tp, fp, fn)

    def rows(self) -> list[dict]:
        return [
            {
                "threshold": round(float(t), 3),
                "dice": 2 * tp / max(1, 2 * tp + fp + fn),
                "iou": tp / max(1, tp + fp + fn),
                "precision": tp / max(1, tp + fp),
                "recall": tp / max(1, tp + fn),
            }
            for t, (tp, fp, fn) in zip(self.thresholds, self.counts.tolist(), strict=True)
        ]


def score_images(
    model,
    p: EvaluateParams,
    folder: Path,
    names: list[str],
    overlays: Path | None = None,
    sweep: Sweep | None = None,
    desc: str = "evaluate",
    thickness: MeasureParams | None = None,
) -> list[dict]:
    """Per-image score rows of ``model`` on ``folder``'s images ``names`` (validated layout:
    images/ + masks/ with 1 = structure); TP/FP/FN overlays for the first ``max_overlays``;
    with ``thickness``, the GBM thickness measured on prediction and label beside them, in nm
    at each image's own pixel size (in pixels, ``pixel_size_nm`` empty, where it has none).
    The threshold: ``p.threshold``, or the model's own (``model``).  With ``p.resample``,
    each image is segmented at the model's pixel size."""
    prec = choose_precision("auto", "auto")
    model.to(prec.device)
    threshold = threshold_for(model, p.threshold)
    rows = []
    for i, name in enumerate(tqdm(names, desc=desc, unit="img", disable=None)):
        pic = read(folder / "images" / name)
        img, size = to_uint8(pic.pixels), pic.pixel_size
        truth = read_raw(folder / "masks" / name).astype(bool)
        image_nm = size.nm if size is not None and p.resample else None
        prob = predict_at_scale(model, img, prec, image_nm, p.tile, p.overlap, tta=p.tta)
        pred = prob > threshold
        rows.append(
            {"image": name, **M.scores(truth, pred), "positive_fraction": float(truth.mean())}
        )
        if thickness is not None:
            rows[-1] |= size.record() if size else {"pixel_size_nm": None}
            nm = size.nm if size else 1.0
            on = (agreement.measure(m, thickness, nm) for m in (pred, truth))
            figures = {k: v for k, v in agreement.row(name, *on).items() if k != "image"}
            if size is None:  # relative differences need no scale; figures in nm would
                figures = {k: v if k.endswith("_rel_diff") else None for k, v in figures.items()}
            rows[-1] |= figures
        if overlays is not None and i < p.max_overlays:
            write_png(overlays / name, error_overlay(img, truth, pred))
        if sweep is not None:
            sweep.add(truth, prob)
    return rows
