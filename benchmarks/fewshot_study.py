"""The few-label study in one run, every choice made by a rule on development images.

1. screen: each lever of ``fewshot.LEVERS`` at k=2 on CDeep3M's development images, seeds 0-2;
2. choice (the rule, fixed before any test score exists): the start with the best mean
   development Dice; every other lever kept when its mean development gain over the baseline
   is at least ``--min-gain``;
3. grid: both targets, k = 1, 2, strategies scratch / decoder / shallow / full / auto with the
   chosen configuration, seeds 0-2, scored on the test images;
4. ceiling: each target's whole pool (full supervision), scored on the test images.

Cells run in parallel processes (pretrainings first, so none is built twice) and are saved to
``--out`` as they finish; a re-run skips what is there; ``--minutes`` stops launching cells
after that wall-clock time (the JSON says which phases finished).

    python -m benchmarks.fewshot_study --workers 8 --out benchmarks/out/fewshot_study.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from benchmarks import fewshot as F
from benchmarks import fewshot_specs as FS
from benchmarks.common import machine

log = logging.getLogger("benchmarks.fewshot_study")
STARTS = ("baseline", "scratch", "ssl", "isbi+ssl", "multi")  # baseline = ISBI-2012 pretraining
STRATEGIES = ("scratch", "decoder", "shallow", "full", "auto")
TARGETS = ("cdeep3m_mito", "vnc_membranes")


def _init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING)


def _pretrain(start: str, target: str, cfg: FS.Config, work: str) -> str:
    return str(F.pretrained(start, target, F.split(target), cfg, Path(work)))


def _cell(spec: tuple, work: str) -> dict:
    target, k, seed, cfg, on, label = spec
    return F.cell(target, F.split(target), k, seed, cfg, on, Path(work)) | {"label": label}


def choose(cells: list[dict], base: FS.Config, min_gain: float) -> tuple[FS.Config, dict]:
    """The configuration the screen supports, and why (mean development Dice per lever)."""
    means = {}
    for c in cells:
        means.setdefault(c["label"], []).append(c["dice"])
    mean = {k: float(np.mean(v)) for k, v in means.items()}
    best_start = max((s for s in STARTS if s in mean), key=mean.get)
    change = {} if best_start == "baseline" else dict(FS.LEVERS[best_start])
    kept = []
    for name, lever in FS.LEVERS.items():
        if name in STARTS or name in ("shallow", "decoder") or name not in mean:
            continue  # starts compared above; strategies are the grid's own axis
        if mean[name] - mean["baseline"] >= min_gain:
            change |= lever
            kept.append(name)
    chosen = FS.changed(base, change)
    why = {"mean_dev_dice": mean, "start": best_start, "kept": kept, "min_gain": min_gain}
    return chosen, why


class Study:
    def __init__(self, out: Path, work: Path, workers: int, deadline: float):
        self.out, self.work, self.deadline = out, work, deadline
        self.doc = json.loads(out.read_text()) if out.is_file() else {"cells": []}
        self.doc["machine"] = machine()
        ctx = get_context("spawn")
        threads = max(1, 16 // workers)
        self.pool = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_init, initargs=(threads,)
        )

    def run(self, specs: list[tuple]) -> bool:
        """Run the cells not done yet; False when the deadline stopped it."""
        done = {c["id"] for c in self.doc["cells"]}
        todo = [s for s in specs if F.cell_id(*s[:5]) not in done]
        starts = {(s[3].start, s[0], s[3].base, s[3].tile, s[3].pretrain_steps): s for s in todo}
        jobs = [
            self.pool.submit(_pretrain, s[3].start, s[0], s[3], str(self.work))
            for s in starts.values()
            if s[3].start != "scratch"
        ]
        for job in as_completed(jobs):
            job.result()
        if time.monotonic() > self.deadline:
            return False
        futures = {self.pool.submit(_cell, s, str(self.work)): s for s in todo}
        for fut in as_completed(futures):
            res = fut.result()
            self.doc["cells"].append(res)
            F.save(self.out, self.doc)
            F.log_cell(res)
            if time.monotonic() > self.deadline:
                for f in futures:
                    f.cancel()
                return False
        return True


def specs_grid(chosen: FS.Config, ks: list[int], seeds: list[int], ceiling_steps: int) -> list:
    out = []
    for target in TARGETS:
        out += FS.grid_specs(chosen, [target], ks, seeds, STRATEGIES)
        out += FS.ceiling_specs(FS.changed(chosen, {"steps": ceiling_steps}), [target], seeds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--k", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--levers", nargs="+", default=list(FS.LEVERS), choices=list(FS.LEVERS))
    ap.add_argument("--min-gain", type=float, default=0.01)
    ap.add_argument("--ceiling-steps", type=int, default=2000)
    ap.add_argument("--minutes", type=float, default=0, help="0: no limit")
    FS.add_io_arguments(ap, "fewshot_study.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    deadline = t0 + args.minutes * 60 if args.minutes else float("inf")
    base = FS.base_config(args)
    study = Study(args.out, args.work, args.workers, deadline)
    finished = study.run(FS.screen_specs(base, ["cdeep3m_mito"], [2], args.seeds, args.levers))
    screen = [c for c in study.doc["cells"] if c["on"] == "dev"]
    chosen, why = choose(screen, base, args.min_gain)
    study.doc |= {"choice": why, "chosen": chosen.__dict__, "screen_finished": finished}
    F.save(args.out, study.doc)
    log.info("chosen: %s", why)
    if finished:
        finished = study.run(specs_grid(chosen, args.k, args.seeds, args.ceiling_steps))
    study.doc |= {"grid_finished": finished, "wall_minutes": round((time.monotonic() - t0) / 60, 1)}
    F.save(args.out, study.doc)
    from benchmarks.fewshot_report import report

    report(args.out)


if __name__ == "__main__":
    main()
