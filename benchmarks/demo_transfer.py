"""Does the demo show transfer?  The fresh-machine demo's data and budget (params.yaml plus
the Makefile's DEMO_SET overrides): pretrain once on the synthetic source set, then for
several seeds train from scratch on the target and fine-tune the pretrained model on it with
the same number of epochs, and score both on the target's test/ images (never trained on).

    python -m benchmarks.demo_transfer [--seeds 0 1 2]

Writes benchmarks/out/demo_transfer.{json,md}: per seed the test Dice of both, the mean and
spread, the strategy `auto` picked, and each phase's wall-clock.
"""

from __future__ import annotations

import argparse
import itertools
import re
import shlex
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, table, write
from gbmseg import stages
from gbmseg.config import Params, load


def demo_overrides() -> list[str]:
    """The `-S` values of the Makefile's DEMO_SET (the demo's own overrides)."""
    line = re.search(r"^DEMO_SET := (.*)$", (ROOT / "Makefile").read_text(), re.M)
    words = shlex.split(line.group(1))
    return [w for prev, w in itertools.pairwise(words) if prev == "-S"]


def configured(work: Path, seed: int) -> Params:
    """The demo's parameters with its data, models and reports inside ``work``."""
    p = load(ROOT / "params.yaml", [*demo_overrides(), f"train.seed={seed}"])
    return p.rooted(work, raw=True)


def timed(fn, *args) -> tuple[dict, float]:
    t0 = time.perf_counter()
    res = fn(*args)
    return res, round(time.perf_counter() - t0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    rows, phases = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        p = configured(work, args.seeds[0])
        t0 = time.perf_counter()
        stages.synth(p)
        for name in ("source", "target"):
            for stage in (stages.validate, stages.augment, stages.pack):
                stage(p, name)
        phases["data_s"] = round(time.perf_counter() - t0, 1)
        pre, phases["pretrain_s"] = timed(stages.train, p, "source")
        stages.resolve(p)
        for seed in args.seeds:
            q = configured(work, seed)
            _, scratch_s = timed(stages.train, q, "target")
            ft, finetune_s = timed(stages.finetune, q)
            ev = stages.evaluate(q)
            rows.append(
                {
                    "seed": seed,
                    "finetuned_dice": ev["dice"],
                    "scratch_dice": ev["baseline_dice"],
                    "gain": ev["dice_gain_over_baseline"],
                    "strategy": ft["strategy"],
                    "scratch_s": scratch_s,
                    "finetune_s": finetune_s,
                }
            )
    summary = {
        k: {"mean": round(float(np.mean(v)), 4), "sd": round(float(np.std(v, ddof=1)), 4)}
        for k, v in (
            (key, [r[key] for r in rows]) for key in ("finetuned_dice", "scratch_dice", "gain")
        )
    }
    summary["finetuned_ahead_in"] = f"{sum(r['gain'] > 0 for r in rows)} of {len(rows)} seeds"
    result = {
        "overrides": demo_overrides(),
        "pretrain_val_dice": pre["best_val_dice"],
        "phases": phases,
        "rows": rows,
        "summary": summary,
        "test_images": ev["n_images"],
    }
    cols = ["seed", "finetuned_dice", "scratch_dice", "gain", "strategy", "scratch_s", "finetune_s"]
    md = (
        "# The demo's transfer: fine-tuned vs from scratch, same epochs, same test images\n\n"
        f"Overrides: `{' '.join(demo_overrides())}`; {ev['n_images']} target test images.\n\n"
        + table(rows, cols)
        + "\n"
        + table(
            [{"": k, **v} for k, v in summary.items() if isinstance(v, dict)], ["", "mean", "sd"]
        )
        + f"\nFine-tuned ahead in {summary['finetuned_ahead_in']}. Pretraining: "
        f"{phases['pretrain_s']} s (val Dice {pre['best_val_dice']}); data: {phases['data_s']} s.\n"
    )
    write(args.out, "demo_transfer", result, md)


if __name__ == "__main__":
    main()
