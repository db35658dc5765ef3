"""The active-learning benchmark's tables: test Dice per round and arm, the verdict by the
rule fixed before running, how well each score ranks the worst crops, membrane widths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, table, write
from gbmseg.config import load

ROUNDS, START, ADD = 3, 2, 2
ARMS = ("suggest", "random")
SCORES = ("disagreement", "entropy")
RULE = "suggest beats random if its mean test Dice is ahead at rounds 2 and 3"


def summary(cells: dict, seeds: list[int]) -> list[dict]:
    rows = []
    for r in range(ROUNDS + 1):
        row = {"round": r, "labelled": START + ADD * r}
        for arm in ARMS:
            d = [cells[f"{arm}-{s}-r{r}"]["dice"] for s in seeds if f"{arm}-{s}-r{r}" in cells]
            row[arm] = f"{np.mean(d):.4f} +- {np.std(d):.4f}" if d else ""
            row[f"{arm}_mean"] = float(np.mean(d)) if d else None
        rows.append(row)
    return rows


def verdict(rows: list[dict]) -> str:
    ahead = [r["suggest_mean"] > r["random_mean"] for r in rows[2:] if r["suggest_mean"]]
    return "suggest beats random" if len(ahead) == 2 and all(ahead) else "no better than random"


def widths(work: Path, seeds: list[int]) -> list[dict]:
    """Membrane width on the VNC test images, prediction vs label (evaluate's own per-image
    relative differences: the PNGs carry no pixel size, so no nm): the round-0 model (2
    labelled crops) of each seed and each arm's last model (8 crops)."""
    import pandas as pd

    rows = []
    for name, labelled in [(f"start-{s}", START) for s in seeds] + [
        (f"{a}-{s}", START + ADD * ROUNDS) for a in ARMS for s in seeds
    ]:
        folder = work / "arms" / name
        table = folder / "reports" / "evaluate" / "per_image.csv"
        if not table.is_file():
            continue
        rel = pd.read_csv(table)["medial_median_nm_rel_diff"].dropna()
        scores = json.loads((folder / "metrics" / "evaluate.json").read_text())
        rows.append({"model": name, "labelled": labelled, "threshold": scores.get("threshold"),
                     "width_rel_diff": round(float(rel.mean()), 4),
                     "width_mean_abs_rel_diff": round(float(rel.abs().mean()), 4),
                     "precision": scores["precision"], "recall": scores["recall"],
                     "dice": scores["dice"]})  # fmt: skip
    return rows


def write_report(args, cells: dict, seconds: float) -> None:
    rows = summary(cells, args.seeds)
    width_rows = widths(args.work, args.seeds)
    ranks = [{"seed": s, **cells[f"start-{s}-r0"]["ranking"]} for s in args.seeds]
    rank_cols = ["seed", "pool", "mean_error", *[f"rho_{s}" for s in SCORES],
                 *[f"top{ADD}_error_{s}" for s in SCORES]]  # fmt: skip
    default = load(ROOT / "params.yaml", []).suggest.score
    md = (
        "# Active learning: labels chosen by `gbmseg suggest` vs at random (VNC target)\n\n"
        f"Source: ISBI-2012 (30 images). Target: VNC, 10 test images never chosen from; pool: "
        f"40 quarter crops, masks hidden. Start {START} random crops, +{ADD} per round. "
        f"suggest.score: {default}. Budget: {' '.join(args.budget + args.overrides)}. Test Dice, "
        f"mean +- sd over seeds {args.seeds}.\n\nRule (fixed before running): {RULE}. "
        f"Verdict: **{verdict(rows)}**.\n\n"
        + table(rows, ["round", "labelled", *ARMS])
        + "\n## Which score ranks the worst crops first (round-0 models, whole pool)\n\n"
        "rho: Spearman of the score with the true error (1 - Dice on the crop's hidden mask); "
        f"top{ADD}_error: mean true error of the {ADD} crops each score ranks first.\n\n"
        + table(ranks, rank_cols)
        + "\n## Membrane width on the VNC test images (prediction vs label, mid-line median)\n\n"
        "width_rel_diff: mean relative difference per test image (+: drawn too wide); the "
        "round-0 models (start-SEED) and each arm's last model.\n\n"
        + table(width_rows, ["model", "labelled", "threshold", "width_rel_diff",
                             "width_mean_abs_rel_diff", "precision", "recall", "dice"])
    )  # fmt: skip
    result = {"cells": cells, "summary": rows, "ranking": ranks, "widths": width_rows, "rule": RULE,
              "verdict": verdict(rows), "score": default, "budget": args.budget,
              "overrides": args.overrides, "seconds": round(seconds, 1)}  # fmt: skip
    write(args.out, "active_learning", result, md)
