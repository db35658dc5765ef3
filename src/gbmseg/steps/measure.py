"""measure: local GBM thickness along the membrane, in nm.

Thickness at a point of the medial axis is twice its distance to the nearest background
pixel; validated against ``gbmseg synth`` data, whose true thickness is known.  Points near
the image border (where the ribbon is cut) and skeleton pieces shorter than
``min_length_px`` (specks, spurs) are left out.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage
from skimage.morphology import medial_axis

from gbmseg.config import MeasureParams
from gbmseg.data import plots
from gbmseg.data.atomic import atomic_dir, write_text
from gbmseg.data.io import collect_images, mask_to_binary, read_raw, write_png
from gbmseg.data.preview import thumbnail

log = logging.getLogger(__name__)
UNIT_NM = {
    "nm": 1.0,
    "nanometer": 1.0,
    "micron": 1e3,
    "um": 1e3,
    "\\u00b5m": 1e3,
    "µm": 1e3,
    "mm": 1e6,
}


def tiff_pixel_size_nm(path: Path) -> float | None:
    """Pixel size from TIFF tags (ImageJ unit, or resolution in centimetres), if any."""
    if path.suffix.lower() not in (".tif", ".tiff"):
        return None
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        xres = page.tags.get("XResolution")
        if xres is None:
            return None
        num, den = xres.value
        per_unit = num / den if den else 0
        if per_unit <= 0:
            return None
        unit = (tif.imagej_metadata or {}).get("unit")
        if unit in UNIT_NM:
            return UNIT_NM[unit] / per_unit
        if page.tags.get("ResolutionUnit") and page.tags["ResolutionUnit"].value == 3:  # cm
            return 1e7 / per_unit
    return None


def thickness_samples(structure: np.ndarray, p: MeasureParams) -> tuple[np.ndarray, np.ndarray]:
    """(thickness in px at kept medial-axis points, boolean map of those points)."""
    skel, dist = medial_axis(structure.astype(bool), return_distance=True)
    labels, n = ndimage.label(skel, structure=np.ones((3, 3)))
    if n:
        sizes = ndimage.sum(skel, labels, index=np.arange(1, n + 1))
        skel &= np.isin(labels, 1 + np.flatnonzero(sizes >= p.min_length_px))
    h, w = skel.shape
    yy, xx = np.mgrid[0:h, 0:w]
    to_border = np.minimum.reduce([yy, xx, h - 1 - yy, w - 1 - xx])
    keep = skel & (to_border > dist + p.trim_px)
    return 2 * dist[keep], keep


def colour_overlay(structure: np.ndarray, keep: np.ndarray, thick: np.ndarray) -> np.ndarray:
    """Structure in grey, medial axis coloured by thickness (viridis), dilated to be seen."""
    from matplotlib import colormaps

    rgb = np.where(structure[..., None] > 0, 90, 235).astype(np.uint8).repeat(3, axis=2)
    if thick.size:
        lo, hi = np.percentile(thick, [2, 98])
        val = np.zeros(structure.shape, np.float32)
        val[keep] = (thick - lo) / max(hi - lo, 1e-6)
        grow = ndimage.grey_dilation(val, size=3)
        mask = ndimage.binary_dilation(keep, iterations=1)
        rgb[mask] = (colormaps["viridis"](np.clip(grow[mask], 0, 1))[:, :3] * 255).astype(np.uint8)
    return rgb


def measure_file(path: Path, p: MeasureParams, positive: str, pixel_nm: float | None):
    raw = read_raw(path)
    structure = mask_to_binary(raw, positive, path)
    size = pixel_nm or tiff_pixel_size_nm(path) or p.pixel_size_nm
    thick_px, keep = thickness_samples(structure, p)
    nm = thick_px * size
    stats = {
        "image": path.name,
        "pixel_size_nm": size,
        "samples": int(nm.size),
        "length_um": round(float(keep.sum()) * size / 1e3, 3),
    }
    for key, fn in (
        ("median_nm", np.median),
        ("mean_nm", np.mean),
        ("p10_nm", lambda a: np.percentile(a, 10)),
        ("p90_nm", lambda a: np.percentile(a, 90)),
    ):
        stats[key] = round(float(fn(nm)), 2) if nm.size else float("nan")
    return stats, nm, colour_overlay(structure, keep, thick_px)


def histogram_png(values: dict[str, np.ndarray]) -> bytes:
    fig, ax = plots.figure(6, 3.5)
    every = np.concatenate([v for v in values.values() if v.size] or [np.zeros(1)])
    bins = np.histogram_bin_edges(every, bins=40)
    for name, v in values.items():
        if v.size:
            ax.hist(v, bins=bins, alpha=0.5, label=f"{name} (median {np.median(v):.0f} nm)")
    ax.set_xlabel("local GBM thickness (nm)")
    ax.set_ylabel("medial-axis points")
    if len(values) <= 8:
        ax.legend(fontsize=7)
    return plots.png(fig)


def run(
    p: MeasureParams,
    masks: list[str | Path],
    out: str | Path,
    positive: str,
    pixel_size_nm: float | None = None,
) -> pd.DataFrame:
    files = collect_images(masks, "mask", skip=(".prob.tif",))
    rows, samples = [], {}
    with atomic_dir(out) as tmp:
        for f in files:
            stats, nm, pic = measure_file(f, p, positive, pixel_size_nm)
            rows.append(stats)
            samples[f.name] = nm
            write_png(tmp / "overlays" / f"{f.name.split('.')[0]}.png", thumbnail(pic, 1024))
        table = pd.DataFrame(rows)
        write_text(tmp / "thickness.csv", table.to_csv(index=False))
        (tmp / "histogram.png").write_bytes(histogram_png(samples))
    log.info(
        "measure: %d mask(s), median thickness %s nm -> %s",
        len(rows),
        ", ".join(f"{r['median_nm']:.0f}" for r in rows[:5]),
        out,
    )
    return table
