"""evaluate: score a model on the held-out test images (full size, tiled inference)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from gbmseg import metrics as M
from gbmseg.config import EvaluateParams
from gbmseg.data import plots
from gbmseg.data.atomic import atomic_dir, meta, write_json, write_text
from gbmseg.data.io import DataError, read_image, read_raw, write_png
from gbmseg.data.preview import error_overlay
from gbmseg.engine.amp import resolve
from gbmseg.engine.checkpoint import load_model
from gbmseg.inference import predict_proba

log = logging.getLogger(__name__)


def test_names(packed: str | Path) -> list[str]:
    path = Path(packed) / "manifest.json"
    if not path.is_file():
        raise DataError(f"{path}: missing; run `gbmseg pack` first")
    names = json.loads(path.read_text())["splits"]["test"]["sources"]
    if not names:
        raise DataError(f"{path}: the test split is empty; raise pack.test_fraction")
    return names


def score_images(
    model,
    p: EvaluateParams,
    folder: Path,
    names: list[str],
    overlays: Path | None = None,
    sweep: list | None = None,
) -> list[dict]:
    """Per-image score rows; TP/FP/FN overlays for the first ``max_overlays``; with ``sweep``
    a list, the pooled threshold sweep rows are appended to it."""
    prec = resolve("auto", "auto")
    model.to(prec.device)
    rows, truths, probs = [], [], []
    for i, name in enumerate(tqdm(names, desc="evaluate", unit="img", disable=None)):
        img = read_image(folder / "images" / name)
        truth = read_raw(folder / "masks" / name).astype(bool)
        prob = predict_proba(model, img, prec, p.tile, p.overlap)
        pred = prob > p.threshold
        rows.append(
            {"image": name, **M.scores(truth, pred), "positive_fraction": float(truth.mean())}
        )
        if overlays is not None and i < p.max_overlays:
            write_png(overlays / name, error_overlay(img, truth, pred))
        if sweep is not None:
            truths.append(truth)
            probs.append(prob.astype(np.float16))
    if sweep is not None:
        sweep += M.sweep(truths, probs, np.round(np.arange(0.05, 0.96, 0.05), 2))
    return rows


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


def run(
    p: EvaluateParams, model_dir: str | Path, validated: str | Path, packed: str | Path, logger=None
) -> dict:
    validated = Path(validated)
    names = test_names(packed)
    model = load_model(model_dir)
    sweep: list[dict] = []
    with atomic_dir(p.out) as tmp:
        rows = score_images(model, p, validated, names, tmp / "overlays", sweep)
        table = pd.DataFrame(rows)
        write_text(tmp / "per_image.csv", table.to_csv(index=False, float_format="%.5f"))
        write_text(
            tmp / "threshold_sweep.csv",
            pd.DataFrame(sweep).to_csv(index=False, float_format="%.5f"),
        )
        (tmp / "threshold_sweep.png").write_bytes(sweep_plot(sweep, p.threshold))
        write_json(
            tmp / "_meta.json",
            meta(
                "evaluate",
                p.model_dump(mode="json"),
                {"model": str(model_dir), "packed": str(packed)},
            ),
        )
    cols = [
        "dice",
        "iou",
        "precision",
        "recall",
        "pixel_error",
        "boundary_f1",
        "hd95",
        "adapted_rand_error",
    ]
    summary = {c: round(float(table[c].mean()), 5) for c in cols}
    summary["dice_min"] = round(float(table["dice"].min()), 5)
    best = max(sweep, key=lambda r: r["dice"])
    summary["best_threshold"], summary["best_threshold_dice"] = (
        best["threshold"],
        round(best["dice"], 5),
    )
    summary["n_images"] = len(rows)
    write_json(p.metrics, summary)
    if logger:
        logger.metrics({f"test_{k}": v for k, v in summary.items()})
        logger.artifact(p.out, "evaluate")
    log.info(
        "evaluate: Dice %.4f IoU %.4f on %d held-out images -> %s",
        summary["dice"],
        summary["iou"],
        len(rows),
        p.metrics,
    )
    return summary
