"""A U-Net with hand-set weights that marks dark structure (standardised intensity below
-0.6): a deterministic segmenter for tests of what happens around a model (files, pixel
sizes, resampling), with no training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gbmseg.engine import checkpoint
from gbmseg.model.unet import UNet, build


def dark_model(pixel_size_nm: float | None = None) -> UNet:
    m = build({"depth": 1, "base": 1, "norm": "none", "up": "transpose"})
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        enc = m.encoders[0]
        enc[0].weight[0, 0, 1, 1], enc[0].bias[0] = -1.0, -0.5  # relu(-z - 0.5)
        enc[3].weight[0, 0, 1, 1] = 1.0
        dec = m.decoders[0].conv
        dec[0].weight[0, 0, 1, 1] = 1.0  # the skip channel, as it is
        dec[3].weight[0, 0, 1, 1] = 1.0
        m.head.weight[0, 0, 0, 0], m.head.bias[0] = 40.0, -4.0
    m.set_pixel_size_nm(pixel_size_nm)
    return m.eval()


def save(model: UNet, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint.save(folder / "model.pt", checkpoint.model_state(model))
    return folder


def membrane_image(size=256, width=14.0, seed=0):
    """A dark ribbon on a grey background, slightly blurred and noisy, and its mask."""
    from scipy import ndimage

    from benchmarks.phantoms import ribbon

    structure = ribbon(width, size, 25.0, True)
    img = np.where(structure > 0, 60.0, 190.0)
    img = ndimage.gaussian_filter(img, 1.0) + np.random.default_rng(seed).normal(0, 3, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), structure
