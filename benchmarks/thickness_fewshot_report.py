"""Tables of ``benchmarks.thickness_fewshot``: test figures per configuration (mean +- sd over
seeds) and the lever screen on development figures, with the rule that decides it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def dev_figures(work: Path, cell: str) -> dict:
    """What the fine-tuning saw on its validation tiles (the strips held out of the 2
    labelled images; never a test image): the levers are judged on these."""
    folder = work / "cells" / cell
    if not (folder / "finetune.json").is_file():
        return {}
    tuned = json.loads((folder / "finetune.json").read_text())
    chosen_path = folder / "finetune" / "threshold.json"
    chosen = json.loads(chosen_path.read_text()) if chosen_path.is_file() else {}
    half = chosen.get("at_0.5", {})
    return {
        "val_dice": tuned.get("best_val_dice"),
        "val_threshold": chosen.get("threshold"),
        "val_thickness_err": chosen.get("val_thickness_err"),
        "val_thickness_bias": chosen.get("val_thickness_bias"),
        "val_thickness_bias_at_0.5": half.get("thickness_bias"),
        "val_thickness_err_at_0.5": half.get("thickness_err"),
        "val_membrane_px": chosen.get("val_membrane_px"),
    }


RULE = (
    "a lever replaces the default when, on the validation images (same seed), its thickness "
    "error at its chosen threshold is at least 10% lower than the defaults' and its validation "
    "Dice at most 0.005 lower; decided on these figures alone, before any test score is read"
)


def verdict(lever: dict, default: dict) -> str:
    """``RULE`` applied to two rows of development figures."""
    try:
        better = lever["val_thickness_err"] <= 0.9 * default["val_thickness_err"]
        kept = lever["val_dice"] >= default["val_dice"] - 0.005
    except (KeyError, TypeError):
        return "no figures"
    return "adopt" if better and kept else "keep default"


def lever_table(work: Path, cells: dict[str, dict], levers: list[str]) -> list[dict]:
    """The screen: every configuration's development figures, seed by seed, and ``RULE``'s
    verdict for each lever against the defaults of its seed."""
    rows = []
    for name, cell in sorted(cells.items()):
        if cell["config"] in ("after@0.5",):
            continue
        rows.append({"cell": name, "config": cell["config"], "seed": cell["seed"],
                     **dev_figures(work, name)})  # fmt: skip
    base = {r["seed"]: r for r in rows if r["config"] == "defaults"}
    for r in rows:
        if r["config"] in levers and r["seed"] in base:
            r["verdict"] = verdict(r, base[r["seed"]])
    return rows


def summary(cells: dict[str, dict], levers: list[str]) -> list[dict]:
    keys = ("dice", "slope", "mean_abs_rel_diff", "bias_nm", "band_rel_diff", "threshold")
    rows = []
    for config in ("before", "after@0.5", "after", "defaults", *levers):
        sel = [c for c in cells.values() if c["config"] == config]
        if not sel:
            continue
        row: dict = {"config": config, "seeds": len(sel)}
        for k in keys:
            v = np.array([c[k] for c in sel if c.get(k) is not None], float)
            row[k] = f"{v.mean():.3f} +- {v.std(ddof=1) if len(v) > 1 else 0:.3f}" if len(v) else ""
        rows.append(row)
    return rows
