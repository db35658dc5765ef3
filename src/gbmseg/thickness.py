"""GBM thickness from a binary mask (1 = membrane), in pixels: two methods, unbiased.

Both measure *chords*: the length of the line through a point, perpendicular to the
membrane, between the two places where the mask (smoothed by one pixel, bilinearly
interpolated) crosses 0.5 -- a sub-pixel edge -- so odd and even widths, any orientation and
curved ribbons come out right (twice the distance to the nearest background pixel on the
medial axis overestimates an odd width by a whole pixel).
The membrane direction at a point is the dominant eigenvector of the mask's structure
tensor, integrated over about one membrane width.

* Medial axis: chords at the points of the medial axis (skeleton pieces shorter than
  ``min_length_px`` and points near the image border left out): the local thickness along
  the membrane, summarised by its median.
* Orthogonal intercepts (the clinical method, Jensen et al. 1979; Dische 1992): where the
  lines of a square grid cross the membrane's edge, the chord across the membrane.  Their
  harmonic mean estimates thickness; on sections cut at random angles through a membrane,
  ``8 / (3 pi)`` x the harmonic mean is the true thickness (the stereological correction,
  reported as its own figure).
* Oblique cuts: a point whose local width exceeds ``oblique_ratio`` x the median of its
  neighbourhood (radius ``oblique_window``) is flagged oblique.  An intercept *thinner*
  than the neighbourhood's median / ``oblique_ratio`` crosses a bump or a fragment beside
  the membrane, not the membrane (oblique cuts only ever widen it): it is dropped.
  Oblique points are left out of the direct figures (medial median and mean, uncorrected
  intercept statistics), which assume perpendicular cuts.  The stereologically corrected
  harmonic mean uses *every* remaining intercept: the correction already accounts for
  oblique cuts, so excluding them too would correct twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.morphology import medial_axis

STEREOLOGY = 8 / (3 * np.pi)
STEP = 0.25  # chord walking step, px
EDGE_SIGMA = 1.0  # px: smoothing that turns a pixel staircase into a sub-pixel edge


@dataclass
class Profile:
    """Measurements of one mask (pixels)."""

    medial: np.ndarray  # local width at kept medial-axis points
    medial_points: np.ndarray  # (N, 2) y, x
    medial_oblique: np.ndarray  # bool per medial point
    intercepts: np.ndarray  # orthogonal intercept lengths
    intercept_points: np.ndarray  # (M, 2) y, x where a grid line crosses the edge
    intercept_oblique: np.ndarray  # bool per intercept
    length_px: float  # medial-axis length measured (arc length)
    medial_step: np.ndarray  # each kept medial point's share of that length (px)


def normals(mask: np.ndarray, points: np.ndarray, scale: float) -> np.ndarray:
    """Unit normals (dy, dx) to the membrane at ``points`` (structure tensor, integration
    scale ``scale`` px)."""
    m = ndimage.gaussian_filter(mask.astype(np.float64), 1.0)
    gy, gx = np.gradient(m)
    jyy, jxy, jxx = (ndimage.gaussian_filter(a, scale) for a in (gy * gy, gx * gy, gx * gx))
    at = [ndimage.map_coordinates(a, points.T, order=1, mode="nearest") for a in (jyy, jxy, jxx)]
    theta = 0.5 * np.arctan2(2 * at[1], at[2] - at[0])  # dominant gradient direction
    return np.stack([np.sin(theta), np.cos(theta)], axis=1)


def chords(mask: np.ndarray, points: np.ndarray, dirs: np.ndarray, reach: float) -> np.ndarray:
    """Length of the chord through each point along ``dirs``, between the 0.5 crossings of
    the bilinear mask on either side; NaN where it does not close within ``reach`` px or
    an end lies on the image border (the membrane is cut there, not ending)."""
    if not len(points):
        return np.zeros(0)
    # a slightly smoothed mask: its 0.5 level follows the true edge between the pixel steps
    f = ndimage.gaussian_filter(mask.astype(np.float32), EDGE_SIGMA)
    h, w = f.shape
    t = np.arange(0, reach + STEP, STEP)
    total = np.zeros(len(points))
    for sign in (1.0, -1.0):
        ys = points[:, :1] + sign * dirs[:, :1] * t
        xs = points[:, 1:] + sign * dirs[:, 1:] * t
        v = ndimage.map_coordinates(f, [ys.ravel(), xs.ravel()], order=1, cval=0.0)
        v = v.reshape(len(points), len(t))
        below = v < 0.5
        below[:, 0] = False
        first = np.where(below.any(axis=1), below.argmax(axis=1), -1)
        i = np.clip(first, 1, len(t) - 1)
        a, b = v[np.arange(len(v)), i - 1], v[np.arange(len(v)), i]
        frac = np.clip((a - 0.5) / np.maximum(a - b, 1e-9), 0, 1)
        side = t[i - 1] + frac * STEP
        end = points + sign * dirs * side[:, None]
        inside = (
            (end[:, 0] > 0.5) & (end[:, 0] < h - 1.5) & (end[:, 1] > 0.5) & (end[:, 1] < w - 1.5)
        )
        total += np.where((first > 0) & inside, side, np.nan)
    return total


NEIGHBOURS = np.ones((3, 3), int)


def prune_spurs(skel: np.ndarray, dist: np.ndarray, factor: float = 2.0) -> np.ndarray:
    """The skeleton without its spurs: a branch from a free end to a junction shorter than
    ``factor`` x the distance to the edge at that junction (the membrane's full width) is a
    corner or a bump of the outline, not membrane (a rectangle's medial axis has one to each
    corner); it would add length that is not there and count its widths twice."""
    skel = skel.copy()
    count = ndimage.convolve(skel.astype(int), NEIGHBOURS, mode="constant") - 1
    h, w = skel.shape
    for y, x in np.argwhere(skel & (count == 1)):
        path, cur, prev = [(y, x)], (y, x), None
        while True:
            cy, cx = cur
            nxt = [
                (cy + dy, cx + dx)
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
                if (dy or dx) and 0 <= cy + dy < h and 0 <= cx + dx < w
                and skel[cy + dy, cx + dx] and (cy + dy, cx + dx) != prev
                and (cy + dy, cx + dx) not in path
            ]  # fmt: skip
            if len(nxt) != 1 or count[nxt[0]] >= 3:
                break
            prev, cur = cur, nxt[0]
            path.append(cur)
        junction = nxt[0] if len(nxt) == 1 else None
        if junction is not None and len(path) < factor * dist[junction]:
            for q in path:
                skel[q] = False
    return skel


def medial_points(mask: np.ndarray, min_length_px: int, trim_px: int) -> tuple[np.ndarray, float]:
    """Medial-axis points (y, x) of pieces at least ``min_length_px`` long, spurs pruned,
    away from the border (where the membrane is cut by the image edge); and the axis length
    kept."""
    # the thinning breaks ties in a random order unless seeded: the same mask, the same axis
    skel, dist = medial_axis(mask.astype(bool), return_distance=True, rng=0)
    skel = prune_spurs(skel, dist)
    labels, n = ndimage.label(skel, structure=np.ones((3, 3)))
    if n:
        sizes = ndimage.sum(skel, labels, index=np.arange(1, n + 1))
        skel &= np.isin(labels, 1 + np.flatnonzero(sizes >= min_length_px))
    h, w = skel.shape
    yy, xx = np.mgrid[0:h, 0:w]
    to_border = np.minimum.reduce([yy, xx, h - 1 - yy, w - 1 - xx])
    keep = skel & (to_border > dist + trim_px)
    return np.argwhere(keep).astype(np.float64), float(keep.sum())


def grid_crossings(mask: np.ndarray, spacing: float) -> np.ndarray:
    """Points just inside the membrane where the lines of a square grid cross its edge."""
    m = mask.astype(bool)
    found = []
    step = max(1, round(spacing))
    for axis in (0, 1):  # rows (horizontal lines), then columns (vertical lines)
        lines = m[::step] if axis == 0 else m[:, ::step].T
        idx, pos = np.nonzero(lines[:, 1:] != lines[:, :-1])
        inside = lines[idx, pos + 1]  # entering the membrane at pos + 0.5
        offset = np.where(inside, pos + 0.5 + STEP, pos + 0.5 - STEP)
        line = idx * step
        found.append(np.stack([line, offset], 1) if axis == 0 else np.stack([offset, line], 1))
    return np.concatenate(found).astype(np.float64) if found else np.zeros((0, 2))


def measured(mask: np.ndarray, medial: np.ndarray) -> np.ndarray:
    """The pieces of the mask that have a kept mid-line: specks and fragments too short to be
    membrane get no intercepts either."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if not n or not len(medial):
        return np.zeros_like(mask, dtype=bool)
    ys, xs = np.round(medial).astype(int).T
    return np.isin(labels, np.unique(labels[ys, xs][labels[ys, xs] > 0]))


REFERENCE = 2000  # at most this many mid-line points stand for a neighbourhood's widths


def local_median(points: np.ndarray, widths: np.ndarray, at: np.ndarray, window: float):
    """The median width of the mid-line points within ``window`` px, for each point of ``at``
    (NaN where there are none): computed at up to ``REFERENCE`` evenly spread mid-line points
    and read at the nearest one. The neighbourhood is hundreds of pixels wide, so the median
    barely changes between neighbours, and memory stays bounded whatever the mask (a whole
    image predicted as membrane has hundreds of thousands of mid-line points)."""
    if not len(points) or not len(at):
        return np.full(len(at), np.nan)
    stride = -(-len(points) // REFERENCE)
    ref, ref_w = points[::stride], widths[::stride]
    tree = cKDTree(ref)
    medians = np.array([np.nanmedian(ref_w[ix]) for ix in tree.query_ball_point(ref, r=window)])
    dist, nearest = tree.query(at, distance_upper_bound=window)
    out = np.full(len(at), np.nan)
    found = np.isfinite(dist)
    out[found] = medians[nearest[found]]
    return out


def oblique(points: np.ndarray, widths: np.ndarray, ratio: float, window: float) -> np.ndarray:
    """Points whose width exceeds ``ratio`` x the median width within ``window`` px."""
    if not len(points):
        return np.zeros(0, bool)
    return widths > ratio * local_median(points, widths, points, window)


def profile(
    mask: np.ndarray,
    grid_spacing_px: float,
    min_length_px: int = 10,
    trim_px: int = 3,
    oblique_ratio: float = 1.5,
    oblique_window_px: float = 200.0,
) -> Profile:
    """Both methods on one mask (1 = membrane)."""
    mask = np.asarray(mask).astype(bool)
    pts, _ = medial_points(mask, min_length_px, trim_px)
    dist = ndimage.distance_transform_edt(mask)
    scale = max(2.0, 2 * float(np.median(dist[mask]))) if mask.any() else 2.0
    reach = 8 * scale + 10
    dirs = normals(mask, pts, scale)
    medial = chords(mask, pts, dirs, reach)
    ok = np.isfinite(medial)
    pts, medial = pts[ok], medial[ok]
    # a thin digital line has one point per column (or row) it advances: each point stands
    # for 1 / cos of the line's angle to that axis
    step = 1.0 / np.maximum(np.abs(dirs[ok]).max(axis=1), 1e-6) if len(pts) else np.zeros(0)
    cross = grid_crossings(measured(mask, pts), grid_spacing_px)
    inter = chords(mask, cross, normals(mask, cross, scale), reach)
    ok = np.isfinite(inter) & (inter > 2 * STEP)
    cross, inter = cross[ok], inter[ok]
    # judged against the mid-line widths around each point: oblique cuts look wider; a
    # chord far thinner than the membrane around it (across a bump or a fragment beside it)
    # is no cross-section of the membrane and counts nowhere
    flags = oblique(pts, medial, oblique_ratio, oblique_window_px)
    local = local_median(pts, medial, cross, oblique_window_px)
    thin = inter < local / oblique_ratio
    cross, inter, local = cross[~thin], inter[~thin], local[~thin]
    with np.errstate(invalid="ignore"):
        inter_flags = inter > oblique_ratio * local
    return Profile(medial, pts, flags, inter, cross, inter_flags, float(step.sum()), step)


def harmonic(values: np.ndarray) -> float:
    v = np.asarray(values, float)
    return float(len(v) / np.sum(1.0 / v)) if len(v) else float("nan")


def summary(p: Profile, nm_per_px: float) -> dict[str, float]:
    """The figures a report shows, in nm (direct figures leave oblique points out)."""
    direct = p.medial[~p.medial_oblique] * nm_per_px
    inter = p.intercepts * nm_per_px
    kept = inter[~p.intercept_oblique]

    def stat(fn, a):
        return round(float(fn(a)), 2) if len(a) else float("nan")

    return {
        "medial_median_nm": stat(np.median, direct),
        "medial_mean_nm": stat(np.mean, direct),
        "medial_p10_nm": stat(lambda a: np.percentile(a, 10), direct),
        "medial_p90_nm": stat(lambda a: np.percentile(a, 90), direct),
        "intercepts": len(inter),
        "intercept_harmonic_nm": stat(harmonic, kept),
        "intercept_mean_nm": stat(np.mean, kept),
        "intercept_median_nm": stat(np.median, kept),
        "harmonic_corrected_nm": stat(lambda a: STEREOLOGY * harmonic(a), inter),
        "oblique_fraction": round(float(np.mean(p.medial_oblique)), 4) if len(p.medial) else 0.0,
        "length_um": round(p.length_px * nm_per_px / 1e3, 3),
    }
