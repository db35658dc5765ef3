"""Training throughput on a machine that is doing something else: the project's training
epoch (params.yaml's U-Net, 128 px tiles, batch 8) in img/s alone and beside one CPU-bound
process (``python -c "while True: pass"``), for OpenMP settings side by side in one run,
each in a fresh process (OpenMP reads its settings once, at start).

    python -m benchmarks.busy [--steps 60] [--repeats 3]

Run it on an otherwise idle machine: the competing process is the only other load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, table, write

CHILD = """
import json, sys, time
import numpy as np, torch
from gbmseg.config import load
from gbmseg.engine.amp import choose_precision
from gbmseg.engine.data import Batches
from gbmseg.engine.trainer import Trainer
from gbmseg.model.unet import build
steps, root = int(sys.argv[1]), sys.argv[2]
p = load(root + "/params.yaml", ["train.epochs=1", *sys.argv[3:]]).train
prec = choose_precision(p.device, p.amp)
torch.manual_seed(0)
rng = np.random.default_rng(0)
x = rng.integers(0, 255, ((steps + 2) * 8, 128, 128), dtype=np.uint8)
y = (rng.random(x.shape) > 0.9).astype(np.uint8)
model = build(p.model.model_dump()).to(memory_format=torch.channels_last)
tr = Trainer(model, p, prec, root + "/benchmarks/out/_scratch")
tr.schedule(1 << 20)
tr.train_epoch(0, Batches(x[:16], y[:16], 8, train=True))  # warm-up
t0 = time.perf_counter()
tr.train_epoch(0, Batches(x[16:], y[16:], 8, train=True))
rate = steps * 8 / (time.perf_counter() - t0)
out = {"img_per_s": rate, "threads": torch.get_num_threads(), "precision": prec.describe()}
print(json.dumps(out))
"""
SETTINGS = {  # name -> (environment, params overrides) of the training process
    "2 threads (OpenMP default)": ({}, ["train.threads=2"]),
    "2 threads, OMP_WAIT_POLICY=PASSIVE": ({"OMP_WAIT_POLICY": "PASSIVE"}, ["train.threads=2"]),
    "1 thread": ({}, ["train.threads=1"]),
    "train.threads: 0 (the cores left free)": ({}, ["train.threads=0"]),
}


def rate(setting: tuple[dict[str, str], list[str]], steps: int) -> dict:
    env, overrides = setting
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))} | env
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(steps), str(ROOT), *overrides],
        env=full,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(steps: int, repeats: int) -> list[dict]:
    rows = []
    for name, setting in SETTINGS.items():
        row: dict = {"setting": name}
        for where in ("alone", "beside"):
            busy = None
            if where == "beside":
                busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                time.sleep(1.0)
            try:
                runs = [rate(setting, steps) for _ in range(repeats)]
            finally:
                if busy:
                    busy.kill()
                    busy.wait()
            rates = [r["img_per_s"] for r in runs]
            row[f"{where}_img_s"] = round(float(np.median(rates)), 1)
            row[f"{where}_spread"] = f"{min(rates):.1f}-{max(rates):.1f}"
            row[f"{where}_threads"], row["precision"] = runs[0]["threads"], runs[0]["precision"]
        row["beside_over_alone"] = round(row["beside_img_s"] / row["alone_img_s"], 3)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=60, help="timed optimiser steps per run")
    ap.add_argument("--repeats", type=int, default=3, help="runs per cell (median shown)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    rows = measure(args.steps, args.repeats)
    cols = ["setting", "precision", "alone_threads", "alone_img_s", "alone_spread"]
    cols += ["beside_threads", "beside_img_s", "beside_spread", "beside_over_alone"]
    md = (
        "# Training img/s alone and beside one CPU-bound process\n\n"
        f"params.yaml's U-Net, 128 px tiles, batch 8, {args.steps} timed steps per run, "
        f"median of {args.repeats} fresh processes (spread: min-max).\n\n" + table(rows, cols)
    )
    write(args.out, "busy", {"rows": rows, "steps": args.steps, "repeats": args.repeats}, md)


if __name__ == "__main__":
    main()
