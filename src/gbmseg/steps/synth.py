"""Deterministic synthetic EM images shaped like the lab's GBM micrographs, in two domains.

Each image has a dark curved ribbon (the "GBM", labelled) of known constant thickness
between two cell regions of different brightness, and unlabelled look-alikes: foot
processes (dark bumps on one side of the ribbon), thin cell membranes (dark lines) and
dark blobs, on a textured, noisy background.  The *target* domain is the lab's TEM:
grainy, the look-alikes nearly as dark as the GBM.  The *source* domain (the pretraining
set) shows the same anatomy brighter and smoother.  Masks follow the lab's layout
(``images/NAME.png``, ``masks/NAME.png``) and polarity; ``meta.json`` records the pixel
size and every ribbon's true thickness.  The bytes are identical on every run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from gbmseg.config import SynthParams
from gbmseg.data import scale
from gbmseg.data.atomic import atomic_dir, write_json
from gbmseg.data.io import binary_to_mask, write_png

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Look:
    """Grey levels, texture and clutter of one synthetic domain."""

    sides: tuple[float, float]
    ribbon: float
    clutter: float  # grey level of the unlabelled look-alikes (feet, membranes, blobs)
    texture: float
    texture_sigma: float
    blur: float
    noise: float  # x synth.noise_std
    lines: int  # thin cell membranes per image


# The looks are drawn at 20 nm/px. Every length in them (texture grain, blur, thin clutter
# lines, margins) is a length in the specimen, so another synth.pixel_size_nm images the same
# kind of specimen at another magnification; only the noise is per pixel (the detector's).
REFERENCE_NM = 20.0

LOOKS = {
    "target": Look((150, 185), 95, 102, 16, 2.0, 1.2, 2.2, 4),
    "source": Look((200, 225), 105, 150, 10, 4.0, 1.3, 1.5, 4),
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


def _distance(line: np.ndarray, pix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    dist, idx = cKDTree(line).query(pix)
    return dist.reshape(size, size), idx


def _clutter(rng, size, dist, side, thickness_px, p: SynthParams, line, f: float) -> np.ndarray:
    """Unlabelled dark look-alikes: foot processes, thin membranes, blobs (a boolean map)."""
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.zeros((size, size), bool)
    inside = line[(line >= 0).all(axis=1) & (line < size).all(axis=1)]
    for k in rng.choice(len(inside), size=int(rng.integers(4, 10)), replace=False):
        cx, cy = inside[k]
        r = thickness_px * rng.uniform(0.5, 0.9)
        out |= (((xx - cx) ** 2 + (yy - cy) ** 2) <= (thickness_px / 2 + r) ** 2) & side
    for _ in range(int(rng.integers(p.n_blobs[0], p.n_blobs[1] + 1))):
        r = rng.uniform(3, 10) * size / 256
        cx, cy = rng.uniform(0, size, 2)
        ax, ay = r * rng.uniform(0.6, 1.4, 2)
        out |= ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1
    return out & (dist > thickness_px / 2 + f)


def _membranes(rng, size: int, n: int, keep_out: np.ndarray, f: float) -> np.ndarray:
    pix = np.stack(np.mgrid[0:size, 0:size][::-1], axis=-1).reshape(-1, 2).astype(float)
    out = np.zeros((size, size), bool)
    for _ in range(n):
        d, _ = _distance(_centerline(rng, size), pix, size)
        out |= d <= rng.uniform(0.8, 1.6) * f
    return out & ~keep_out


def render(
    rng: np.random.Generator, p: SynthParams, domain: str = "target"
) -> tuple[np.ndarray, np.ndarray, float]:
    """One (image uint8, structure {0,1}, thickness_px) triple of ``domain``."""
    look, size = LOOKS[domain], p.size
    f = REFERENCE_NM / p.pixel_size_nm  # pixels per pixel of the reference scale
    thickness_px = float(rng.uniform(*p.thickness_nm)) / p.pixel_size_nm
    line = _centerline(rng, size)
    yy, xx = np.mgrid[0:size, 0:size]
    pix = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float64)
    dist, idx = _distance(line, pix, size)
    # which side of the curve each pixel lies on (sign of the cross product with the tangent)
    tangent = np.gradient(line, axis=0)[idx]
    rel = pix - line[idx]
    side = (tangent[:, 0] * rel[:, 1] - tangent[:, 1] * rel[:, 0] > 0).reshape(size, size)
    ribbon = dist <= thickness_px / 2

    img = np.where(side, look.sides[0], look.sides[1]).astype(np.float64)
    img += look.texture * _texture(rng, size, look.texture_sigma * f)
    clutter = _clutter(rng, size, dist, side, thickness_px, p, line, f)
    clutter |= _membranes(rng, size, look.lines, dist <= thickness_px / 2 + 2 * f, f)
    img[clutter] = look.clutter + 0.5 * look.texture * _texture(rng, size, f)[clutter]
    img[ribbon] = look.ribbon + 0.5 * look.texture * _texture(rng, size, f)[ribbon]
    img = ndimage.gaussian_filter(img, look.blur * f)
    img += rng.normal(0, p.noise_std * look.noise, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), ribbon.astype(np.uint8), thickness_px


def write_set(
    p: SynthParams, out: str | Path, positive: str, domain: str, n: int, n_test: int = 0
) -> dict:
    """``n`` pairs of ``domain`` (plus ``n_test`` in ``test/``) and ``meta.json`` under ``out``,
    atomically; each image's seed derives from synth.seed and the domain."""
    out = Path(out)
    stream = 0 if domain == "source" else 1
    plan = [
        (f"{domain[:3]}_{i:03d}.png", s, False)
        for i, s in enumerate(np.random.SeedSequence([p.seed, stream]).spawn(n))
    ]
    plan += [
        (f"{domain[:3]}_t{i:03d}.png", s, True)  # test images: their own seed stream
        for i, s in enumerate(np.random.SeedSequence([p.seed, stream, 1]).spawn(n_test))
    ]
    meta: dict = {
        "generator": "gbmseg synth",
        "domain": domain,
        "pixel_size_nm": p.pixel_size_nm,
        "positive": positive,
        "images": {},
    }
    calibration = scale.given(p.pixel_size_nm, "gbmseg synth (synth.pixel_size_nm)")
    with atomic_dir(out) as tmp:
        for name, seed, test in plan:
            folder = tmp / "test" if test else tmp
            img, structure, t_px = render(np.random.default_rng(seed), p, domain)
            write_png(folder / "images" / name, img, calibration)
            write_png(folder / "masks" / name, binary_to_mask(structure, positive), calibration)
            meta["images"][name] = {
                "test": test,
                "thickness_px": round(t_px, 4),
                "thickness_nm": round(t_px * p.pixel_size_nm, 2),
                "positive_fraction": round(float(structure.mean()), 5),
            }
        write_json(tmp / "meta.json", meta)
    log.info("synth: wrote %d %s-domain pairs (+%d test) to %s", n, domain, n_test, out)
    return meta


def run(
    p: SynthParams,
    source: str | Path | None,
    target: str | Path,
    source_positive: str = "black",
    *,
    target_positive: str = "black",
) -> dict:
    """The demo's two sets: a source domain to pretrain on and the lab-like target."""
    out = {
        "target": write_set(
            p, target, target_positive, "target", p.target_images, p.target_test_images
        )
    }
    if source is not None and p.source_images:
        out["source"] = write_set(p, source, source_positive, "source", p.source_images)
    return out
