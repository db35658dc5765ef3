"""Sliding-window inference with Gaussian blending, for images of any size."""

from __future__ import annotations

import numpy as np
import torch

from gbmseg.engine.amp import Precision


def gaussian_window(tile: int, sigma_frac: float = 0.125) -> np.ndarray:
    ax = np.arange(tile) - (tile - 1) / 2
    g = np.exp(-(ax**2) / (2 * (sigma_frac * tile) ** 2))
    w = np.outer(g, g)
    return (w / w.max()).clip(1e-3).astype(np.float32)


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    s = list(range(0, length - tile + 1, step))
    if s[-1] != length - tile:
        s.append(length - tile)
    return s


@torch.no_grad()
def predict_proba(
    model: torch.nn.Module,
    image: np.ndarray,
    prec: Precision,
    tile: int = 256,
    overlap: float = 0.25,
    batch: int = 4,
) -> np.ndarray:
    """Probability map (H, W) float32 for a 2-D image (uint8, or floats in [0, 1])."""
    model.eval()
    mult = getattr(model, "multiple", 1)
    tile = max(mult, tile // mult * mult)
    h, w = image.shape
    ph, pw = max(0, tile - h), max(0, tile - w)
    img = np.pad(image, ((0, ph), (0, pw)), mode="reflect") if ph or pw else image
    H, W = img.shape
    step = max(1, int(tile * (1 - overlap)))
    coords = [(y, x) for y in _starts(H, tile, step) for x in _starts(W, tile, step)]
    acc = np.zeros((H, W), np.float32)
    norm = np.zeros((H, W), np.float32)
    win = gaussian_window(tile)
    for i in range(0, len(coords), batch):
        chunk = coords[i : i + batch]
        x = np.stack([img[y : y + tile, xx : xx + tile] for y, xx in chunk])
        t = torch.from_numpy(x).to(prec.device).unsqueeze(1).float()
        if x.dtype == np.uint8:
            t = t.div_(255)
        with prec.autocast():
            prob = torch.sigmoid(model(t).float())[:, 0].cpu().numpy()
        for (y, xx), pr in zip(chunk, prob, strict=True):
            acc[y : y + tile, xx : xx + tile] += pr * win
            norm[y : y + tile, xx : xx + tile] += win
    return (acc / norm)[:h, :w]
