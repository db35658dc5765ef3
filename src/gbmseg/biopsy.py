"""Per-biopsy thickness: images grouped by biopsy, their measurements pooled, and one page a
pathologist can read (a table, a plot, the method in words, an optional reference range)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gbmseg import thickness
from gbmseg.data import plots
from gbmseg.data.io import DataError


@dataclass
class Samples:
    """Pooled measurements of one biopsy (nm)."""

    images: list[str] = field(default_factory=list)
    medial: list[np.ndarray] = field(default_factory=list)  # oblique points left out
    intercepts: list[np.ndarray] = field(default_factory=list)  # oblique left out
    all_intercepts: list[np.ndarray] = field(default_factory=list)  # for the correction
    length_um: float = 0.0

    def add(self, image: str, prof: thickness.Profile, nm: float) -> None:
        self.images.append(image)
        self.medial.append(prof.medial[~prof.medial_oblique] * nm)
        self.intercepts.append(prof.intercepts[~prof.intercept_oblique] * nm)
        self.all_intercepts.append(prof.intercepts * nm)
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


def stem(name: str) -> str:
    return name.split(".")[0]


def table(groups: dict[str, Samples], reference: list[float]) -> pd.DataFrame:
    rows = []
    for name, s in sorted(groups.items()):
        med = np.concatenate(s.medial) if s.medial else np.zeros(0)
        inter = np.concatenate(s.intercepts) if s.intercepts else np.zeros(0)
        every = np.concatenate(s.all_intercepts) if s.all_intercepts else np.zeros(0)
        hm = thickness.harmonic(inter)
        row = {
            "biopsy": name,
            "images": len(s.images),
            "length_um": round(s.length_um, 2),
            "intercepts": len(every),
            "harmonic_mean_nm": round(hm, 1),
            "harmonic_corrected_nm": round(thickness.STEREOLOGY * thickness.harmonic(every), 1),
            "median_nm": round(float(np.median(med)), 1) if len(med) else np.nan,
            "iqr_nm": round(float(np.subtract(*np.percentile(med, [75, 25]))), 1)
            if len(med)
            else np.nan,
        }
        if reference:
            lo, hi = reference
            val = row["harmonic_mean_nm"]
            row["flag"] = "thin" if val < lo else "thick" if val > hi else "within range"
        rows.append(row)
    return pd.DataFrame(rows)


def plot(groups: dict[str, Samples], reference: list[float]) -> bytes:
    """Distribution of the local thickness per biopsy (box plot), reference range shaded."""
    names = sorted(groups)
    data = [np.concatenate(groups[n].medial) if groups[n].medial else [] for n in names]
    fig, ax = plots.figure(6, 0.9 + 0.45 * max(1, len(names)))
    ax.boxplot(data, vert=False, tick_labels=names, showfliers=False)
    if reference:
        ax.axvspan(*reference, color="tab:green", alpha=0.12, label="reference range")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("local GBM thickness along the membrane (nm)")
    return plots.png(fig)


METHOD = (
    "Thickness is measured on the segmented membrane in two ways. <b>Orthogonal intercepts</b>: "
    "where the lines of a square grid ({grid} nm) cross the membrane edge, the distance across "
    "the membrane perpendicular to it; the <b>harmonic mean</b> of these intercepts is the "
    "figure of the clinical method, and the <b>corrected</b> harmonic mean (x 8/3&pi;) allows "
    "for sections cut at random angles. <b>Median</b> and <b>IQR</b>: the local thickness along "
    "the membrane's mid-line. Stretches much wider than their surroundings (over {ratio}x, "
    "oblique cuts) are left out of the direct figures; the corrected figure uses every "
    "intercept, because the correction already accounts for them."
)


def page(df: pd.DataFrame, png_name: str, grid_nm: float, ratio: float, ref: list[float]) -> str:
    ref_text = f"Reference range: {ref[0]:g}-{ref[1]:g} nm." if ref else "No reference range set."
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>GBM thickness per biopsy"
        "</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .6em;"
        "text-align:right}th{background:#eee}</style></head><body>"
        "<h1>Glomerular basement membrane thickness per biopsy</h1>"
        + df.to_html(index=False, na_rep="-", escape=True)
        + f"<p>{html.escape(ref_text)}</p><img src='{png_name}' alt='thickness per biopsy'>"
        + f"<h2>Method</h2><p>{METHOD.format(grid=grid_nm, ratio=ratio)}</p></body></html>\n"
    )
