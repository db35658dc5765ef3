"""register: log the trained model to MLflow and register it in the model registry.

The first registered version becomes ``champion``; later ones ``challenger``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from gbmseg import tracking
from gbmseg.config import RegisterParams, TrackingParams
from gbmseg.data.atomic import atomic_dir, write_json
from gbmseg.data.io import DataError

log = logging.getLogger(__name__)


def run(
    p: RegisterParams,
    tp: TrackingParams,
    model_dir: str | Path,
    metrics: str | Path,
    logger: tracking.RunLogger,
    tags: dict[str, str] | None = None,
) -> dict:
    model_dir, metrics = Path(model_dir), Path(metrics)
    weights = model_dir / "model.pt"
    if not weights.is_file():
        raise DataError(f"{weights}: no trained model; run `gbmseg train` first")
    if not metrics.is_file():
        raise DataError(f"{metrics}: no test metrics; run `gbmseg evaluate` first")
    scores = json.loads(metrics.read_text())
    example = np.random.default_rng(0).random((1, 1, 64, 64), dtype=np.float32)
    model_uri = logger.log_model(weights, example)
    all_tags = {
        **(tags or {}),
        **{f"test_{k}": v for k, v in scores.items()},
        "source_run_id": logger.run_id,
    }
    result = tracking.register(tp, model_uri, all_tags)
    logger.tags({"registered_version": result["version"], "alias": result["alias"]})
    with atomic_dir(p.out) as tmp:
        write_json(tmp / "registration.json", {**result, "tags": all_tags})
    log.info("register: %s v%s is now @%s", result["name"], result["version"], result["alias"])
    return result
