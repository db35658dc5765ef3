"""Sliding-window inference with Gaussian blending, for images of any size.

Tiles are predicted in raster order, a batch at a time, and blended into a rolling band
one tile high; rows are handed out as soon as no later tile can touch them.  Memory is
bounded by the tile batch and the image width, never by the image height.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from gbmseg.data import resample
from gbmseg.data.io import starts
from gbmseg.engine.amp import Precision


def gaussian_window(tile: int, sigma_frac: float = 0.125) -> np.ndarray:
    ax = np.arange(tile) - (tile - 1) / 2
    g = np.exp(-(ax**2) / (2 * (sigma_frac * tile) ** 2))
    w = np.outer(g, g)
    return (w / w.max()).clip(1e-3).astype(np.float32)


def _to_tensor(x: np.ndarray, prec: Precision) -> torch.Tensor:
    t = torch.from_numpy(x).to(prec.device).unsqueeze(1).float()
    return t.div_(255) if x.dtype == np.uint8 else t


@torch.no_grad()
def _predict_tiles(model, x: np.ndarray, prec: Precision, tta: bool) -> np.ndarray:
    """Probabilities (N, tile, tile) for a stack of tiles; flip TTA averages 4 views."""
    t = _to_tensor(x, prec)
    flips = [(), (3,), (2,), (2, 3)] if tta else [()]
    total = torch.zeros_like(t[:, 0], dtype=torch.float32)
    for dims in flips:
        view = t.flip(dims) if dims else t
        with prec.autocast():
            logits = model(view).float()
        prob = torch.sigmoid(logits)
        total += (prob.flip(dims) if dims else prob)[:, 0]
    return (total / len(flips)).cpu().numpy()


def iter_bands(
    model: torch.nn.Module,
    image: np.ndarray,
    prec: Precision,
    tile: int = 256,
    overlap: float = 0.25,
    batch: int = 4,
    tta: bool = False,
) -> Iterator[np.ndarray]:
    """Yield finished probability rows top to bottom as float32 blocks of shape (n, W)."""
    model.eval()
    mult = getattr(model, "multiple", 1)
    tile = max(mult, tile // mult * mult)
    h, w = image.shape
    ph, pw = max(0, tile - h), max(0, tile - w)
    img = np.pad(np.asarray(image[:, :]), ((0, ph), (0, pw)), mode="reflect") if ph or pw else image
    H, W = img.shape
    step = max(1, int(tile * (1 - overlap)))
    win = gaussian_window(tile)
    acc = np.zeros((tile, W), np.float32)
    norm = np.zeros((tile, W), np.float32)
    base = 0
    for y in starts(H, tile, step):
        if y > base:  # rows [base, y) can no longer change
            n = y - base
            yield (acc[:n] / norm[:n])[:, :w][: max(0, h - base)]
            for buf in (acc, norm):  # shift the band up in place
                buf[:-n] = buf[n:].copy()
                buf[-n:] = 0
            base = y
        xs = starts(W, tile, step)
        for i in range(0, len(xs), batch):
            chunk = xs[i : i + batch]
            x = np.stack([np.asarray(img[y : y + tile, xx : xx + tile]) for xx in chunk])
            for xx, pr in zip(chunk, _predict_tiles(model, x, prec, tta), strict=True):
                acc[:, xx : xx + tile] += pr * win
                norm[:, xx : xx + tile] += win
    rest = min(tile, H - base)
    yield (acc[:rest] / norm[:rest])[:, :w][: max(0, h - base)]


def predict_proba(model: torch.nn.Module, image: np.ndarray, prec: Precision, *tiling, **kw):
    """Probability map (H, W) float32 for a 2-D image (uint8, or floats in [0, 1]); tiling
    arguments as :func:`iter_bands` (tile, overlap, batch, tta)."""
    return np.concatenate(list(iter_bands(model, image, prec, *tiling, **kw)))


DEFAULT_THRESHOLD = 0.5  # a model that records no threshold of its own


def threshold_for(model, setting: float | str) -> float:
    """The threshold a step applies: ``setting`` (params ``threshold``) when a number, else
    (``model``) the one chosen with the model, 0.5 where it records none."""
    if setting != "model":
        return float(setting)
    fn = getattr(model, "threshold", None)
    chosen = fn() if callable(fn) else None
    return DEFAULT_THRESHOLD if chosen is None else chosen


def model_pixel_size(model) -> float | None:
    """The pixel size a model was trained at (None: unknown)."""
    fn = getattr(model, "pixel_size_nm", None)
    return fn() if callable(fn) else None


def predict_at_scale(
    model: torch.nn.Module,
    image: np.ndarray,
    prec: Precision,
    image_nm: float | None,
    *tiling,
    **kw,
) -> np.ndarray:
    """:func:`predict_proba` on the image brought to the model's pixel size, the
    probabilities brought back to the image's grid (see ``gbmseg.data.resample``); as it
    comes when either pixel size is unknown or they agree."""
    model_nm = model_pixel_size(model)
    if not resample.needed(image_nm, model_nm):
        return predict_proba(model, image, prec, *tiling, **kw)
    small = resample.image(image, resample.shape_at(image.shape, image_nm, model_nm))
    prob = predict_proba(model, small, prec, *tiling, **kw)
    return resample.probabilities(prob, image.shape)
