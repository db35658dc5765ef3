"""register: log the model to MLflow, register it as ``challenger``, and promote it to
``champion`` only when it is better than the current champion on the same test images.

The comparison scores the champion afresh on the test images the challenger was evaluated
on and runs a paired bootstrap over per-image Dice (``gbmseg.promotion``), under a lock so
that two promotions never both win.  The first valid model becomes champion.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gbmseg import promotion, tracking
from gbmseg.config import EvaluateParams, RegisterParams, TrackingParams
from gbmseg.data.atomic import atomic_dir, sha256_file, write_json
from gbmseg.data.io import DataError
from gbmseg.engine.checkpoint import CheckpointError, load_model
from gbmseg.steps.evaluate import score_images

log = logging.getLogger(__name__)


def _inputs(model_dir: Path, metrics: Path, per_image: Path) -> tuple[dict, pd.DataFrame]:
    if not (model_dir / "model.pt").is_file():
        raise DataError(f"{model_dir / 'model.pt'}: no trained model; run `gbmseg train` first")
    for path in (metrics, per_image):
        if not path.is_file():
            raise DataError(f"{path}: no test scores; run `gbmseg evaluate` first")
    load_model(model_dir)  # refuse a candidate whose weights do not load
    return json.loads(metrics.read_text()), pd.read_csv(per_image)


def decide(
    p: RegisterParams,
    tp: TrackingParams,
    ep: EvaluateParams,
    challenger: pd.DataFrame,
    validated: Path,
) -> dict:
    """Compare with the current champion (read now, inside the lock)."""
    champion = tracking.alias_version(tp.model_name, "champion")
    if champion is None:
        return {
            "promote": True,
            "reason": "no champion yet: the first valid model becomes champion",
        }
    try:
        model = load_model(tracking.download_weights(f"models:/{tp.model_name}@champion"))
    except (CheckpointError, tracking.MlflowException, OSError) as exc:
        return {
            "promote": True,
            "champion_version": champion,
            "reason": f"champion v{champion} cannot be loaded ({exc}); replacing it",
        }
    names = challenger["image"].tolist()
    old = pd.DataFrame(score_images(model, ep, validated, names))
    res = promotion.paired_bootstrap(
        old["dice"].to_numpy(),
        challenger["dice"].to_numpy(),
        p.min_delta,
        p.confidence,
        p.bootstrap,
        p.seed,
    )
    return {**res, "champion_version": champion}


def run(
    p: RegisterParams,
    tp: TrackingParams,
    ep: EvaluateParams,
    model_dir: str | Path,
    validated: str | Path,
    logger: tracking.RunLogger,
    tags: dict[str, str] | None = None,
) -> dict:
    model_dir, validated = Path(model_dir), Path(validated)
    scores, per_image = _inputs(model_dir, Path(ep.metrics), Path(ep.out) / "per_image.csv")
    example = np.random.default_rng(0).random((1, 1, 64, 64), dtype=np.float32)
    model_uri = logger.log_model(model_dir / "model.pt", example)
    all_tags = {
        **(tags or {}),
        **{f"test_{k}": v for k, v in scores.items()},
        "source_run_id": logger.run_id,
    }
    version = tracking.register_version(tp, model_uri, all_tags)
    tracking.verify_version(tp.model_name, version, sha256_file(model_dir / "model.pt"))
    tracking.set_alias(tp.model_name, "challenger", version)
    with promotion.lock(p.lock, tracking.tracking_uri(), tp.model_name):
        decision = decide(p, tp, ep, per_image, validated)
        if decision["promote"]:
            tracking.set_alias(tp.model_name, "champion", version)
    tracking.tag_version(tp.model_name, version, {f"promotion.{k}": v for k, v in decision.items()})
    alias = "champion" if decision["promote"] else "challenger"
    result = {
        "name": tp.model_name,
        "version": version,
        "alias": alias,
        "model_uri": model_uri,
        "decision": decision,
        "tags": all_tags,
    }
    logger.tags({"registered_version": version, "alias": alias, "promoted": decision["promote"]})
    with atomic_dir(p.out) as tmp:
        write_json(tmp / "registration.json", result)
    log.info("register: %s v%s -> @%s (%s)", tp.model_name, version, alias, decision["reason"])
    return result
