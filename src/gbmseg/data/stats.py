"""Intensity statistics of image sets (the source histogram a model carries)."""

from __future__ import annotations

import numpy as np

BINS = 32


def histogram(images: np.ndarray) -> np.ndarray:
    """Normalised intensity histogram of uint8 images (any shape), ``BINS`` bins."""
    h = np.bincount((np.asarray(images, np.uint8).ravel() >> 3), minlength=BINS).astype(float)
    return h / max(1.0, h.sum())
