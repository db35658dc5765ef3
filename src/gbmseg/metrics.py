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


def hd95(truth: np.ndarray, pred: np.ndarray) -> float:
    """95th percentile of the symmetric boundary-to-boundary distance, in pixels."""
    bt, bp = _boundary(truth), _boundary(pred)
    if not bt.any() and not bp.any():
        return 0.0
    if not bt.any() or not bp.any():
        return float(np.hypot(*truth.shape))  # nothing to match: the worst possible distance
    d_pt = ndimage.distance_transform_edt(~bt)[bp]
    d_tp = ndimage.distance_transform_edt(~bp)[bt]
    return float(max(np.percentile(d_pt, 95), np.percentile(d_tp, 95)))


def adapted_rand_error(truth: np.ndarray, pred: np.ndarray) -> float:
    """ISBI-2012 adapted Rand error of the regions the structure separates (structure ignored)."""
    from skimage.metrics import adapted_rand_error as are

    four = ndimage.generate_binary_structure(2, 1)
    lt, _ = ndimage.label(~truth.astype(bool), structure=four)
    lp, _ = ndimage.label(~pred.astype(bool), structure=four)
    if lt.max() == 0:
        return 0.0 if lp.max() == 0 else 1.0
    return float(are(lt, lp, ignore_labels=(0,))[0])


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
        "hd95": hd95(truth, pred),
        "adapted_rand_error": adapted_rand_error(truth, pred),
    }
