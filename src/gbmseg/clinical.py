"""The figures a nephropathologist reports beside the orthogonal-intercept harmonic mean.

* **Haas direct method** (Haas 2009, Arch Pathol Lab Med 133:224): the arithmetic mean of
  the membrane's width at 3 points on each of at least 10 capillary loops. In a mask, a
  *capillary loop* is a connected stretch of membrane (a connected component with a measured
  mid-line); loops are drawn at random (seeded), 3 mid-line points at random on each, oblique
  points left out. Where the membrane forms one connected network the figure rests on fewer
  loops, and the adequacy flag says so.
* **Thinnest 10%**: the mean width of the thinnest tenth of the membrane length; **thin
  fraction**: the fraction of the membrane length thinner than ``thin_below_nm`` (segmental
  vs diffuse thinning). Lengths are arc lengths along the mid-line (``Profile.medial_step``).
* **Adequacy**: a figure resting on fewer intercepts, loops or images than configured is
  flagged, never hidden.
* **Reference ranges** per method and per sex, with thin / thick flags.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from gbmseg import thickness

METHODS = {  # reference key -> the per-biopsy figure it is compared with
    "haas": "haas_mean_nm",
    "harmonic": "harmonic_mean_nm",
    "corrected": "harmonic_corrected_nm",
}


@dataclass
class Loops:
    """The mid-line of one mask cut into loops: each kept (non-oblique) point's width (nm),
    its loop label and its share of the mid-line length (nm)."""

    widths: np.ndarray
    loop: np.ndarray
    length: np.ndarray


def loops(mask: np.ndarray, prof: thickness.Profile, nm: float) -> Loops:
    labels, _ = ndimage.label(np.asarray(mask).astype(bool), structure=np.ones((3, 3)))
    keep = ~prof.medial_oblique
    pts = prof.medial_points[keep]
    ys, xs = np.round(pts).astype(int).T if len(pts) else (np.zeros(0, int),) * 2
    return Loops(
        prof.medial[keep] * nm,
        labels[ys, xs],
        prof.medial_step[keep] * nm,
    )


def concat(items: list[Loops], names: list[str]) -> Loops:
    """The loops of several images, each image's labels kept apart."""
    if not items:
        return Loops(np.zeros(0), np.zeros(0, object), np.zeros(0))
    return Loops(
        np.concatenate([i.widths for i in items]),
        np.concatenate([[f"{n}:{v}" for v in i.loop] for i, n in zip(items, names, strict=True)]),
        np.concatenate([i.length for i in items]),
    )


def haas(lp: Loops, n_loops: int, points: int, seed: int) -> tuple[float, int, list]:
    """(mean width of ``points`` random points on each of up to ``n_loops`` random loops,
    the number of loops used, the loops drawn); loops with fewer points are skipped."""
    rng = np.random.default_rng(seed)
    ids, counts = np.unique(lp.loop, return_counts=True)
    usable = ids[counts >= points]
    drawn = rng.permutation(usable)[:n_loops]
    values = [rng.choice(lp.widths[lp.loop == i], points, replace=False) for i in drawn]
    mean = float(np.mean(np.concatenate(values))) if values else float("nan")
    return mean, len(drawn), list(drawn)


def thinnest(lp: Loops, fraction: float = 0.1) -> float:
    """Length-weighted mean width of the thinnest ``fraction`` of the membrane length."""
    if not len(lp.widths):
        return float("nan")
    order = np.argsort(lp.widths)
    w, length = lp.widths[order], lp.length[order]
    cum = np.cumsum(length)
    cut = fraction * cum[-1]
    take = np.minimum(length, np.maximum(0.0, cut - (cum - length)))
    return float(np.sum(w * take) / np.sum(take))


def thin_fraction(lp: Loops, below_nm: float) -> float:
    total = float(np.sum(lp.length))
    return float(np.sum(lp.length[lp.widths < below_nm]) / total) if total else float("nan")


def adequacy(counts: dict[str, int], minimum: dict[str, int]) -> str:
    """'' when every count reaches its minimum, else what falls short, e.g. '4 loops < 10'."""
    short = [f"{counts[k]} {k} < {m}" for k, m in minimum.items() if counts.get(k, 0) < m]
    return "; ".join(short)


def reference_flags(row: dict, ranges: dict[str, dict[str, list[float]]], sex: str) -> str:
    """'thin' / 'thick' per method whose figure lies outside its range for ``sex`` (sex
    unknown: outside the ranges of both); '' when every figure with a range is within."""
    flags = []
    for method, key in METHODS.items():
        by_sex = {s: r for s, r in (ranges.get(method) or {}).items() if r}
        chosen = [by_sex[sex]] if sex in by_sex else list(by_sex.values())
        value = row.get(key)
        if not chosen or value is None or not np.isfinite(value):
            continue
        lo, hi = min(r[0] for r in chosen), max(r[1] for r in chosen)
        if value < lo:
            flags.append(f"thin by {method} (< {lo:g} nm)")
        elif value > hi:
            flags.append(f"thick by {method} (> {hi:g} nm)")
    return "; ".join(flags)
