"""Deterministic synthetic EM images shaped like the lab's GBM micrographs.

Each image has a dark curved ribbon (the "GBM") of known constant thickness between two
cell regions of different brightness, a textured background, dark distractor blobs and
noise.  Masks follow the lab's layout (``images/NAME.png``, ``masks/NAME.png``) and
polarity; ``meta.json`` records the pixel size and the true thickness of every image.
The bytes are identical on every run for the same parameters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from gbmseg.config import SynthParams
from gbmseg.data.atomic import atomic_dir, write_json
from gbmseg.data.io import binary_to_mask, write_png

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Look:
    """Grey levels and texture of one synthetic domain."""

    sides: tuple[float, float]
    ribbon: float
    blob: float
    texture: float
    texture_sigma: float
    blur: float


LOOKS = {
    # the lab's TEM: dark GBM between a grey podocyte side and a brighter capillary lumen
    "target": Look(sides=(150, 195), ribbon=70, blob=75, texture=18, texture_sigma=3.0, blur=1.0),
    # a visibly different domain for pretraining: brighter, smoother, lower contrast
    "source": Look(sides=(205, 215), ribbon=120, blob=125, texture=8, texture_sigma=8.0, blur=2.0),
}


def _texture(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    t = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma)
    return t / (t.std() + 1e-9)


def _centerline(rng: np.random.Generator, size: int) -> np.ndarray:
    """Points (x, y) along a smooth random curve crossing the whole image."""
    theta = rng.uniform(0, np.pi)
    amp = rng.uniform(0.05, 0.18) * size
    wavelength = rng.uniform(0.6, 1.6) * size
    phase = rng.uniform(0, 2 * np.pi)
    offset = rng.uniform(-0.15, 0.15) * size
    u = np.arange(-size, size, 0.25)
    v = offset + amp * np.sin(2 * np.pi * u / wavelength + phase)
    c, s = np.cos(theta), np.sin(theta)
    centre = size / 2
    return np.stack([centre + u * c - v * s, centre + u * s + v * c], axis=1)


def render(rng: np.random.Generator, p: SynthParams) -> tuple[np.ndarray, np.ndarray, float]:
    """One (image uint8, structure {0,1}, thickness_px) triple."""
    look = LOOKS[p.domain]
    size = p.size
    thickness_px = float(rng.uniform(*p.thickness_nm)) / p.pixel_size_nm
    line = _centerline(rng, size)
    yy, xx = np.mgrid[0:size, 0:size]
    pix = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float64)
    dist, idx = cKDTree(line).query(pix)
    dist = dist.reshape(size, size)
    # which side of the curve each pixel lies on (sign of the cross product with the tangent)
    tangent = np.gradient(line, axis=0)[idx]
    rel = pix - line[idx]
    side = (tangent[:, 0] * rel[:, 1] - tangent[:, 1] * rel[:, 0] > 0).reshape(size, size)
    ribbon = dist <= thickness_px / 2

    img = np.where(side, look.sides[0], look.sides[1]).astype(np.float64)
    img += look.texture * _texture(rng, size, look.texture_sigma)
    img[ribbon] = look.ribbon + 0.5 * look.texture * _texture(rng, size, 1.0)[ribbon]
    n_blobs = int(rng.integers(p.n_blobs[0], p.n_blobs[1] + 1))
    for _ in range(n_blobs):
        r = rng.uniform(3, 10) * size / 256
        for _attempt in range(20):
            cx, cy = rng.uniform(0, size, 2)
            if dist[int(cy), int(cx)] > thickness_px / 2 + 2 * r + 3:
                break
        ax, ay = r * rng.uniform(0.6, 1.4, 2)
        blob = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1
        img[blob & ~ribbon] = look.blob
    img = ndimage.gaussian_filter(img, look.blur)
    img += rng.normal(0, p.noise_std, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), ribbon.astype(np.uint8), thickness_px


def run(p: SynthParams, out: str | Path, positive: str) -> dict:
    """Write ``p.n_images`` image/mask pairs and ``meta.json`` under ``out`` (atomically)."""
    out = Path(out)
    seeds = np.random.SeedSequence(p.seed).spawn(p.n_images)
    meta: dict = {
        "generator": "gbmseg synth",
        "domain": p.domain,
        "pixel_size_nm": p.pixel_size_nm,
        "positive": positive,
        "images": {},
    }
    with atomic_dir(out) as tmp:
        for i, seed in enumerate(seeds):
            name = f"{p.domain[:3]}_{i:03d}.png"
            img, structure, t_px = render(np.random.default_rng(seed), p)
            write_png(tmp / "images" / name, img)
            write_png(tmp / "masks" / name, binary_to_mask(structure, positive))
            meta["images"][name] = {
                "thickness_px": round(t_px, 4),
                "thickness_nm": round(t_px * p.pixel_size_nm, 2),
                "positive_fraction": round(float(structure.mean()), 5),
            }
        write_json(tmp / "meta.json", meta)
    log.info("synth: wrote %d %s-domain pairs to %s", p.n_images, p.domain, out)
    return meta
