"""Per-biopsy thickness: images grouped by biopsy (by name or a table, with the patient's sex
when given), their measurements pooled, the figures, adequacy and reference flags
(``gbmseg.clinical``), and the box plot; the page itself is ``gbmseg.report``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gbmseg import clinical, thickness
from gbmseg.config import MeasureParams
from gbmseg.data import plots
from gbmseg.data.io import DataError
from gbmseg.data.scale import PixelSize


@dataclass
class Samples:
    """Pooled measurements of one biopsy (nm), with each image's pixel size."""

    images: list[str] = field(default_factory=list)
    medial: list[np.ndarray] = field(default_factory=list)  # oblique points left out
    intercepts: list[np.ndarray] = field(default_factory=list)  # oblique left out
    all_intercepts: list[np.ndarray] = field(default_factory=list)  # for the correction
    loops: list[clinical.Loops] = field(default_factory=list)
    pixel_sizes: list[PixelSize] = field(default_factory=list)
    length_um: float = 0.0

    def add(self, image: str, prof: thickness.Profile, lp: clinical.Loops, size: PixelSize):
        nm = size.nm
        self.images.append(image)
        self.medial.append(prof.medial[~prof.medial_oblique] * nm)
        self.intercepts.append(prof.intercepts[~prof.intercept_oblique] * nm)
        self.all_intercepts.append(prof.intercepts * nm)
        self.loops.append(lp)
        self.pixel_sizes.append(size)
        self.length_um += prof.length_px * nm / 1e3


def biopsy_of(names: list[str], pattern: str, csv: str | Path = "") -> dict[str, str]:
    """image -> biopsy: from a CSV (columns image, biopsy) when given, else the named group
    ``biopsy`` of ``pattern`` matched against the image's stem (no match: its own biopsy)."""
    if csv:
        path = Path(csv)
        try:
            table = pd.read_csv(path, dtype=str)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read the biopsy table ({exc})") from exc
        if not {"image", "biopsy"} <= set(table.columns):
            raise DataError(f"{path}: a biopsy table needs the columns image,biopsy")
        known = dict(zip(table["image"], table["biopsy"], strict=True))
        missing = [n for n in names if n not in known and stem(n) not in known]
        if missing:
            raise DataError(f"{path}: no biopsy for {missing[:5]}; add a row per image")
        return {n: known.get(n, known.get(stem(n))) for n in names}
    rx = re.compile(pattern)
    out = {}
    for n in names:
        m = rx.match(stem(n))
        out[n] = m.group("biopsy") if m else stem(n)
    return out


SEXES = ("male", "female", "unknown")


def sexes_of(csv: str | Path = "") -> dict[str, str]:
    """biopsy -> sex from the biopsy table's optional ``sex`` column (male/female/unknown)."""
    if not csv:
        return {}
    table = pd.read_csv(Path(csv), dtype=str)
    if "sex" not in table.columns:
        return {}
    out: dict[str, str] = {}
    for biopsy, sex in zip(table["biopsy"], table["sex"].fillna("unknown"), strict=True):
        sex = sex.strip().lower()
        if sex not in SEXES:
            raise DataError(f"{csv}: sex {sex!r} for biopsy {biopsy}; use male, female or unknown")
        if out.setdefault(biopsy, sex) != sex:
            raise DataError(f"{csv}: biopsy {biopsy} is given two sexes; give it one")
    return out


def image_figures(lp: clinical.Loops, p: MeasureParams) -> dict:
    """The clinical figures of one image (Haas on its own loops, thinnest, thin fraction)."""
    haas, n_loops, _ = clinical.haas(lp, p.haas_loops, p.haas_points, p.seed)
    return {
        "loops": n_loops,
        "haas_mean_nm": round(haas, 2) if np.isfinite(haas) else np.nan,
        "thinnest_10pct_nm": round(clinical.thinnest(lp), 2),
        "thin_fraction": round(clinical.thin_fraction(lp, p.thin_below_nm), 4),
    }


def stem(name: str) -> str:
    return name.split(".")[0]


