"""The transfer study: which fine-tuning strategy works for k labelled target images?

Pretrains on --source once (the train step; or takes --pretrained), then for every k in
--train-counts and every strategy fine-tunes on the first k target images with the same
budget (--steps optimiser steps, the recipe's augmentations on the fly) through the
finetune step itself (``scratch`` = the train step from random weights, same
architecture), and scores the test images whole with tiled inference.  When --test is the
--target folder, its images are split in two halves: the first for fine-tuning (k taken
from its start), the second for testing; no image is in both.

--calibrate instead measures the auto rule's distances (gbmseg.transfer.auto) for held-out
source images and for the targets given, to set finetune.auto's thresholds.

    python -m benchmarks.transfer --source S --target T --test T --train-counts 1,2,4 \\
        --strategies scratch,head,decoder,shallow,full,auto --positive black --out DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import folders
from benchmarks.common import ROOT, model_arguments, table, write
from benchmarks.transfer_report import replace_cells, report
from gbmseg.config import Params, load
from gbmseg.data.stats import histogram
from gbmseg.engine.checkpoint import load_model
from gbmseg.engine.data import load_split
from gbmseg.steps import finetune, train
from gbmseg.transfer import auto

log = logging.getLogger("benchmarks.transfer")
KEYS = ("dice", "iou")


def params(args: argparse.Namespace, out: Path, epochs: int, extra: list[str] = ()) -> Params:
    sets = [
        f"train.out={out}",
        f"train.metrics={out}.metrics.json",
        f"train.history={out}.history.csv",
        f"train.checkpoints={out}.ckpt",
        f"train.model.base={args.base}",
        f"train.model.depth={args.depth}",
        f"train.batch_size={args.batch}",
        f"train.lr={args.lr}",
        f"train.epochs={epochs}",
        f"train.device={args.device}",
        f"train.seed={args.seed}",
        "train.max_minutes=0",
        "train.patience=100000",
        f"train.augment_online={str(args.augment).lower()}",
        f"finetune.out={out}",
        f"finetune.metrics={out}.metrics.json",
        f"finetune.history={out}.history.csv",
        f"finetune.epochs={epochs}",
        f"finetune.lr={args.lr}",
        *extra,
    ]
    return load(ROOT / "params.yaml", sets)


def epochs_for(steps: int, tiles: int, batch: int) -> int:
    return max(1, -(-steps // -(-tiles // batch)))


def pack_set(folder: Path, names: list[str], args, out: Path, work: Path) -> int:
    """train = val = the chosen images (k may be 1: nothing is left to hold out; the test
    images are never seen)."""
    valid = folders.validated(folder, args.positive, work)
    by_split = {"train": names, "val": names}
    return folders.pack(valid, by_split, args.tile, args.tile // 2, out)["tiles"]


def pretrain(args, work: Path) -> Path:
    names = folders.names(args.source)
    cut = max(1, len(names) * 5 // 6)
    packed = work / "source"
    valid = folders.validated(args.source, "black", work)
    by_split = {"train": names[:cut], "val": names[cut:]}
    n = folders.pack(valid, by_split, args.tile, args.tile // 2, packed)["tiles"]
    p = params(args, work / "pretrained", epochs_for(args.pretrain_steps, n, args.batch))
    t0 = time.perf_counter()
    res = train.run(p.train, packed, augment=p.augment)
    log.info("pretrained on %s in %.0f s: %s", args.source, time.perf_counter() - t0, res)
    return work / "pretrained"


def split_target(args) -> tuple[list[str], list[str]]:
    """Fine-tuning pool and test names (disjoint halves when --test is --target)."""
    names = folders.names(args.target)
    if args.test.resolve() == args.target.resolve():
        half = len(names) // 2
        return names[:half], names[half:]
    return names, folders.names(args.test)


def cell(args, strategy: str, k: int, pool: list[str], test: list[str], pre: Path, work: Path):
    packed = work / f"k{k}"
    if not packed.exists():
        pack_set(args.target, pool[:k], args, packed, work)
    x, _ = load_split(packed, "train")
    out = work / f"{strategy}-k{k}"
    p = params(args, out, epochs_for(args.steps, len(x), args.batch))
    t0 = time.perf_counter()
    if strategy == "scratch":
        cfg = load_model(pre).cfg.to_dict()
        tp = p.train.model_copy(update={"model": p.train.model.model_copy(update=cfg)})
        res = train.run(tp, packed, augment=p.augment)
    else:
        ft = p.finetune.model_copy(update={"strategy": strategy})
        res = finetune.run(ft, p.train, pre, packed, augment=p.augment)
    model = load_model(out)
    rows = folders.score(model, args.test, test, args.positive, args.tile, args.device, KEYS)
    report = out / "transfer_report.json"
    chosen = json.loads(report.read_text()) if report.is_file() else None
    return {
        "strategy": strategy,
        "k": k,
        **folders.mean(rows, KEYS),
        "chosen": res.get("strategy", "scratch"),
        "quadrant": chosen["quadrant"] if chosen else None,
        "seconds": round(time.perf_counter() - t0, 1),
        "per_image": rows,
    }


def calibrate(args, pre: Path, targets: list[Path]) -> dict:
    model = load_model(pre)
    hist = model.source_histogram()
    names = folders.names(args.source)
    sets = {"source held-out": (args.source, names[len(names) * 5 // 6 :], "black")}
    for t in targets:
        sets[t.name] = (t, folders.names(t)[:4], args.positive)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, (folder, chosen, pos) in sets.items():
            for k in (1, 4):
                d = Path(tmp) / f"{label}-{k}"
                valid = folders.validated(folder, pos, Path(tmp))
                folders.pack(valid, {"train": chosen[:k]}, args.tile, args.tile // 2, d)
                x, _ = load_split(d, "train")
                shift = auto.feature_shift(model, x)
                out[f"{label} k={k}"] = {
                    "feature_distance": round(float(np.mean(list(shift.values()))), 4),
                    "histogram_distance": round(auto.js_distance(hist, histogram(x)), 4),
                    "per_layer": {n: round(v, 3) for n, v in shift.items()},
                }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--source", type=Path, help="folder with images/ and masks/")
    ap.add_argument("--target", type=Path, help="folder with images/ and masks/")
    ap.add_argument("--test", type=Path, help="folder with images/ and masks/")
    ap.add_argument("--train-counts", default="1,2,4")
    ap.add_argument("--strategies", default="scratch,head,decoder,shallow,full,auto")
    ap.add_argument("--positive", default="black", choices=["black", "white"])
    ap.add_argument("--pretrained", type=Path, help="model folder (skips pretraining)")
    ap.add_argument("--pretrain-steps", type=int, default=3000)
    ap.add_argument("--steps", type=int, default=300, help="optimiser steps per cell")
    ap.add_argument("--seed", type=int, default=0, help="weights, batches, augmentation")
    model_arguments(ap, base=32)
    ap.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the recipe's augmentations on the fly (needs albumentations)",
    )
    ap.add_argument("--plot-only", type=Path, help="redraw the plot of a transfer JSON")
    ap.add_argument("--calibrate", nargs="*", type=Path, help="target folders to measure")
    ap.add_argument("--save-pretrained", type=Path, help="copy the pretrained model here")
    ap.add_argument(
        "--replace-in",
        type=Path,
        help="an earlier transfer JSON: only the cells run now replace its cells",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.plot_only:
        report(json.loads(args.plot_only.read_text()), args.plot_only.parent)
        return
    if not (args.source and args.target and args.test):
        ap.error("--source, --target and --test are required (all but --plot-only)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pre = args.pretrained or pretrain(args, work)
        if args.save_pretrained:
            args.save_pretrained.mkdir(parents=True, exist_ok=True)
            for f in ("model.pt", "model_config.json"):
                (args.save_pretrained / f).write_bytes((pre / f).read_bytes())
        if args.calibrate is not None:
            cal = calibrate(args, pre, args.calibrate or [args.target])
            rows = [
                {"set": k, **{m: v[m] for m in ("feature_distance", "histogram_distance")}}
                for k, v in cal.items()
            ]
            write(
                args.out,
                "transfer_calibration",
                {"sets": cal},
                table(rows, ["set", "feature_distance", "histogram_distance"]),
            )
            return
        pool, test = split_target(args)
        counts = [int(k) for k in args.train_counts.split(",")]
        cells = [
            cell(args, s, k, pool, test, pre, work)
            for k in counts
            for s in args.strategies.split(",")
        ]
    res = {
        "source": str(args.source),
        "target": str(args.target),
        "fine_tune_pool": pool,
        "test_images": test,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "auto_params": load(ROOT / "params.yaml").finetune.auto.model_dump(),
        "cells": cells,
    }
    if args.replace_in:
        res = replace_cells(json.loads(args.replace_in.read_text()), res)
    report(res, args.out)


if __name__ == "__main__":
    main()
