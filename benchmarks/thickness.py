"""How right is the thickness gbmseg reports?  Three checks, each against a known truth.

1. ``ribbons``: masks of ribbons of known width (every width 10-20 px at 1x, 2x and 3x
   resolution = 10-60 px, odd and even, four angles, straight and curved): the medial-axis
   median and the orthogonal-intercept harmonic mean vs the true width.
2. ``slab``: a flat membrane of known thickness cut at random tilts (the oblique sections of
   a real biopsy): uncorrected harmonic mean vs the stereologically corrected one.
3. ``composite``: ribbons of known thickness (250-450 nm) drawn into real EM images (the
   texture of ``../shared/data``) at three pixel sizes, segmented by a U-Net trained on other
   composites (other EM images), then measured: the error that reaches a user.

    python -m benchmarks.thickness [--part all|ribbons|slab|composite] [--minutes 4]

Writes benchmarks/out/thickness.{json,md}.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from benchmarks import folders
from benchmarks.common import ROOT, SHARED, table, write
from benchmarks.phantoms import ribbon, slab_section, slab_tilts
from gbmseg import thickness
from gbmseg.config import load
from gbmseg.data.io import read_image, write_png
from gbmseg.engine.amp import choose_precision
from gbmseg.engine.checkpoint import load_model
from gbmseg.inference import predict_proba
from gbmseg.steps import train

ANGLES = ((0, False), (17, False), (62, False), (123, True))


def ribbons() -> tuple[list[dict], list[dict]]:
    rows = []
    for base in range(10, 21):
        for scale in (1, 2, 3):
            for angle, curved in ANGLES:
                w = base * scale
                s = thickness.summary(thickness.profile(ribbon(w, 320, angle, curved), 20), 1.0)
                rows.append(
                    {
                        "width_px": w,
                        "resolution": f"{scale}x",
                        "shape": "curved" if curved else f"straight {angle} deg",
                        "medial_err": s["medial_median_nm"] / w - 1,
                        "intercept_err": s["intercept_harmonic_nm"] / w - 1,
                    }
                )
    summary = []
    for res in ("1x", "2x", "3x"):
        sel = [r for r in rows if r["resolution"] == res]
        for key in ("medial_err", "intercept_err"):
            errs = np.array([r[key] for r in sel])
            summary.append(
                {
                    "resolution": res,
                    "method": key.removesuffix("_err"),
                    "ribbons": len(sel),
                    "median_err_pct": round(100 * float(np.median(errs)), 2),
                    "max_abs_err_pct": round(100 * float(np.abs(errs).max()), 2),
                }
            )
    return rows, summary


def slab(seed: int = 0) -> list[dict]:
    out = []
    for true in (10.0, 14.0, 20.0):
        rng = np.random.default_rng(seed)
        inter = []
        for tilt in slab_tilts(rng, 60):
            m = slab_section(true, tilt, rng.uniform(0, 180), 400, rng.uniform(0, 1))
            inter.append(thickness.profile(m, 16, oblique_ratio=100).intercepts)
        hm = thickness.harmonic(np.concatenate(inter))
        out.append(
            {
                "true_px": true,
                "intercepts": int(sum(len(i) for i in inter)),
                "harmonic_err_pct": round(100 * (hm / true - 1), 2),
                "corrected_err_pct": round(100 * (thickness.STEREOLOGY * hm / true - 1), 2),
            }
        )
    return out


def composite(
    image: np.ndarray,
    rng: np.random.Generator,
    nm_px: float,
    thickness_nm: tuple[float, float] = (250.0, 450.0),
) -> tuple:
    """An EM image with a dark ribbon of known thickness (uniform in ``thickness_nm``) drawn
    in: (image, mask, true nm)."""
    true_nm = float(rng.uniform(*thickness_nm))
    m = ribbon(
        true_nm / nm_px,
        image.shape[0],
        rng.uniform(0, 180),
        bool(rng.integers(2)),
        rng.uniform(0, 1),
    )
    soft = ndimage.gaussian_filter(m.astype(float), 0.8)  # the microscope's blur at the edges
    img = image.astype(float) * (1 - 0.55 * soft) + rng.normal(0, 6, image.shape)
    return np.clip(img, 0, 255).astype(np.uint8), m, true_nm


def textures(folder: Path, names: list[str], nm_px: float, size: int) -> list[np.ndarray]:
    """Crops of real EM images rescaled so one pixel is ``nm_px`` (the source images are
    taken as 10 nm per pixel)."""
    out = []
    for n in names:
        img = read_image(folder / "images" / n).astype(float)
        img = ndimage.zoom(img, 10.0 / nm_px, order=1)
        out.append(img[:size, :size].astype(np.uint8))
    return out


def train_segmenter(tiles: list[tuple[np.ndarray, np.ndarray]], minutes: float, work: Path):
    """A U-Net trained on composite tiles through the product: the tiles written as an
    image/mask set, then the validate, pack and train steps."""
    raw = work / "raw"
    for kind in ("images", "masks"):
        (raw / kind).mkdir(parents=True, exist_ok=True)
    names = [f"c{i:04d}.png" for i in range(len(tiles))]
    for name, (img, m) in zip(names, tiles, strict=True):
        write_png(raw / "images" / name, img)
        write_png(raw / "masks" / name, (m > 0).astype(np.uint8) * 255)
    p = load(
        ROOT / "params.yaml",
        [
            "train.model.base=8",
            "train.model.depth=3",
            "train.amp=fp32",
            "train.batch_size=8",
            "train.patience=1000",
            f"train.max_minutes={minutes}",
            "train.epochs=400",
            *folders.step_paths(work / "model"),
        ],
    )
    valid = folders.validated(raw, "white", work, ["validate.positive_fraction=[0.0001,0.9]"])
    cut = len(names) * 9 // 10
    tile = tiles[0][0].shape[0]
    folders.pack(valid, {"train": names[:cut], "val": names[cut:]}, tile, tile, work / "packed")
    train.run(p.train, work / "packed")
    return load_model(work / "model").eval()


def composites(minutes: float, seed: int = 0) -> list[dict]:
    data = SHARED / "cdeep3m_mito"
    names = folders.names(data)
    rng = np.random.default_rng(seed)
    pixel_sizes, size = (10.0, 15.0, 20.0), 256
    tiles = []
    for nm_px in pixel_sizes:
        for tex in textures(data, names[:12], nm_px, 384):
            for _ in range(6):
                y0, x0 = rng.integers(0, tex.shape[0] - 128 + 1, 2)
                crop = tex[y0 : y0 + 128, x0 : x0 + 128]
                img, m, _ = composite(crop, rng, nm_px)
                tiles.append((img, m))
    with tempfile.TemporaryDirectory() as tmp:
        model = train_segmenter(tiles, minutes, Path(tmp))
    prec, rows = choose_precision("cpu", "fp32"), []
    for nm_px in pixel_sizes:
        for tex in textures(data, names[20:30], nm_px, size):
            img, m, true_nm = composite(tex, rng, nm_px)
            pred = predict_proba(model, img, prec, 128, 0.25, 8) > 0.5
            s_pred = thickness.summary(thickness.profile(pred, 500 / nm_px), nm_px)
            s_true = thickness.summary(thickness.profile(m, 500 / nm_px), nm_px)
            rows.append(
                {
                    "nm_per_px": nm_px,
                    "true_nm": round(true_nm, 1),
                    "label_medial_err": s_true["medial_median_nm"] / true_nm - 1,
                    "pred_medial_err": s_pred["medial_median_nm"] / true_nm - 1,
                    "pred_harmonic_err": s_pred["intercept_harmonic_nm"] / true_nm - 1,
                    "dice": float(2 * (pred & m.astype(bool)).sum() / (pred.sum() + m.sum())),
                }
            )
    return rows


def composite_summary(rows: list[dict]) -> list[dict]:
    out = []
    for nm_px in sorted({r["nm_per_px"] for r in rows}):
        sel = [r for r in rows if r["nm_per_px"] == nm_px]
        med = np.array([r["pred_medial_err"] for r in sel])
        hm = np.array([r["pred_harmonic_err"] for r in sel])
        out.append(
            {
                "nm_per_px": nm_px,
                "images": len(sel),
                "dice": round(float(np.mean([r["dice"] for r in sel])), 3),
                "medial_bias_pct": round(100 * float(np.median(med)), 1),
                "medial_mae_pct": round(100 * float(np.mean(np.abs(med))), 1),
                "harmonic_bias_pct": round(100 * float(np.median(hm)), 1),
                "harmonic_mae_pct": round(100 * float(np.mean(np.abs(hm))), 1),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--part", default="all", choices=["all", "ribbons", "slab", "composite"])
    ap.add_argument("--minutes", type=float, default=4.0, help="composite model training")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    result, md = {}, "# Thickness against known truth\n\n"
    t0 = time.perf_counter()
    if args.part in ("all", "ribbons"):
        rows, summary = ribbons()
        result["ribbons"] = {"rows": rows, "summary": summary}
        md += "## Ribbon masks (width 10-60 px)\n\n" + table(summary, list(summary[0])) + "\n"
    if args.part in ("all", "slab"):
        rows = slab()
        result["slab"] = rows
        md += "## A slab cut at random tilts (60 sections)\n\n" + table(rows, list(rows[0])) + "\n"
    if args.part in ("all", "composite"):
        if not (SHARED / "cdeep3m_mito" / "images").is_dir():
            raise SystemExit(f"{SHARED}/cdeep3m_mito: real EM textures needed for composites")
        rows = composites(args.minutes)
        summary = composite_summary(rows)
        result["composite"] = {"rows": rows, "summary": summary, "minutes": args.minutes}
        md += (
            "## Through a model: ribbons drawn into real EM (CDeep3M), segmented, measured\n\n"
            + table(summary, list(summary[0]))
            + "\n"
        )
    result["seconds"] = round(time.perf_counter() - t0, 1)
    write(args.out, "thickness", result, md)


if __name__ == "__main__":
    main()
