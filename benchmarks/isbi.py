"""ISBI-2012 membranes: train on images 0-19, select on 20-24, score 25-29, in a wall-clock budget.

The anchor is the original recipe's Keras U-Net measured on this same 2-core CPU kind
(31.0M parameters, 256x256, Adam 1e-4, BCE): 0.68 img/s, and after 23 minutes pixel error
0.085 and membrane Dice 0.770 on images 25-29 (all-background guess: pixel error 0.199).

This script (1) measures the project's trainer on that same classic configuration at
256x256 (img/s, beside the anchor's 0.68), then (2) trains the configuration in params.yaml's
train section, with --base/--depth overrides, through the train step with the
recipe's augmentations on the fly, sized so the schedule ends inside --minutes, and
(3) scores the five test images whole with tiled inference.

    python -m benchmarks.isbi [--minutes 23] [--base 16] [--data ../shared/data/isbi2012]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import folders
from benchmarks.common import ROOT, SHARED, model_arguments, table, write
from benchmarks.train_throughput import project
from gbmseg.config import load
from gbmseg.engine.checkpoint import load_model
from gbmseg.engine.data import load_split
from gbmseg.engine.seed import seed_everything
from gbmseg.model.unet import build, count_parameters
from gbmseg.steps import train

log = logging.getLogger("benchmarks.isbi")
ANCHOR = {"img_per_s": 0.68, "minutes": 23, "pixel_error": 0.085, "dice": 0.770}


def split(folder: Path) -> dict[str, list[str]]:
    names = folders.names(folder)
    if len(names) < 30:
        raise SystemExit(f"{folder}: expected 30 labelled images, found {len(names)}")
    return {"train": names[:20], "val": names[20:25], "test": names[25:30]}


def overrides(args: argparse.Namespace, epochs: int, minutes: float, out: Path) -> list[str]:
    return [
        *folders.step_paths(out),
        f"train.model.base={args.base}",
        f"train.model.depth={args.depth}",
        f"train.device={args.device}",
        f"train.epochs={epochs}",
        f"train.max_minutes={minutes:.2f}",
        f"train.batch_size={args.batch}",
        f"train.lr={args.lr}",
        "train.patience=100000",
        "train.augment_online=true",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=SHARED / "isbi2012")
    ap.add_argument("--minutes", type=float, default=23.0, help="whole wall-clock budget")
    model_arguments(ap, base=16)
    ap.add_argument("--classic-steps", type=int, default=6, help="0 skips the classic timing")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not (args.data / "images").is_dir():
        log.warning("%s not found: ISBI-2012 benchmark skipped", args.data)
        sys.exit(0)
    t_start = time.perf_counter()
    parts = split(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        packed = Path(tmp) / "packed"
        valid = folders.validated(args.data, "black", Path(tmp))
        split_ = {s: parts[s] for s in ("train", "val")}
        counts = {"train": folders.pack(valid, split_, args.tile, args.tile // 2, packed)["tiles"]}
        classic = None
        if args.classic_steps:
            x, y = (np.ascontiguousarray(a) for a in load_split(packed, "train"))
            rate, prec = project(x, y, 2, args.classic_steps, args.device)
            classic = {"img_per_s": round(rate, 3), "precision": prec, "vs_keras": rate / 0.68}
        budget = args.minutes - (time.perf_counter() - t_start) / 60 - 0.5  # 0.5: scoring
        base = load(ROOT / "params.yaml", overrides(args, 1, 0, Path(tmp) / "m")).train
        seed_everything(0)
        probe = build(base.model.model_dump())
        x, y = (np.ascontiguousarray(a) for a in load_split(packed, "train"))
        rate, _ = project(x, y, args.batch, 3, args.device, probe)
        epochs = max(1, int(budget * 60 * 0.92 * rate / counts["train"]))
        log.info("%.1f img/s -> %d epochs in %.1f min", rate, epochs, budget)
        p = load(ROOT / "params.yaml", overrides(args, epochs, budget, Path(tmp) / "m"))
        result = train.run(p.train, packed, augment=p.augment)
        model = load_model(Path(tmp) / "m")
        rows = folders.score(model, args.data, parts["test"], "black", args.tile, args.device)
    wall = (time.perf_counter() - t_start) / 60
    summary = folders.mean(rows)
    res = {
        "anchor_keras": ANCHOR,
        "split": parts,
        "model": p.train.model.model_dump(),
        "parameters": count_parameters(model),
        "epochs": result["epochs_run"],
        "stopped": result["stopped"],
        "best_val_dice": round(result["best_val_dice"], 4),
        "train_img_per_s": result["img_per_s"],
        "wall_minutes": round(wall, 2),
        "test": summary,
        "per_image": rows,
        "classic_256": classic,
        "device": str(torch.device("cuda" if torch.cuda.is_available() else "cpu")),
    }
    md = f"ISBI-2012, test images 25-29, wall clock {wall:.1f} min (budget {args.minutes})\n\n"
    md += table(
        [
            {"model": "Keras U-Net (anchor, 23 min)", "params": "31.0M", **ANCHOR},
            {
                "model": f"gbmseg U-Net depth {args.depth} base {args.base}",
                "params": f"{res['parameters'] / 1e6:.2f}M",
                "minutes": round(wall, 1),
                "img_per_s": res["train_img_per_s"],
                **summary,
            },
        ],
        ["model", "params", "minutes", "img_per_s", "pixel_error", "dice", "adapted_rand_error"],
    )
    if classic:
        md += (
            f"\nClassic 31.0M U-Net at 256x256, batch 2, project trainer ({classic['precision']}): "
            f"{classic['img_per_s']:.2f} img/s = {classic['vs_keras']:.2f}x the Keras 0.68 img/s\n"
        )
    write(args.out, "isbi", res, md)


if __name__ == "__main__":
    main()
