"""evaluate: score a model on the held-out test images (full size, tiled inference)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from gbmseg import metrics as M
from gbmseg.config import EvaluateParams
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


def score_images(model, p: EvaluateParams, folder: Path, names: list[str], overlays: Path | None):
    """Per-image score rows; writes TP/FP/FN overlays for the first ``max_overlays``."""
    prec = resolve("auto", "auto")
    model.to(prec.device)
    rows = []
    for i, name in enumerate(tqdm(names, desc="evaluate", unit="img", disable=None)):
        img = read_image(folder / "images" / name)
        truth = read_raw(folder / "masks" / name).astype(bool)
        pred = predict_proba(model, img, prec, p.tile, p.overlap) > p.threshold
        rows.append(
            {"image": name, **M.scores(truth, pred), "positive_fraction": float(truth.mean())}
        )
        if overlays is not None and i < p.max_overlays:
            write_png(overlays / name, error_overlay(img, truth, pred))
    return rows


def run(
    p: EvaluateParams, model_dir: str | Path, validated: str | Path, packed: str | Path, logger=None
) -> dict:
    validated = Path(validated)
    names = test_names(packed)
    model = load_model(model_dir)
    with atomic_dir(p.out) as tmp:
        rows = score_images(model, p, validated, names, tmp / "overlays")
        table = pd.DataFrame(rows)
        buf = io.StringIO()
        table.to_csv(buf, index=False, float_format="%.5f")
        write_text(tmp / "per_image.csv", buf.getvalue())
        write_json(
            tmp / "_meta.json",
            meta(
                "evaluate",
                p.model_dump(mode="json"),
                {"model": str(model_dir), "packed": str(packed)},
            ),
        )
    cols = ["dice", "iou", "precision", "recall", "pixel_error", "boundary_f1"]
    summary = {c: round(float(table[c].mean()), 5) for c in cols}
    summary["dice_min"] = round(float(table["dice"].min()), 5)
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
