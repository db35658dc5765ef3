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
COLUMNS = ["pixel_size_nm", "ribbon_px", "resample", "medial_err", "medial_abs_err", "harmonic_err",
           "harmonic_abs_err", "image_sd", "dice", "images", "predict_s"]  # fmt: skip


def rooted(work: Path, *extra: str) -> Params:
    """params.yaml with the training set ``SET`` and every output path inside ``work``."""
    tree = [f"sets.{SET}.raw=raw/train", f"sets.{SET}.positive=black", *extra]
    return load(ROOT / "params.yaml", tree).rooted(work, raw=True)


def train_model(work: Path, args, seed: int) -> tuple[Path, dict, float]:
    """The training set (synth seed ``args.data_seed``) and a model trained with ``seed``."""
    p = rooted(
        work,
        f"synth.target_images={args.train_images}",
        "synth.target_test_images=0",
        f"synth.size={SIZE_AT_20}",
        f"synth.pixel_size_nm={TRAINED_AT}",
        f"synth.seed={args.data_seed}",
        f"augment.copies={args.copies}",
        f"train.epochs={args.epochs}",
        f"train.seed={seed}",
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
        f"synth.seed={1000 + args.data_seed}",
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
    predict.run(p.predict, str(model), [folder / "images"], work / "pred" / tag, positive="black")
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


def summarise(nm: float, resample: bool, runs: list[list[dict]], seconds: float) -> dict:
    """One row: per figure, the mean error over seeds (each seed's mean over images) +- its
    sd over seeds, and the mean |error| over every image of every seed."""
    per_seed = [pd.DataFrame(rows) for rows in runs]
    every = pd.concat(per_seed)

    def over_seeds(col: str, fmt: str = "+.1%") -> str:
        means = np.array([df[col].mean() for df in per_seed])
        sd = means.std(ddof=1) if len(means) > 1 else float("nan")
        return f"{means.mean():{fmt}} +- {sd:{fmt.lstrip('+')}}"

    return {
        "pixel_size_nm": nm,
        "ribbon_px": f"{every['true_nm'].min() / nm:.0f}-{every['true_nm'].max() / nm:.0f}",
        "resample": "yes" if resample else "no",
        "medial_err": over_seeds("medial_err"),
        "medial_abs_err": round(float(every["medial_err"].abs().mean()), 4),
        "harmonic_err": over_seeds("harmonic_err"),
        "harmonic_abs_err": round(float(every["harmonic_err"].abs().mean()), 4),
        "dice": over_seeds("dice", ".3f"),
        "image_sd": f"{np.mean([df['medial_err'].std(ddof=1) for df in per_seed]):.1%}",
        "images": len(per_seed[0]),
        "predict_s": round(seconds / len(runs), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--train-images", type=int, default=40)
    ap.add_argument("--copies", type=int, default=1, help="augmented copies per image")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--test-images", type=int, default=12)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    ap.add_argument("--data-seed", type=int, default=0, help="synth seed (test: + 1000)")
    ap.add_argument("--work", type=Path, help="keep the work folder here")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="gbmseg-scale-"))
    tests = {nm: test_set(work, nm, args) for nm in SCALES}
    cells = [(nm, r) for nm in SCALES for r in (True, False) if r or nm != TRAINED_AT]
    runs: dict = {c: [] for c in cells}
    seconds: dict = dict.fromkeys(cells, 0.0)
    trained = []
    for seed in args.seeds:
        model, metrics, train_s = train_model(work / f"seed{seed}", args, seed)
        trained.append({"seed": seed, "train_s": round(train_s, 1), **metrics})
        for nm, resample in cells:
            folder, truth = tests[nm]
            rows, t = measure_through(model, folder, truth, resample, work / f"seed{seed}")
            runs[(nm, resample)].append(rows)
            seconds[(nm, resample)] += t
    summary = [summarise(*c, runs[c], seconds[c]) for c in cells]
    seen = json.loads((model / "trained_on.json").read_text())
    cols = COLUMNS
    epochs = ", ".join(str(t["epochs_run"]) for t in trained)
    minutes = np.mean([t["train_s"] for t in trained]) / 60
    md = (
        f"# Thickness at three magnifications through one model trained at {TRAINED_AT:g} nm/px\n\n"
        f"Models: {seen['images']} synthetic images at {seen['pixel_size_nm']} nm/px "
        f"(`gbmseg synth`, seed {args.data_seed}, {args.copies} augmented cop"
        f"{'y' if args.copies == 1 else 'ies'} each), default U-Net, training seeds "
        f"{args.seeds} ({epochs} epochs; {minutes:.1f} min each on this machine). Test: "
        f"{args.test_images} synthetic images per pixel size (seed {1000 + args.data_seed}), "
        "ribbons 200-450 nm, the same field of view, never trained on. `err` = measured / true "
        "- 1: each seed's mean over the images, mean +- sd over seeds; `abs_err` = mean "
        "|measured / true - 1| over every image and seed; `image_sd` = the mid-line error's sd "
        "over images (mean over seeds).\n\n"
        + table(summary, cols)
        + "\n`python -m benchmarks.scale"
        + f" --train-images {args.train_images} --copies {args.copies} --epochs {args.epochs}"
        + f" --test-images {args.test_images} --seeds {' '.join(map(str, args.seeds))}`\n"
    )
    result = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "train": trained,
        "summary": summary,
        "per_image": {
            f"{nm:g}nm_{'resampled' if r else 'as_is'}": runs[(nm, r)] for nm, r in cells
        },
    }
    write(args.out, "scale", result, md)


if __name__ == "__main__":
    main()
