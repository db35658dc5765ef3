"""measure: GBM thickness in nm, per image and per biopsy (see ``gbmseg.thickness``).

Every figure uses each mask's own pixel size (its file's calibration, which predict keeps, or
``measure.pixel_size_nm`` when given); a mask with neither is refused before anything is
written. Outputs: ``thickness.csv`` (per image: its pixel size and where it came from,
medial-axis median/mean/p10/p90, orthogonal-intercept harmonic mean, mean, median, the
stereologically corrected harmonic mean, the Haas mean and its loops, the thinnest 10%, the
thin fraction, oblique fraction, length), ``samples.csv`` (every medial point and
intercept), ``histogram.png``, ``overlays/`` (mid-line coloured by thickness, oblique
stretches red, intercepts white), ``biopsies.csv`` + ``biopsies.png`` + ``biopsy_report.html``
(self-contained: per biopsy and per image, adequacy, reference flags, overlays, method); with
``compare`` (label masks) also ``agreement.csv`` and ``bland_altman.png``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gbmseg import agreement, biopsy, clinical, report, thickness
from gbmseg.config import MeasureParams
from gbmseg.data import plots, scale
from gbmseg.data.atomic import atomic_dir, write_text
from gbmseg.data.io import (
    DataError,
    collect_images,
    mask_to_binary,
    pixel_size_of,
    read_raw,
    write_png,
)
from gbmseg.data.preview import thumbnail
from gbmseg.data.scale import PixelSize

log = logging.getLogger(__name__)


def pixel_sizes(files: list[Path], nm: float | None) -> dict[Path, PixelSize]:
    """Each mask's pixel size (``nm``, given, wins over the file's); DataError naming the
    files without one, before anything is measured or written."""
    found = {f: scale.choose(pixel_size_of(f), nm, "measure.pixel_size_nm", f) for f in files}
    missing = [f for f, s in found.items() if s is None]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DataError(
            f"{missing[0]}{more}: no pixel size in the file, and none given; give it with "
            "`--pixel-size NM` (measure.pixel_size_nm), or measure masks that carry it "
            "(gbmseg predict keeps the input image's calibration)"
        )
    return found


def colour_overlay(structure: np.ndarray, prof: thickness.Profile) -> np.ndarray:
    """Membrane grey; mid-line coloured by thickness (viridis), oblique stretches red;
    intercept points white."""
    from matplotlib import colormaps
    from scipy import ndimage

    rgb = np.where(structure[..., None] > 0, 90, 235).astype(np.uint8).repeat(3, axis=2)
    if len(prof.medial):
        lo, hi = np.percentile(prof.medial, [2, 98])
        val = np.clip((prof.medial - lo) / max(hi - lo, 1e-6), 0, 1)
        colours = (colormaps["viridis"](val)[:, :3] * 255).astype(np.uint8)
        colours[prof.medial_oblique] = (220, 30, 30)
        ys, xs = prof.medial_points.astype(int).T
        for dy, dx in ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0)):  # 2 px wide, to be seen
            y, x = np.clip(ys + dy, 0, rgb.shape[0] - 1), np.clip(xs + dx, 0, rgb.shape[1] - 1)
            rgb[y, x] = colours
    marks = np.zeros(structure.shape, bool)
    iy, ix = np.round(prof.intercept_points).astype(int).T
    marks[np.clip(iy, 0, marks.shape[0] - 1), np.clip(ix, 0, marks.shape[1] - 1)] = True
    rgb[ndimage.binary_dilation(marks, iterations=1)] = 255
    return rgb


def histogram_png(groups: dict[str, biopsy.Samples]) -> bytes:
    """Local thickness (mid-line) and orthogonal intercepts, pooled over the images."""
    fig, ax = plots.figure(6, 3.5)
    medial = np.concatenate([m for g in groups.values() for m in g.medial] or [np.zeros(0)])
    inter = np.concatenate([i for g in groups.values() for i in g.intercepts] or [np.zeros(0)])
    every = np.concatenate([medial, inter]) if medial.size + inter.size else np.zeros(1)
    bins = np.histogram_bin_edges(every, bins=40)
    for values, label in ((medial, "mid-line (local)"), (inter, "orthogonal intercepts")):
        if values.size:
            ax.hist(
                values,
                bins=bins,
                alpha=0.5,
                density=True,
                label=f"{label}: median {np.median(values):.0f} nm",
            )
    ax.set_xlabel("GBM thickness (nm)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    return plots.png(fig)


def load_mask(path: Path, positive: str) -> np.ndarray:
    return mask_to_binary(read_raw(path), positive, path)


def pair_labels(files: list[Path], labels: list[str | Path]) -> dict[Path, Path]:
    """Each prediction's label mask, matched by name (``NAME.mask.tif`` <-> ``NAME.png``)."""
    found = {biopsy.stem(q.name): q for q in collect_images(labels, "label mask")}
    missing = [f.name for f in files if biopsy.stem(f.name) not in found]
    if missing:
        raise DataError(f"no label mask named like {missing[:5]} in {', '.join(map(str, labels))}")
    return {f: found[biopsy.stem(f.name)] for f in files}


