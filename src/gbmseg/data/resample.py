"""Bring an image, a mask or a probability map to another pixel size.

Images: linear interpolation, with a Gaussian anti-aliasing prefilter when shrinking (no
moiré from the section's texture). Masks: the structure's share of each output pixel (linear
interpolation of the 0/1 map, area-averaged when shrinking) thresholded at one half, which
keeps the membrane's area and so its thickness. Probabilities: linear, thresholded afterwards
on the image's own grid.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import resize

TOLERANCE = 1e-3  # relative: pixel sizes this close are taken as equal (no resampling)


def shape_at(shape: tuple[int, int], from_nm: float, to_nm: float) -> tuple[int, int]:
    """The shape of an image of ``shape`` pixels of ``from_nm`` on a grid of ``to_nm``."""
    f = from_nm / to_nm
    return max(1, round(shape[0] * f)), max(1, round(shape[1] * f))


def needed(from_nm: float | None, to_nm: float | None) -> bool:
    return bool(from_nm and to_nm) and abs(from_nm - to_nm) > TOLERANCE * to_nm


def _resize(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    shrink = shape[0] < arr.shape[0] or shape[1] < arr.shape[1]
    return resize(
        arr.astype(np.float32), shape, order=1, mode="reflect", anti_aliasing=shrink,
        preserve_range=True,
    )  # fmt: skip


def image(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A uint8 image on a grid of ``shape``."""
    if img.shape == shape:
        return img
    return np.clip(np.rint(_resize(img, shape)), 0, 255).astype(np.uint8)


def mask(structure: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 0/1 mask on a grid of ``shape`` (see the module docstring)."""
    if structure.shape == shape:
        return structure
    return (_resize(structure > 0, shape) >= 0.5).astype(np.uint8)


def probabilities(prob: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if prob.shape == shape:
        return prob
    return np.clip(_resize(prob, shape), 0.0, 1.0)
