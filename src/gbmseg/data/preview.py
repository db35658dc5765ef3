"""Pictures a person looks at: mask overlays and contact sheets."""

from __future__ import annotations

import numpy as np

# true positive, false positive, false negative
TP, FP, FN = (0, 200, 0), (255, 40, 40), (40, 120, 255)


def overlay(
    image: np.ndarray, mask: np.ndarray, colour=(255, 60, 60), alpha: float = 0.45
) -> np.ndarray:
    """RGB uint8 picture of ``image`` with ``mask`` (1 = structure) tinted in ``colour``."""
    rgb = np.repeat(image[..., None], 3, axis=2).astype(np.float32)
    m = mask.astype(bool)
    rgb[m] = (1 - alpha) * rgb[m] + alpha * np.asarray(colour, np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def error_overlay(
    image: np.ndarray, truth: np.ndarray, pred: np.ndarray, alpha: float = 0.5
) -> np.ndarray:
    """TP green, FP red, FN blue over the grayscale image."""
    t, p = truth.astype(bool), pred.astype(bool)
    rgb = np.repeat(image[..., None], 3, axis=2).astype(np.float32)
    for sel, colour in ((t & p, TP), (~t & p, FP), (t & ~p, FN)):
        rgb[sel] = (1 - alpha) * rgb[sel] + alpha * np.asarray(colour, np.float32)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def thumbnail(rgb: np.ndarray, size: int = 256) -> np.ndarray:
    """Shrink an RGB picture so its longer side is at most ``size`` pixels."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    if scale >= 1:
        return rgb
    im = Image.fromarray(rgb).resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR
    )
    return np.asarray(im)


def grid(tiles: list[np.ndarray], cols: int = 4, pad: int = 4) -> np.ndarray:
    """Lay RGB tiles out on a white sheet (tiles may differ in size)."""
    cols = max(1, min(cols, len(tiles)))
    rows = -(-len(tiles) // cols)
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    sheet = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        sheet[y : y + t.shape[0], x : x + t.shape[1]] = t
    return sheet


def overlay_grid(pairs: list[tuple[np.ndarray, np.ndarray]], cols: int = 4) -> np.ndarray:
    return grid([overlay(img, msk) for img, msk in pairs], cols)
