"""Thickness through a model trained the way users train: pretrained on one EM domain, then
fine-tuned on 2 labelled images of another, measured on at least 60 unseen membranes.

Ribbons of known thickness, 150-450 nm (a thin band included), are drawn into real EM images at
10 nm/px (``benchmarks.thickness.composite``): the source set into CDeep3M images (48 images),
the target into ISBI-2012 images: 2 labelled images (ISBI 0-1) and, in the target's ``test/``
folder, 60 test images (ISBI 10-29, three ribbons each drawn afresh).  Everything runs
through the product's stages (validate, augment, pack, train, resolve, finetune, evaluate) in
a project folder of its own; a configuration is nothing but ``-S`` overrides of params.yaml:

* ``before``: the product without a validation strip or a chosen threshold
  (``train.holdout=0 train.threshold=0.5``: no validation images, fixed schedule, 0.5);
* ``after``: a strip held out of the 2 images to validate on (``train.holdout``), used to
  stop early, keep the best epoch and choose the threshold whatever membrane it holds
  (``train.min_membrane_px=0``);
* ``after@0.5``: the same model at threshold 0.5: what the strip costs and gives without the
  threshold;
* ``defaults``: params.yaml as it is: the strips hold less labelled mid-line than
  ``train.min_membrane_px``, so they are given back to training (as ``before``).

Figures per cell, from ``evaluate``'s own outputs: Dice, slope of predicted on labelled
medial thickness, mean |relative difference|, bias (nm), and the mean relative difference in
the 150-220 nm band.  Test images are never used for any choice.

    python -m benchmarks.thickness_fewshot [--seeds 0 1 2] [--configs before after] \
        [--work DIR] [-S KEY=VALUE ...]

``--configs`` also takes the levers (``LEVERS``: skeleton recall, boundary loss, the epoch
kept by Dice minus thickness error, less BCE), each on top of ``defaults``; they are judged on
the development figures only, in their own table: with ``--dev 8`` (its own ``--work``), 8 more
labelled ISBI composites (ISBI 2-9) are the target's validation images, never trained on.

Cells are kept in ``DIR/cells.json`` as they finish (a rerun resumes).  Writes
benchmarks/out/thickness_fewshot.{json,md} (with ``--dev``: thickness_fewshot_levers.*).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import folders
from benchmarks import thickness_fewshot_report as report
from benchmarks.common import ROOT, SHARED, table, write
from benchmarks.thickness import composite, textures
from gbmseg import stages
from gbmseg.config import Params, load
from gbmseg.data import splits
from gbmseg.data.io import write_png

log = logging.getLogger("benchmarks.thickness_fewshot")
NM = 10.0
THICKNESS_NM = (150.0, 450.0)
BAND_NM = (150.0, 220.0)
CONFIGS = {
    "before": ["train.holdout=0", "train.threshold=0.5"],
    "after": ["train.min_membrane_px=0"],
    "defaults": [],
}
ANY = "train.min_membrane_px=0"
LEVERS = {  # screened on the development figures (the held-out strips), 1 seed
    "skeleton_recall": [ANY, "train.skeleton_recall_weight=1.0"],
    "boundary": [ANY, "train.boundary_weight=1.0"],
    "select_dice_thickness": [ANY, "train.select=dice_thickness"],
    "dice_heavy": [ANY, "train.bce_weight=0.5"],
}
CONFIGS |= LEVERS
DEV_COLUMNS = ["cell", "verdict", "val_dice", "val_threshold", "val_thickness_err",
               "val_thickness_bias", "val_thickness_bias_at_0.5", "val_membrane_px"]  # fmt: skip
BUDGET = ["train.epochs=20", "train.steps_per_epoch=50"]  # the study's budget (2 CPU cores)


def draw_sets(raw: Path, seed: int = 0, dev: int = 0) -> None:
    """The source and target sets as a user's image/mask folders (white = membrane); ``dev``
    more labelled target images (ISBI 2-9) to validate on (``pin_dev`` makes them val)."""
    rng = np.random.default_rng(seed)
    cdeep, isbi = SHARED / "cdeep3m_mito", SHARED / "isbi2012"

    def put(folder: Path, name: str, img: np.ndarray, mask: np.ndarray) -> None:
        write_png(folder / "images" / name, img)
        write_png(folder / "masks" / name, mask.astype(np.uint8) * 255)

    for i, tex in enumerate(textures(cdeep, folders.names(cdeep)[:24], NM, 1024)):
        for j, (y, x) in enumerate(((0, 0), (512, 512))):
            img, m, _ = composite(tex[y : y + 512, x : x + 512], rng, NM, THICKNESS_NM)
            put(raw / "source", f"s{i:02d}_{j}.png", img, m)
    names = folders.names(isbi)
    for i, tex in enumerate(textures(isbi, names[:2], NM, 512)):
        img, m, _ = composite(tex, rng, NM, THICKNESS_NM)
        put(raw / "target", f"lab{i}.png", img, m)
    for i, tex in enumerate(textures(isbi, names[10:30], NM, 512)):
        for j in range(3):
            img, m, _ = composite(tex, rng, NM, THICKNESS_NM)
            put(raw / "target" / "test", f"t{i:02d}_{j}.png", img, m)
    for i, tex in enumerate(textures(isbi, names[2 : 2 + dev], NM, 512)):
        img, m, _ = composite(tex, rng, NM, THICKNESS_NM)
        put(raw / "target", f"dev{i}.png", img, m)


def pin_dev(p: Params) -> None:
    """The split file that trains on the 2 labelled images and validates on the dev ones."""
    names = sorted(q.name for q in (Path(p.target.raw) / "images").iterdir())
    table = {n: "val" if n.startswith("dev") else "train" for n in names}
    splits.write(Path(p.pack.splits) / "target.csv", table)


def project(work: Path, overrides: list[str]) -> Params:
    sets = []
    for name in ("source", "target"):
        sets += [f"sets.{name}.raw={work / 'raw' / name}", f"sets.{name}.positive=white"]
        sets += [f"sets.{name}.pixel_size_nm={NM}"]
    base = [*sets, "train.sets=[source]", "evaluate.baseline=''", *BUDGET]
    return load(ROOT / "params.yaml", [*base, *overrides]).rooted(work / "project")


def cell_paths(work: Path, cell: str, scored: str = "evaluate") -> list[str]:
    """A cell's own fine-tuned model, checkpoints and reports (``scored``: the name of its
    evaluate folder and metrics file)."""
    d = work / "cells" / cell
    keys = {
        "resolve.out": d / "pretrained",
        "train.checkpoints": d / "checkpoints",
        "finetune.out": d / "finetune",
        "finetune.metrics": d / "finetune.json",
        "finetune.history": d / "finetune.csv",
        "evaluate.model": d / "finetune",
        "evaluate.out": d / scored,
        "evaluate.metrics": d / f"{scored}.json",
    }
    return [f"{k}={v}" for k, v in keys.items()]


def prepare(work: Path, overrides: list[str], dev: int = 0) -> None:
    """Draw the sets; validate, augment and pack both; pretrain on the source (once)."""
    if not (work / "raw" / "target" / "test").is_dir():
        draw_sets(work / "raw", dev=dev)
    p = project(work, overrides)
    if dev and not (Path(p.pack.splits) / "target.csv").is_file():
        pin_dev(p)
    for name in ("source", "target"):
        if not (Path(p.paths(name).packed) / "manifest.json").is_file():
            stages.validate(p, name)
            stages.augment(p, name)
            stages.pack(p, name)
    if not (Path(p.train.out) / "source" / "model.pt").is_file():
        stages.train(p, "source")


def figures(evaluate_dir: Path, metrics: dict) -> dict:
    """The cell's figures from evaluate's metrics and per-image table."""
    t = pd.read_csv(evaluate_dir / "per_image.csv")
    label, rel = t["medial_median_nm_label"], t["medial_median_nm_rel_diff"]
    band = rel[(label >= BAND_NM[0]) & (label <= BAND_NM[1])].dropna()
    return {
        "dice": metrics["dice"],
        "threshold": metrics.get("threshold"),
        "slope": metrics.get("thickness_medial_median_slope"),
        "mean_abs_rel_diff": metrics.get("thickness_medial_median_mean_abs_rel_diff"),
        "bias_nm": metrics.get("thickness_medial_median_bias_nm"),
        "band_rel_diff": round(float(band.mean()), 4) if len(band) else None,
        "band_images": len(band),
        "test_images": len(t),
    }


def run_cell(work: Path, config: str, seed: int, overrides: list[str]) -> dict[str, dict]:
    """Fine-tune and evaluate one configuration and seed; ``after`` also at threshold 0.5."""
    cell = f"{config}-{seed}"
    paths = cell_paths(work, cell)
    p = project(work, [*overrides, *CONFIGS[config], f"train.seed={seed}", *paths])
    t0 = time.perf_counter()
    stages.resolve(p)
    tuned = stages.finetune(p)
    seconds = round(time.perf_counter() - t0, 1)
    out = {cell: {"config": config, "seed": seed, "finetune_s": seconds,
                  "best_epoch": tuned.get("best_epoch"), **figures(Path(p.evaluate.out),
                  stages.evaluate(p))}}  # fmt: skip
    if config == "after":
        half = [*cell_paths(work, cell, "evaluate05"), "evaluate.threshold=0.5"]
        q = project(work, [*overrides, *CONFIGS[config], f"train.seed={seed}", *half])
        out[f"after@0.5-{seed}"] = {
            "config": "after@0.5", "seed": seed, **figures(Path(q.evaluate.out), stages.evaluate(q))
        }  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--configs", nargs="+", default=["before", "after"], choices=list(CONFIGS))
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "thickfew")
    ap.add_argument(
        "--dev", type=int, default=0,
        help="N more labelled target images, validated on (never trained on): the lever screen",
    )  # fmt: skip
    ap.add_argument("-S", dest="overrides", action="append", default=[], help="params override")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not (SHARED / "isbi2012" / "images").is_dir():
        raise SystemExit(f"{SHARED}: real EM textures (isbi2012, cdeep3m_mito) needed")
    t0 = time.perf_counter()
    prepare(args.work, args.overrides, args.dev)
    store = args.work / "cells.json"
    cells = json.loads(store.read_text()) if store.is_file() else {}
    for seed in args.seeds:
        for config in args.configs:
            if f"{config}-{seed}" in cells:
                continue
            cells |= run_cell(args.work, config, seed, args.overrides)
            store.write_text(json.dumps(cells, indent=1))
    rows = report.summary(cells, list(LEVERS))
    cols = ["config", "seeds", "dice", "slope", "mean_abs_rel_diff", "bias_nm", "band_rel_diff",
            "threshold"]  # fmt: skip
    md = (
        "# Thickness through a model fine-tuned on 2 labelled images (composites 150-450 nm)\n\n"
        "Source: 48 CDeep3M composites; target: 2 labelled ISBI composites"
        + (f" (+ {args.dev} validation composites, never trained on)" if args.dev else "")
        + f"; test: 60 ISBI composites. {NM} nm/px. Budget: {' '.join(BUDGET + args.overrides)}. "
        "Mean +- sd over seeds; band = 150-220 nm (mean relative difference).\n\n"
        + table(rows, cols)
    )
    levers = report.lever_table(args.work, cells, list(LEVERS))
    md += (
        "\n## Development figures (validation tiles: the strips of the 2 labelled images, or "
        "with --dev the dev images; never a test image)\n\n"
        + f"Rule: {report.RULE}.\n\n"
        + table(levers, DEV_COLUMNS)
    )
    result = {"cells": cells, "summary": rows, "levers": levers, "rule": report.RULE,
              "configs": CONFIGS, "budget": BUDGET, "overrides": args.overrides,
              "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    write(args.out, "thickness_fewshot_levers" if args.dev else "thickness_fewshot", result, md)


if __name__ == "__main__":
    main()
