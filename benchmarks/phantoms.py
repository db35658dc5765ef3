"""Masks of known thickness for checking the thickness measures (tests and benchmarks).

* ``ribbon``: a straight or curved band of width ``w`` px at any angle, rasterised at pixel
  centres (a sub-pixel offset keeps pixel centres off the band's edges, where a raster is
  ambiguous).
* ``slab_section`` / ``slab_tilts``: a flat membrane of true thickness ``T`` cut at random
  tilts: bands of apparent width ``T / sin(tilt)``, the oblique sectioning that the
  stereological correction (8 / 3 pi x harmonic mean) undoes.
"""

from __future__ import annotations

import numpy as np


def ribbon(
    w: float, size: int = 320, angle: float = 0.0, curved: bool = False, offset: float = 0.37
) -> np.ndarray:
    """0/1 band of width ``w`` through the image centre at ``angle`` degrees; ``curved``:
    an arc of radius 3 x ``size``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    c = size / 2 + offset
    th = np.deg2rad(angle)
    u = (xx - c) * np.cos(th) + (yy - c) * np.sin(th)
    v = -(xx - c) * np.sin(th) + (yy - c) * np.cos(th)
    d = np.abs(np.hypot(u, v + 3 * size) - 3 * size) if curved else np.abs(v)
    return (d <= w / 2).astype(np.uint8)


def slab_tilts(rng: np.random.Generator, n: int, max_width: float = 8.0) -> np.ndarray:
    """Angles (radians) between section plane and a flat membrane for ``n`` sections cut at
    isotropic random orientations, each counted in proportion to the membrane trace it
    shows (density proportional to sin^2): the population the orthogonal intercept method
    samples.  Stratified: one random draw in each of ``n`` equal-probability strata, so a
    few dozen sections represent the distribution.  Cuts flatter than ``1 / max_width``
    (apparent width > max_width x thickness, under 0.1% of the trace) are left out so a
    section fits an image."""
    lo = np.arcsin(1 / max_width)
    grid = np.linspace(lo, np.pi / 2, 20001)
    cdf = (grid - lo) / 2 - (np.sin(2 * grid) - np.sin(2 * lo)) / 4  # integral of sin^2
    u = (np.arange(n) + rng.uniform(0, 1, n)) / n
    return np.interp(u * cdf[-1], cdf, grid)


def slab_section(
    thickness: float, tilt: float, angle: float, size: int, offset: float = 0.37
) -> np.ndarray:
    """A flat membrane of true ``thickness`` px cut at ``tilt`` (radians between section and
    membrane): a band of apparent width thickness / sin(tilt) at in-plane ``angle`` degrees."""
    return ribbon(thickness / np.sin(tilt), size, angle, False, offset)
