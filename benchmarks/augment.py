"""Augmentation throughput: images/second at 512x512, one process, the whole recipe
pipeline and each of the seven transforms alone (probability forced to 1).

    python benchmarks/augment.py [--seconds 3] [--out benchmarks/out]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, SHARED, table, write
from gbmseg.config import load
from gbmseg.data import augmentations
from gbmseg.data.io import read_image, read_raw
from gbmseg.steps import synth

NAMES = ("color_jitter", "rotate", "shear", "random_crop", "hflip", "stretch", "lens")


def pairs(n: int = 8) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    isbi = SHARED / "isbi2012"
    if (isbi / "images").is_dir():
        names = sorted(p.name for p in (isbi / "images").iterdir())[:n]
        return [
            (read_image(isbi / "images" / k), (read_raw(isbi / "masks" / k) == 0).astype(np.uint8))
            for k in names
        ], "isbi2012 (512x512)"
    p = load(ROOT / "params.yaml", ["synth.size=512"]).synth
    return [synth.render(np.random.default_rng(i), p)[:2] for i in range(n)], "synthetic 512x512"


def rate(pipe, data, seconds: float) -> float:
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        img, msk = data[done % len(data)]
        pipe(image=img, mask=msk)
        done += 1
    return done / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    p = load(ROOT / "params.yaml").augment
    data, source = pairs()
    rows = [
        {
            "transform": "whole pipeline (params.yaml probabilities)",
            "img_per_s": rate(augmentations.build(p, (512, 512), seed=0), data, args.seconds),
        }
    ]
    for name in NAMES:
        upd = {n: getattr(p, n).model_copy(update={"p": 1.0 if n == name else 0.0}) for n in NAMES}
        pipe = augmentations.build(p.model_copy(update=upd), (512, 512), seed=0)
        rows.append(
            {"transform": f"{name} alone (p=1)", "img_per_s": rate(pipe, data, args.seconds)}
        )
    md = f"Augmentation throughput, {source}, single process\n\n" + table(
        rows, ["transform", "img_per_s"]
    )
    write(args.out, "augment", {"source": source, "rows": rows}, md)


if __name__ == "__main__":
    main()
