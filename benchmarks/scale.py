"""Does a model measure right at another magnification?  One U-Net trained at 20 nm/px on
synthetic GBM (the product's synth -> validate -> augment -> pack -> train stages), then
synthetic GBM of known thickness rendered at 10, 20 and 40 nm/px (ribbons 200-450 nm: 5-11 px
at 40 nm/px) through ``gbmseg predict`` with ``predict.resample`` on (the image brought to
the model's 20 nm/px, the mask back) and off (the image as it comes), then ``gbmseg measure``
on the calibrated masks: thickness vs the truth synth recorded, per image.

    python -m benchmarks.scale [--train-images 40] [--epochs 40] [--test-images 12]

Writes benchmarks/out/scale.{json,md}. Run it on an idle machine (timings are reported).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import ROOT, table, write
from gbmseg import stages
from gbmseg.config import Params, load
from gbmseg.data.io import read_raw
from gbmseg.steps import measure, predict, synth

SCALES = (10.0, 20.0, 40.0)
TRAINED_AT = 20.0
SIZE_AT_20 = 256  # px; the same field of view at every scale
SET = "scale20"  # the training set's name


def rooted(work: Path, *extra: str) -> Params:
    """params.yaml with the training set ``SET`` and every output path inside ``work``."""
    tree = [f"sets.{SET}.raw=raw/train", f"sets.{SET}.positive=black", *extra]
    return load(ROOT / "params.yaml", tree).rooted(work, raw=True)


def train_model(work: Path, args) -> tuple[Path, dict, float]:
    p = rooted(
        work,
        f"synth.target_images={args.train_images}",
        "synth.target_test_images=0",
        f"synth.size={SIZE_AT_20}",
        f"synth.pixel_size_nm={TRAINED_AT}",
        f"synth.seed={args.seed}",
        f"augment.copies={args.copies}",
        f"train.epochs={args.epochs}",
        f"train.seed={args.seed}",
        "pack.val_fraction=0.15",
        "pack.test_fraction=0.0",
    )
    t0 = time.perf_counter()
    synth.write_set(p.synth, p.sets[SET].raw, "black", "target", args.train_images)
    for stage in (stages.validate, stages.augment, stages.pack):
        stage(p, SET)
    metrics = stages.train(p, SET)
    return Path(p.train.out) / SET, metrics, time.perf_counter() - t0


def test_set(work: Path, nm: float, args) -> tuple[Path, dict]:
    """Synthetic GBM at ``nm`` nm/px, its own seed, calibrated files; (folder, truth)."""
    size = round(SIZE_AT_20 * TRAINED_AT / nm)
    p = rooted(
        work,
        f"synth.size={size}",
        f"synth.pixel_size_nm={nm}",
        f"synth.seed={1000 + args.seed}",
    )
    out = work / "raw" / f"test_{nm:g}"
    meta = synth.write_set(p.synth, out, "black", "target", args.test_images)
    return out, {k: v["thickness_nm"] for k, v in meta["images"].items()}


def dice(pred: np.ndarray, label: np.ndarray) -> float:
    return float(2 * (pred & label).sum() / max(1, pred.sum() + label.sum()))


def measure_through(model: Path, folder: Path, truth: dict, resample: bool, work: Path):
    p = rooted(work, f"predict.resample={str(resample).lower()}", "predict.amp=auto")
    tag = f"{folder.name}_{'resampled' if resample else 'as_is'}"
    t0 = time.perf_counter()
    predict.run(p.predict, str(model), [folder / "images"], work / "pred" / tag, "black")
    seconds = time.perf_counter() - t0
    table_ = measure.run(p.measure, [work / "pred" / tag], work / "measure" / tag, "black")
    rows = []
    for r in table_.itertuples():
        name = r.image.replace(".mask.tif", ".png")
        pred = read_raw(work / "pred" / tag / r.image) == 0
        label = read_raw(folder / "masks" / name) == 0
        rows.append({
            "image": name,
            "true_nm": truth[name],
            "medial_nm": r.medial_median_nm,
            "harmonic_nm": r.intercept_harmonic_nm,
            "medial_err": r.medial_median_nm / truth[name] - 1,
            "harmonic_err": r.intercept_harmonic_nm / truth[name] - 1,
            "dice": dice(pred, label),
            "pixel_size_source": r.pixel_size_source,
        })  # fmt: skip
    return rows, seconds


def summarise(nm: float, resample: bool, rows: list[dict], seconds: float) -> dict:
    df = pd.DataFrame(rows)

    def ms(col: str) -> str:
        return f"{df[col].mean():+.1%} +- {df[col].std(ddof=1):.1%}"

    return {
        "pixel_size_nm": nm,
        "ribbon_px": f"{df['true_nm'].min() / nm:.0f}-{df['true_nm'].max() / nm:.0f}",
        "resample": "yes" if resample else "no",
        "medial_err": ms("medial_err"),
        "medial_abs_err": round(float(df["medial_err"].abs().mean()), 4),
        "harmonic_err": ms("harmonic_err"),
        "harmonic_abs_err": round(float(df["harmonic_err"].abs().mean()), 4),
        "dice": f"{df['dice'].mean():.3f} +- {df['dice'].std(ddof=1):.3f}",
        "images": len(df),
        "predict_s": round(seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--train-images", type=int, default=40)
    ap.add_argument("--copies", type=int, default=1, help="augmented copies per image")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--test-images", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, help="keep the work folder here")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="gbmseg-scale-"))
    model, train_metrics, train_s = train_model(work, args)
    summary, per_image = [], {}
    for nm in SCALES:
        folder, truth = test_set(work, nm, args)
        for resample in (True, False):
            if nm == TRAINED_AT and not resample:
                continue  # nothing to resample at the model's own scale
            rows, seconds = measure_through(model, folder, truth, resample, work)
            summary.append(summarise(nm, resample, rows, seconds))
            per_image[f"{nm:g}nm_{'resampled' if resample else 'as_is'}"] = rows
    trained = json.loads((model / "trained_on.json").read_text())
    cols = ["pixel_size_nm", "ribbon_px", "resample", "medial_err", "medial_abs_err",
            "harmonic_err", "harmonic_abs_err", "dice", "images", "predict_s"]  # fmt: skip
    md = (
        f"# Thickness at three magnifications through one model trained at {TRAINED_AT:g} nm/px\n\n"
        f"Model: {trained['images']} synthetic images at {trained['pixel_size_nm']} nm/px "
        f"(`gbmseg synth`, seed {args.seed}), default U-Net, {train_metrics['epochs_run']} "
        f"epochs, best val Dice {train_metrics['best_val_dice']}, {train_s / 60:.1f} min on "
        "this machine. Test: "
        f"{args.test_images} synthetic images per pixel size (seed {1000 + args.seed}), ribbons "
        "200-450 nm, the same field of view. `err` = measured / true - 1 per image, mean +- "
        "sd over images; `abs_err` = mean |measured / true - 1|. One training seed.\n\n"
        + table(summary, cols)
        + "\n`python -m benchmarks.scale"
        + f" --train-images {args.train_images} --epochs {args.epochs}"
        + f" --test-images {args.test_images} --seed {args.seed}`\n"
    )
    result = {"args": {k: str(v) for k, v in vars(args).items()}, "train": train_metrics,
              "train_s": round(train_s, 1), "summary": summary, "per_image": per_image}  # fmt: skip
    write(args.out, "scale", result, md)


if __name__ == "__main__":
    main()
