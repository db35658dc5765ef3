"""The size-axis study's table (benchmarks/size_axis.py), written beside its JSON: per arm the
labelled amount in each candidate unit, ``decoder`` and ``full`` Dice, and the gap paired by
seed; then which unit's equal-amount arms agree."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks.common import table

UNITS = ("images", "megapixels", "structure_megapixels", "tiles")


def _ms(values: list[float]) -> str:
    a = np.asarray(values, float)
    sd = a.std(ddof=1) if len(a) > 1 else 0.0
    return f"{a.mean():.3f} +- {sd:.3f}"


def gaps(cells: list[dict]) -> dict[str, dict[int, float]]:
    """arm -> seed -> full Dice - decoder Dice (seeds with both cells)."""
    by = defaultdict(dict)
    for c in cells:
        by[(c["arm"], c["seed"])][c["strategy"]] = c["dice"]
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for (arm, seed), d in by.items():
        if {"decoder", "full"} <= d.keys():
            out[arm][seed] = d["full"] - d["decoder"]
    return out


def rows(cells: list[dict]) -> list[dict]:
    g = gaps(cells)
    out = []
    for arm in dict.fromkeys(c["arm"] for c in cells):  # the order the study ran them
        cs = [c for c in cells if c["arm"] == arm]
        row = {"arm": arm}
        for u in UNITS:
            row[u] = round(float(np.mean([c[u] for c in cs])), 3)
        for s in ("decoder", "full"):
            row[s] = _ms([c["dice"] for c in cs if c["strategy"] == s])
        row["full - decoder"] = _ms(list(g[arm].values())) if g[arm] else ""
        row["seeds"] = len(g[arm])
        row["train_min"] = round(float(np.mean([c["train_seconds"] for c in cs])) / 60, 1)
        out.append(row)
    return out


def agreement(cells: list[dict]) -> list[dict]:
    """For each unit: between arms the unit calls equal (within 20%) and between arms it calls
    different, the mean |difference| of the ``full - decoder`` gap and of ``full``'s Dice.
    A unit that measures what the labels are worth has both small for its equal pairs."""
    g = {a: float(np.mean(list(s.values()))) for a, s in gaps(cells).items() if s}
    full = {
        a: np.mean([c["dice"] for c in cells if c["arm"] == a and c["strategy"] == "full"])
        for a in g
    }
    amount = {a: {u: np.mean([c[u] for c in cells if c["arm"] == a]) for u in UNITS} for a in g}
    out = []
    for u in UNITS:
        pairs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        arms = sorted(g)
        for i, a in enumerate(arms):
            for b in arms[i + 1 :]:
                x, y = amount[a][u], amount[b][u]
                equal = abs(x - y) <= 0.2 * max(x, y)
                pairs[equal].append((abs(g[a] - g[b]), abs(full[a] - full[b])))
        row = {"unit": u, "equal pairs": len(pairs[True])}
        for equal, label in ((True, "equal"), (False, "unequal")):
            d = np.array(pairs[equal]).reshape(-1, 2)
            row[f"gap diff, {label}"] = round(float(d[:, 0].mean()), 4) if len(d) else ""
            row[f"full Dice diff, {label}"] = round(float(d[:, 1].mean()), 4) if len(d) else ""
        out.append(row)
    return out


def report(path: Path) -> str:
    doc = json.loads(Path(path).read_text())
    m, a = doc["machine"], doc["args"]
    where = m["cuda"] or f"{m['cpu']}, {m['cores']} cores, AMX {m['cpu_amx']}"
    md = (
        f"# What the size axis should count ({where}, torch {m['torch']})\n\n"
        f"Target {a['target']}, start {doc['start']['path']} (sha256 "
        f"{doc['start']['sha256'][:12]}), {a['steps']} optimiser steps of 8 tiles of "
        f"{a['tile']} px per cell, crops of {a['crop']} px; mean +- sd over seeds "
        f"{a['seeds']}; Dice on the development images (a choice: no test image).\n\n"
        + table(
            rows(doc["cells"]),
            ["arm", *UNITS, "decoder", "full", "full - decoder", "seeds", "train_min"],
        )
        + "\nPer candidate unit: arms it calls equal (within 20%) vs arms it calls different,\n"
        "mean |difference| of the gap and of `full`'s Dice. The unit that counts what the\n"
        "labels are worth has small differences between the arms it calls equal:\n\n"
        + table(agreement(doc["cells"]), list(agreement(doc["cells"])[0]))
    )
    Path(path).with_suffix(".md").write_text(md)
    return md