def measure_file(path: Path, p: MeasureParams, positive: str, nm: float):
    """(structure, profile, loops, per-image figures in nm) of one mask."""
    structure = load_mask(path, positive)
    prof = thickness.profile(
        structure,
        p.grid_spacing_nm / nm,
        p.min_length_px,
        p.trim_px,
        p.oblique_ratio,
        p.oblique_window_nm / nm,
    )
    lp = clinical.loops(structure, prof, nm)
    return structure, prof, lp, thickness.summary(prof, nm) | biopsy.image_figures(lp, p)


def sample_rows(name: str, prof: thickness.Profile, nm: float) -> list[tuple]:
    """Every medial point and intercept of one image (samples.csv)."""
    rows = []
    for kind, pts, w, obl in (
        ("medial", prof.medial_points, prof.medial, prof.medial_oblique),
        ("intercept", prof.intercept_points, prof.intercepts, prof.intercept_oblique),
    ):
        rows += [
            (name, kind, round(y, 2), round(x, 2), round(v * nm, 2), bool(o))
            for (y, x), v, o in zip(pts, w, obl, strict=True)
        ]
    return rows


def write_reports(tmp: Path, p: MeasureParams, table, points, groups, agree) -> None:
    write_text(tmp / "thickness.csv", table.to_csv(index=False))
    cols = ["image", "method", "y", "x", "width_nm", "oblique"]
    write_text(tmp / "samples.csv", pd.DataFrame(points, columns=cols).to_csv(index=False))
    (tmp / "histogram.png").write_bytes(histogram_png(groups))
    per_biopsy = biopsy.table(groups, p, biopsy.sexes_of(p.biopsies))
    write_text(tmp / "biopsies.csv", per_biopsy.to_csv(index=False))
    plot = biopsy.plot(groups, biopsy.ranges_of(p, p.reference.sex))
    (tmp / "biopsies.png").write_bytes(plot)
    overlays = {
        n: (tmp / "overlays" / f"{biopsy.stem(n)}.png").read_bytes() for n in table["image"]
    }
    write_text(tmp / "biopsy_report.html", report.page(per_biopsy, table, plot, overlays, p))
    if agree:
        agree_table = pd.DataFrame(agree)
        write_text(tmp / "agreement.csv", agree_table.to_csv(index=False))
        (tmp / "bland_altman.png").write_bytes(agreement.bland_altman(agree_table))


def run(
    p: MeasureParams,
    masks: list[str | Path],
    out: str | Path,
    positive: str,
    *,
    compare: list[str | Path] | None = None,
) -> pd.DataFrame:
    """Measure every mask; with ``compare`` (label masks) also the agreement with them."""
    files = collect_images(masks, "mask", skip=(".prob.tif",))
    sizes = pixel_sizes(files, p.pixel_size_nm)
    labels = pair_labels(files, compare) if compare else {}
    biopsy_of = biopsy.biopsy_of([f.name for f in files], p.biopsy_pattern, p.biopsies)
    rows, points, agree = [], [], []
    groups: dict[str, biopsy.Samples] = {}
    with atomic_dir(out) as tmp:
        for f in files:
            nm = sizes[f].nm
            structure, prof, lp, stats = measure_file(f, p, positive, nm)
            rows.append({"image": f.name, "biopsy": biopsy_of[f.name]} | sizes[f].record() | stats)
            groups.setdefault(biopsy_of[f.name], biopsy.Samples()).add(f.name, prof, lp, sizes[f])
            points += sample_rows(f.name, prof, nm)
            overlay = thumbnail(colour_overlay(structure, prof), 1024)
            write_png(tmp / "overlays" / f"{biopsy.stem(f.name)}.png", overlay)
            if labels:
                truth = agreement.measure(load_mask(labels[f], positive), p, nm)
                agree.append(agreement.row(f.name, stats, truth))
        table = pd.DataFrame(rows)
        write_reports(tmp, p, table, points, groups, agree)
    log.info("measure: %d mask(s) in %d biopsy(ies) -> %s", len(rows), len(groups), out)
    return table
