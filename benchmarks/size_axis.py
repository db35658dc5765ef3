"""What should the auto rule's size axis count: labelled images, or labelled pixels?

The rule switches a *similar* target from ``decoder`` (small) to ``full`` (large) fine-tuning.
Six labelled sets per seed, nested, that pull the candidate units apart:

  arm             images  labelled pixels
  1 small crop       1       1 window of side ``--crop`` / 2
  4 small crops      4       4 such windows (as many pixels as 1 crop)
  1 crop             1       1 window of side ``--crop``
  4 crops            4       4 windows (as many pixels as 1 image when the crop is half its side)
  1 image            1       1 whole image
  4 images           4       4 whole images

Each arm is fine-tuned with ``decoder`` and with ``full`` from the same pretrained model, the
same step budget and the same seed, and scored on the target's *development* images (this
is a choice, so no test image is used). If a unit is what matters, arms equal in that unit
show the same ``full - decoder`` gap. Cells are saved as they finish; a re-run resumes.

    python -m benchmarks.size_axis --start models/train/source --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from benchmarks import fewshot, folders
from benchmarks.common import ROOT, SHARED, machine
from benchmarks.fewshot_specs import Config
from benchmarks.size_axis_report import report
from gbmseg.data.io import read_image
from gbmseg.engine import checkpoint
from gbmseg.steps import finetune

log = logging.getLogger("benchmarks.size_axis")
ARMS = {  # name -> (images, window side as a share of --crop; None: whole images)
    "1 small crop": (1, 0.5),
    "4 small crops": (4, 0.5),
    "1 crop": (1, 1.0),
    "4 crops": (4, 1.0),
    "1 image": (1, None),
    "4 images": (4, None),
}


def labelled(sp: fewshot.Split, seed: int, n: int) -> list[str]:
    c = sp.candidates
    return [c[(4 * seed + i) % len(c)] for i in range(n)]


def windows(folder: Path, names: list[str], side: int, seed: int) -> dict:
    """A corner square of side ``side`` per image, the corner drawn by the seed."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in names:
        h, w = read_image(folder / "images" / name).shape
        corner = rng.integers(0, 2, 2)
        out[name] = (int(corner[0] * (h - side)), int(corner[1] * (w - side)), side)
    return out


def pack_arm(target: str, names: list[str], win: dict | None, tile: int, work: Path) -> Path:
    """The pack step's arrays of the arm: whole images, or the labelled squares written out
    as their own image files and validated like any set."""
    key = hashlib.sha256(json.dumps([target, names, win, tile]).encode()).hexdigest()[:12]
    out = work / "packed" / f"size-{target}-{key}"
    if not (out / "manifest.json").is_file():
        folder = SHARED / target
        if win:
            folder = folders.crops(folder, win, work / "crops" / f"{target}-{key}")
        valid = folders.validated(folder, "black", work)
        folders.pack(valid, {"train": names, "val": names[:1]}, tile, tile // 2, out)
    return out


def cell(args, start: Path, arm: str, strategy: str, seed: int) -> dict:
    """The finetune step with ``strategy`` on the arm's labels, scored on the dev images."""
    sp = fewshot.split(args.target)
    n, share = ARMS[arm]
    names = labelled(sp, seed, n)
    win = windows(SHARED / args.target, names, int(args.crop * share), seed) if share else None
    packed = pack_arm(args.target, names, win, args.tile, args.work)
    manifest = json.loads((packed / "manifest.json").read_text())["splits"]["train"]
    cfg = Config(strategy=strategy, steps=args.steps, tile=args.tile)
    out = args.work / "cells" / cell_id(args, arm, strategy, seed)
    p = fewshot.params(cfg, out, fewshot.epochs_for(args.steps, manifest["tiles"]), seed)
    t0 = time.perf_counter()
    finetune.run(p.finetune, p.finetune_train_params(), start, packed, augment=p.augment)
    seconds = round(time.perf_counter() - t0, 1)
    model = checkpoint.load_model(out)
    rows = folders.score(model, SHARED / args.target, sp.dev, "black", 256, "auto")
    return {
        "id": cell_id(args, arm, strategy, seed),
        "arm": arm,
        "strategy": strategy,
        "seed": seed,
        "labelled": names,
        "windows": win,
        "images": n,
        "megapixels": round(manifest["source_pixels"] / 1e6, 4),
        "structure_megapixels": round(manifest["structure_pixels"] / 1e6, 4),
        "tiles": manifest["tiles"],
        **folders.mean(rows),
        "train_seconds": seconds,
        "per_image": rows,
    }


def cell_id(args, arm: str, strategy: str, seed: int) -> str:
    blob = json.dumps([args.target, arm, strategy, seed, args.steps, args.tile, args.crop])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run(args, start: Path) -> dict:
    if args.out.is_file():
        doc = json.loads(args.out.read_text())
    else:
        doc = {"machine": machine(), "cells": [], "start": describe(start), "args": settings(args)}
    done = {c["id"] for c in doc["cells"]}
    for seed in args.seeds:
        for arm in args.arms:
            for strategy in ("decoder", "full"):
                if cell_id(args, arm, strategy, seed) in done:
                    continue
                res = cell(args, start, arm, strategy, seed)
                log.info(
                    "%s %s seed %s: Dice %.4f (%.0f s)",
                    arm,
                    strategy,
                    seed,
                    res["dice"],
                    res["train_seconds"],
                )
                doc["cells"].append(res)
                fewshot.save(args.out, doc)
    return doc


def describe(start: Path) -> dict:
    weights = start / "model.pt"
    trained_on = start / "trained_on.json"
    return {
        "path": str(start),
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "trained_on": json.loads(trained_on.read_text())["images"]
        if trained_on.is_file()
        else None,
    }


def settings(args) -> dict:
    keys = ("target", "steps", "tile", "crop", "seeds")
    return {k: getattr(args, k) for k in keys}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--target", default="vnc_membranes", choices=sorted(fewshot.DEV))
    ap.add_argument(
        "--start",
        type=Path,
        default=None,
        help="pretrained model folder (default: ISBI-2012, pretrained here)",
    )
    ap.add_argument("--steps", type=int, default=400, help="optimiser steps per cell")
    ap.add_argument("--tile", type=int, default=128)
    ap.add_argument("--crop", type=int, default=512, help="side of a labelled window")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS), metavar="ARM")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "out" / "fewshot-work")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "size_axis.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = args.start or fewshot.pretrained(
        "isbi", args.target, fewshot.split(args.target), Config(tile=args.tile), args.work
    )
    run(args, start)
    print(report(args.out))


if __name__ == "__main__":
    main()
