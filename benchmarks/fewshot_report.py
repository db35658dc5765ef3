"""Tables of the few-label study (benchmarks/fewshot.py): per lever or strategy, the mean
Dice over seeds with its spread, written beside the study's JSON as Markdown."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.common import table


def summarise(cells: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for c in cells:
        groups[(c["target"], c["on"], c["k"], c["label"])].append(c)
    rows = []
    for (target, on, k, label), cs in sorted(groups.items()):
        dice = np.array([c["dice"] for c in cs])
        rows.append(
            {
                "target": target,
                "scored_on": on,
                "k": "all" if k == 0 else k,
                "config": label,
                "seeds": len(cs),
                "dice_mean": round(float(dice.mean()), 4),
                "dice_sd": round(float(dice.std(ddof=1)), 4) if len(cs) > 1 else 0.0,
                "picked": ",".join(sorted({c["strategy"] for c in cs})),
                "train_min": round(float(np.mean([c["train_seconds"] for c in cs])) / 60, 1),
            }
        )
    return rows


def report(path: Path) -> str:
    doc = json.loads(Path(path).read_text())
    rows = summarise(doc["cells"])
    m = doc["machine"]
    where = m["cuda"] or f"{m['cpu']}, {m['cores']} cores, AMX {m['cpu_amx']}"
    md = (
        f"# Few labels, new domain ({where}, torch {m['torch']})\n\n"
        "Mean Dice over seeds (sd: their spread); seeds differ in the labelled images and\n"
        "the initialisation. `scored_on`: dev = development images (every choice is made\n"
        "there), test = test images no choice saw. `picked`: the strategy used (auto's\n"
        "choice for `auto`). `train_min`: wall-clock minutes per cell, scoring excluded.\n\n"
        + table(rows, list(rows[0]))
    )
    if "choice" in doc:
        why = doc["choice"]
        md += (
            f"\nChosen on the development images: start `{why['start']}`, levers kept (mean "
            f"gain >= {why['min_gain']}): {', '.join(why['kept']) or 'none'}.\n"
        )
    Path(path).with_suffix(".md").write_text(md)
    return md
