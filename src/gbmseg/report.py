"""The biopsy report a nephropathologist reads: one self-contained HTML page (the plot and the
measured overlays embedded), per-biopsy rows and per-image rows under headings in words with
their units, each image's pixel size and where it came from, the sampling adequacy, the
reference flags and the method."""

from __future__ import annotations

import base64
import html

import numpy as np
import pandas as pd

from gbmseg.config import MeasureParams

# column -> heading (a unit in brackets on every number)
HEADINGS = {
    "biopsy": "Biopsy",
    "image": "Image",
    "sex": "Sex",
    "images": "Images (n)",
    "length_um": "Membrane length (µm)",
    "intercepts": "Intercepts (n)",
    "loops": "Loops, Haas (n)",
    "haas_mean_nm": "Haas mean (nm)",
    "harmonic_mean_nm": "Harmonic mean (nm)",
    "intercept_harmonic_nm": "Harmonic mean (nm)",
    "harmonic_corrected_nm": "Harmonic mean x 8/3π (nm)",
    "median_nm": "Median, mid-line (nm)",
    "medial_median_nm": "Median, mid-line (nm)",
    "iqr_nm": "IQR, mid-line (nm)",
    "thinnest_10pct_nm": "Thinnest 10% (nm)",
    "thin_fraction": "Length below {thin:g} nm (%)",
    "oblique_fraction": "Oblique (% of mid-line)",
    "pixel_size_nm": "Pixel size (nm)",
    "pixel_size_source": "Pixel size from",
    "adequacy": "Sampling",
    "flags": "Flags",
}
BIOPSY_COLUMNS = [
    "biopsy", "sex", "images", "length_um", "intercepts", "loops", "haas_mean_nm",
    "harmonic_mean_nm", "harmonic_corrected_nm", "median_nm", "iqr_nm", "thinnest_10pct_nm",
    "thin_fraction", "pixel_size_nm", "pixel_size_source", "adequacy", "flags",
]  # fmt: skip
IMAGE_COLUMNS = [
    "image", "biopsy", "pixel_size_nm", "pixel_size_source", "length_um", "intercepts", "loops",
    "haas_mean_nm", "intercept_harmonic_nm", "harmonic_corrected_nm", "medial_median_nm",
    "thinnest_10pct_nm", "thin_fraction", "oblique_fraction",
]  # fmt: skip
PERCENT = ("thin_fraction", "oblique_fraction")

METHOD = (
    "<p>Thickness is measured on the segmented membrane, which follows the clinical boundary "
    "(endothelial to podocyte cell membrane). <b>Haas mean</b>: the arithmetic mean of the width "
    "at {points} random points on each of up to {loops} random capillary loops (a loop is a "
    "connected stretch of membrane in an image; seed {seed}). <b>Harmonic mean</b>: where the "
    "lines of a square grid ({grid:g} nm) cross the membrane edge, the width across the "
    "membrane perpendicular to it (orthogonal intercepts); the harmonic mean of these is the "
    "figure of the orthogonal intercept method, and <b>x 8/3π</b> corrects it for sections cut "
    "at random angles. <b>Median</b> and <b>IQR</b>: the local width along the mid-line. "
    "<b>Thinnest 10%</b>: the mean width of the thinnest tenth of the membrane length; "
    "<b>length below {thin:g} nm</b>: the share of the membrane length thinner than that "
    "(segmental or diffuse thinning). Stretches over {ratio:g}x as wide as their surroundings "
    "(oblique cuts) are left out of the direct figures; the corrected figure uses every "
    "intercept. Every figure in nm uses the image's own pixel size, named per image with "
    "where it came from.</p>"
    "<p><b>Sampling</b>: a biopsy figure resting on fewer than {a_int} intercepts, {a_loops} "
    "loops or {a_img} images is flagged there. <b>Flags</b> compare each figure with its "
    "reference range: {ranges}.</p>"
)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _cell(col: str, value) -> str:
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "-"
        return f"{100 * value:.1f}" if col in PERCENT else f"{value:g}"
    return html.escape(str(value)) if value not in ("", None) else "-"


def html_table(df: pd.DataFrame, columns: list[str], thin: float) -> str:
    cols = [c for c in columns if c in df.columns]
    head = "".join(f"<th>{html.escape(HEADINGS[c].format(thin=thin))}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(c, row[c])}</td>" for c in cols) + "</tr>"
        for _, row in df.iterrows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def ranges_text(p: MeasureParams) -> str:
    parts = []
    for method in ("haas", "harmonic", "corrected"):
        for sex, r in getattr(p.reference, method).items():
            if r:
                parts.append(f"{method} ({sex}) {r[0]:g}-{r[1]:g} nm")
    return html.escape("; ".join(parts)) if parts else "none set"


def page(
    per_biopsy: pd.DataFrame,
    per_image: pd.DataFrame,
    plot_png: bytes,
    overlays: dict[str, bytes],
    p: MeasureParams,
) -> str:
    figures = "".join(
        f"<figure><img src='{data_uri(png)}' alt='{html.escape(name)}'>"
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, png in overlays.items()
    )
    method = METHOD.format(
        points=p.haas_points, loops=p.haas_loops, seed=p.seed, grid=p.grid_spacing_nm,
        thin=p.thin_below_nm, ratio=p.oblique_ratio, a_int=p.adequacy.intercepts,
        a_loops=p.adequacy.loops, a_img=p.adequacy.images, ranges=ranges_text(p),
    )  # fmt: skip
    style = (
        "body{font-family:sans-serif;max-width:75em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin-bottom:1.5em;font-size:.9em}"
        "td,th{border:1px solid #bbb;padding:.3em .5em;text-align:right}th{background:#eee}"
        "figure{display:inline-block;margin:.4em;text-align:center;font-size:.8em}"
        "figure img{max-width:22em;border:1px solid #ccc}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>GBM thickness per biopsy</title><style>{style}</style></head><body>"
        "<h1>Glomerular basement membrane thickness</h1><h2>Per biopsy</h2>"
        + html_table(per_biopsy, BIOPSY_COLUMNS, p.thin_below_nm)
        + f"<img src='{data_uri(plot_png)}' alt='thickness per biopsy'>"
        + "<h2>Per image</h2>"
        + html_table(per_image, IMAGE_COLUMNS, p.thin_below_nm)
        + "<h2>Where the membrane was measured</h2><p>Membrane grey; its mid-line coloured by "
        "local thickness (oblique stretches red); orthogonal intercepts white.</p>"
        + figures
        + f"<h2>Method</h2>{method}</body></html>\n"
    )
