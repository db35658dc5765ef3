"""evaluate: score the fine-tuned model, and the from-scratch baseline beside it, on the
target's held-out test images (full size, tiled inference).

Records exactly which model it scored (path and sha256 of ``model.pt``, in
``scored_model.json``) so ``register`` logs that model and no other, and the test images by
pixel hash so the promotion can leave out any a model trained on.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from gbmseg import agreement
from gbmseg.config import EvaluateParams, MeasureParams
from gbmseg.data import plots
from gbmseg.data.atomic import atomic_dir, meta, sha256_file, write_json, write_text
from gbmseg.data.io import DataError
from gbmseg.engine.checkpoint import load_model
from gbmseg.inference import threshold_for
from gbmseg.runlog import RunLog
from gbmseg.scoring import Sweep, score_images

log = logging.getLogger(__name__)
COLUMNS = [
    "dice",
    "iou",
    "precision",
    "recall",
    "pixel_error",
    "boundary_f1",
    "hd95",
    "adapted_rand_error",
]


def test_images(packed: str | Path) -> tuple[list[str], list[str]]:
    """Names and pixel hashes of the packed set's test images."""
    path = Path(packed) / "manifest.json"
    if not path.is_file():
        raise DataError(f"{path}: missing; run `gbmseg pack` first")
    test = json.loads(path.read_text())["splits"]["test"]
    if not test["sources"]:
        raise DataError(
            f"{path}: no test image; add labelled images to the set's test/ folder, or "
            "set a row of its split file (pack.splits) to test"
        )
    return test["sources"], test["pixels_sha256"]


def sweep_plot(rows: list[dict], threshold: float) -> bytes:
    fig, ax = plots.figure(5.5, 3.5)
    t = [r["threshold"] for r in rows]
    for key in ("dice", "iou", "precision", "recall"):
        ax.plot(t, [r[key] for r in rows], label=key)
    ax.axvline(threshold, color="grey", ls="--", lw=1, label=f"threshold {threshold}")
    ax.set_xlabel("probability threshold")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower center")
    ax.set_title("held-out test images, pooled pixels", fontsize=9)
    return plots.png(fig)


def comparison_plot(table: pd.DataFrame) -> bytes:
    """Per test image: Dice of the fine-tuned model and of the from-scratch baseline."""
    fig, ax = plots.figure(6, 0.9 + 0.32 * len(table))
    y = range(len(table))
    ax.barh([i + 0.2 for i in y], table["dice"], 0.4, label="fine-tuned", color="tab:green")
    ax.barh([i - 0.2 for i in y], table["baseline_dice"], 0.4, label="scratch", color="tab:grey")
    ax.set_yticks(list(y), table["image"], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel("test Dice")
    ax.legend(fontsize=7, loc="lower right")
    return plots.png(fig)


def summarise(table: pd.DataFrame, sweep: list[dict], prefix: str = "") -> dict:
    out = {f"{prefix}{c}": round(float(table[c].mean()), 5) for c in COLUMNS}
    out[f"{prefix}dice_min"] = round(float(table["dice"].min()), 5)
    if sweep:
        best = max(sweep, key=lambda r: r["dice"])
        out["best_threshold"] = best["threshold"]
        out["best_threshold_dice"] = round(best["dice"], 5)
    return out


def run(
    p: EvaluateParams,
    model_dir: str | Path,
    validated: str | Path,
    packed: str | Path,
    *,
    baseline_dir: str | Path | None = None,
    run_log: RunLog | None = None,
    thickness: MeasureParams | None = None,
) -> dict:
    """Score ``model_dir`` (and ``baseline_dir``) on the packed set's test images; with
    ``thickness``, also how far the GBM thickness measured on each prediction is from the
    thickness measured on its label (``thickness_agreement.png``: Bland-Altman)."""
    validated, model_file = Path(validated), Path(model_dir) / "model.pt"
    names, hashes = test_images(packed)
    sweep = Sweep()
    with atomic_dir(p.out) as tmp:
        model = load_model(model_dir)
        threshold = threshold_for(model, p.threshold)
        rows = score_images(
            model, p, validated, names, tmp / "overlays", sweep, thickness=thickness
        )
        table = pd.DataFrame(rows).assign(pixels_sha256=hashes)
        summary = summarise(table, sweep.rows()) | {"threshold": threshold}
        if thickness is not None:
            summary |= {f"thickness_{k}": v for k, v in agreement.summary(table).items()}
            (tmp / "thickness_agreement.png").write_bytes(agreement.bland_altman(table))
        if baseline_dir:
            base = pd.DataFrame(score_images(load_model(baseline_dir), p, validated, names))
            table["baseline_dice"] = base["dice"].to_numpy()
            summary |= summarise(base, [], "baseline_")
            summary["dice_gain_over_baseline"] = round(
                summary["dice"] - summary["baseline_dice"], 5
            )
            (tmp / "comparison.png").write_bytes(comparison_plot(table))
        write_text(tmp / "per_image.csv", table.to_csv(index=False, float_format="%.5f"))
        sweep_csv = pd.DataFrame(sweep.rows()).to_csv(index=False, float_format="%.5f")
        write_text(tmp / "threshold_sweep.csv", sweep_csv)
        (tmp / "threshold_sweep.png").write_bytes(sweep_plot(sweep.rows(), threshold))
        scored = {"path": str(model_dir), "sha256": sha256_file(model_file), "test_images": names}
        write_json(tmp / "scored_model.json", scored)
        inputs = {
            "model": str(model_dir),
            "baseline": str(baseline_dir or ""),
            "packed": str(packed),
        }
        write_json(tmp / "_meta.json", meta("evaluate", p.model_dump(mode="json"), inputs))
    summary |= {"n_images": len(rows), "model_sha256": scored["sha256"]}
    write_json(p.metrics, summary)
    if run_log:
        run_log.metrics({f"test_{k}": v for k, v in summary.items() if k != "model_sha256"})
        run_log.artifact(p.out, "evaluate")
    log.info(
        "evaluate: Dice %.4f (scratch baseline %s) on %d held-out images -> %s",
        summary["dice"],
        summary.get("baseline_dice", "not scored"),
        len(rows),
        p.metrics,
    )
    return summary
