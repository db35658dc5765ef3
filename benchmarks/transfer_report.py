"""The transfer study's outputs: JSON, a Markdown table of Dice (IoU) per strategy and k,
and the Dice-vs-k plot; re-running some cells replaces just those in an earlier JSON."""

from __future__ import annotations

import logging
from pathlib import Path

from benchmarks.common import table, write

log = logging.getLogger("benchmarks.transfer")


def plot(cells: list[dict], path: Path, title: str) -> None:
    from gbmseg.data import plots

    fig, ax = plots.figure(5.5, 3.4)
    for s in dict.fromkeys(c["strategy"] for c in cells):
        mine = [c for c in cells if c["strategy"] == s]
        ax.plot([c["k"] for c in mine], [c["dice"] for c in mine], "o-", label=s)
    ax.set_xticks(sorted({c["k"] for c in cells}))
    ax.set_xlabel("labelled target images (k)")
    ax.set_ylabel("test Dice")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    path.write_bytes(plots.png(fig))


def replace_cells(old: dict, new: dict) -> dict:
    """``old`` with its (strategy, k) cells replaced by ``new``'s, e.g. after a change of
    finetune.auto: only the auto cells need re-running; the change is recorded."""
    mine = {(c["strategy"], c["k"]) for c in new["cells"]}
    kept = [c for c in old["cells"] if (c["strategy"], c["k"]) not in mine]
    order = list(dict.fromkeys(c["strategy"] for c in old["cells"] + new["cells"]))
    cells = sorted(kept + new["cells"], key=lambda c: (c["k"], order.index(c["strategy"])))
    redo = {"cells": sorted(mine), "auto_params": new["auto_params"], "settings": new["settings"]}
    history = [*old.get("replaced", []), redo]
    return {**old, "auto_params": new["auto_params"], "cells": cells, "replaced": history}


def report(res: dict, out: Path) -> None:
    """transfer_<target>.json/.md (Dice (IoU) per strategy and k) and the Dice-vs-k plot."""
    cells, source, target = res["cells"], Path(res["source"]).name, Path(res["target"]).name
    counts = sorted({c["k"] for c in cells})
    strategies = list(dict.fromkeys(c["strategy"] for c in cells))
    name = f"transfer_{target}"
    md = f"Transfer {source} -> {target}: mean test Dice (IoU) over "
    md += f"{len(res['test_images'])} images, {res['settings']['steps']} steps per cell\n\n"
    grid = []
    for s in strategies:
        row = {"strategy": s}
        for c in (c for c in cells if c["strategy"] == s):
            row[f"k={c['k']}"] = f"{c['dice']:.3f} ({c['iou']:.3f})" + (
                f" -> {c['chosen']}" if s == "auto" else ""
            )
        grid.append(row)
    md += table(grid, ["strategy", *[f"k={k}" for k in counts]])
    for redo in res.get("replaced", []):
        which = ", ".join(f"{s} k={k}" for s, k in redo["cells"])
        md += f"\nRe-run later with the finetune.auto then in params.yaml: {which}\n"
    out.mkdir(parents=True, exist_ok=True)
    write(out, name, res, md)
    try:
        plot(cells, out / f"{name}.png", f"{source} -> {target}")
    except ImportError as exc:  # a bare GPU node without matplotlib: redraw with --plot-only
        log.warning("no plot (%s); run --plot-only %s", exc, out / f"{name}.json")
