"""Segmentation metrics on binary maps (1 = structure)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def confusion(truth: np.ndarray, pred: np.ndarray) -> tuple[int, int, int, int]:
    t, p = truth.astype(bool), pred.astype(bool)
    tp = int(np.count_nonzero(t & p))
    fp = int(np.count_nonzero(~t & p))
    fn = int(np.count_nonzero(t & ~p))
    tn = int(t.size - tp - fp - fn)
    return tp, fp, fn, tn


def dice(truth: np.ndarray, pred: np.ndarray) -> float:
    tp, fp, fn, _ = confusion(truth, pred)
    denom = 2 * tp + fp + fn
    return 1.0 if denom == 0 else 2 * tp / denom


def iou(truth: np.ndarray, pred: np.ndarray) -> float:
    tp, fp, fn, _ = confusion(truth, pred)
    denom = tp + fp + fn
    return 1.0 if denom == 0 else tp / denom


def _boundary(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(bool)
    return m & ~ndimage.binary_erosion(m, border_value=1)


def boundary_f1(truth: np.ndarray, pred: np.ndarray, tolerance: float = 2.0) -> float:
    """F1 of boundary pixels matched within ``tolerance`` pixels (Csurka et al. 2013)."""
    bt, bp = _boundary(truth), _boundary(pred)
    if not bt.any() and not bp.any():
        return 1.0
    if not bt.any() or not bp.any():
        return 0.0
    dt_t = ndimage.distance_transform_edt(~bt)
    dt_p = ndimage.distance_transform_edt(~bp)
    precision = float((dt_t[bp] <= tolerance).mean())
    recall = float((dt_p[bt] <= tolerance).mean())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def scores(truth: np.ndarray, pred: np.ndarray, tolerance: float = 2.0) -> dict[str, float]:
    tp, fp, fn, tn = confusion(truth, pred)
    n = tp + fp + fn + tn
    return {
        "dice": dice(truth, pred),
        "iou": iou(truth, pred),
        "precision": 1.0 if tp + fp == 0 else tp / (tp + fp),
        "recall": 1.0 if tp + fn == 0 else tp / (tp + fn),
        "pixel_error": (fp + fn) / n,
        "boundary_f1": boundary_f1(truth, pred, tolerance),
    }