def pixel_size_summary(sizes: list[PixelSize]) -> list[tuple[float, str, int]]:
    """(nm, kind of source, images) per distinct pair: 'DM4 calibration of a.dm4' and
    '... of b.dm4' are one kind; every image's own is in the per-image table."""
    count: dict[tuple[float, str], int] = {}
    for z in sizes:
        key = (round(z.nm, 4), re.sub(r" of [^ ]+$", "", z.source))
        count[key] = count.get(key, 0) + 1
    return [(nm, kind, n) for (nm, kind), n in sorted(count.items())]


def figures(s: Samples, p: MeasureParams) -> dict:
    """The per-biopsy figures (nm) and what they rest on."""
    med = np.concatenate(s.medial) if s.medial else np.zeros(0)
    inter = np.concatenate(s.intercepts) if s.intercepts else np.zeros(0)
    every = np.concatenate(s.all_intercepts) if s.all_intercepts else np.zeros(0)
    lp = clinical.concat(s.loops, s.images)
    haas, n_loops, _ = clinical.haas(lp, p.haas_loops, p.haas_points, p.seed)

    def r(v: float) -> float:
        return round(float(v), 1) if np.isfinite(v) else np.nan

    sizes = pixel_size_summary(s.pixel_sizes)
    return {
        "images": len(s.images),
        "length_um": round(s.length_um, 2),
        "intercepts": len(every),
        "loops": n_loops,
        "haas_mean_nm": r(haas),
        "harmonic_mean_nm": r(thickness.harmonic(inter)),
        "harmonic_corrected_nm": r(thickness.STEREOLOGY * thickness.harmonic(every)),
        "median_nm": r(np.median(med)) if len(med) else np.nan,
        "iqr_nm": r(np.subtract(*np.percentile(med, [75, 25]))) if len(med) else np.nan,
        "thinnest_10pct_nm": r(clinical.thinnest(lp)),
        "thin_fraction": round(clinical.thin_fraction(lp, p.thin_below_nm), 4),
        "pixel_size_nm": "; ".join(sorted({f"{nm:g}" for nm, _, _ in sizes})),
        "pixel_size_source": "; ".join(
            f"{kind} ({n} image{'s' * (n > 1)})" for _, kind, n in sizes
        ),
    }


def table(groups: dict[str, Samples], p: MeasureParams, sexes: dict[str, str]) -> pd.DataFrame:
    """One row per biopsy: the figures, adequacy and the reference flags for its sex."""
    rows = []
    for name, s in sorted(groups.items()):
        row = {"biopsy": name, **figures(s, p)}
        row["adequacy"] = clinical.adequacy(row, p.adequacy.model_dump())
        row["sex"] = sexes.get(name, p.reference.sex)
        row["flags"] = clinical.reference_flags(row, p.reference.model_dump(), row["sex"])
        rows.append(row)
    return pd.DataFrame(rows)


def ranges_of(p: MeasureParams, sex: str) -> list[tuple[str, float, float]]:
    """(method, low, high) for the reference ranges that apply to ``sex``."""
    out = []
    for method in clinical.METHODS:
        by_sex = {k: v for k, v in getattr(p.reference, method).items() if v}
        chosen = [by_sex[sex]] if sex in by_sex else list(by_sex.values())
        if chosen:
            out.append((method, min(c[0] for c in chosen), max(c[1] for c in chosen)))
    return out


def plot(groups: dict[str, Samples], ranges: list[tuple[str, float, float]]) -> bytes:
    """Distribution of the local thickness per biopsy (box plot), the Haas range shaded."""
    names = sorted(groups)
    data = [np.concatenate(groups[n].medial) if groups[n].medial else [] for n in names]
    fig, ax = plots.figure(6, 0.9 + 0.45 * max(1, len(names)))
    ax.boxplot(data, vert=False, tick_labels=names, showfliers=False)
    for method, lo, hi in ranges[:1]:
        ax.axvspan(lo, hi, color="tab:green", alpha=0.12, label=f"reference range ({method})")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("local GBM thickness along the membrane (nm)")
    return plots.png(fig)
