"""register: log the model evaluate scored to MLflow, register it as ``challenger``, and
promote it to ``champion`` only when it is better than the current champion.

* Exactly what was evaluated: the model's sha256 must equal the one in evaluate's
  ``scored_model.json``, or nothing is registered.
* Idempotent: a version whose ``model_sha256`` tag matches is reused, so a re-run after a
  crash finishes the job without a second version of the same model.
* Fair comparison: the champion is scored afresh on the challenger's test images, leaving
  out every image either model saw (``trained_on.json``: their training and validation
  images and those of the models they started from); a paired bootstrap over per-image
  Dice decides (``gbmseg.promotion``), under a lock so two promotions never both win.
* Few test images (< ``min_test_images``) or a champion that cannot be loaded: registered,
  not promoted, the reason recorded (``replace_broken_champion`` to override the latter).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from gbmseg import promotion, tracking
from gbmseg.config import EvaluateParams, MeasureParams, RegisterParams, TrackingParams
from gbmseg.data.atomic import atomic_dir, sha256_file, write_json
from gbmseg.data.io import DataError
from gbmseg.engine.checkpoint import CheckpointError, load_model
from gbmseg.engine.lifecycle import read_trained_on
from gbmseg.scoring import score_images

log = logging.getLogger(__name__)


def scored_model(ep: EvaluateParams, model_dir: str | Path | None) -> tuple[Path, dict]:
    """The model folder evaluate scored, checked against ``model_dir`` and its file now."""
    path = Path(ep.out) / "scored_model.json"
    if not path.is_file():
        raise DataError(f"{path}: no record of an evaluated model; run `gbmseg evaluate` first")
    scored = json.loads(path.read_text())
    folder = Path(model_dir or scored["path"])
    weights = folder / "model.pt"
    if not weights.is_file():
        raise DataError(f"{weights}: no model to register; run `gbmseg finetune` first")
    now = sha256_file(weights)
    if now != scored["sha256"]:
        raise DataError(
            f"{weights} (sha256 {now[:12]}) is not the model evaluate scored ({scored['path']}, "
            f"sha256 {scored['sha256'][:12]}); nothing registered. Run `gbmseg evaluate` on "
            "this model first (dvc repro does both)"
        )
    load_model(folder)  # refuse a candidate whose weights do not load
    return folder, scored


def load_champion(tracking_p: TrackingParams, version: str):
    """(model, images it saw) of the champion, or the reason it cannot be loaded."""
    try:
        with tracking.downloaded(f"models:/{tracking_p.model_name}/{version}") as folder:
            return load_model(folder), set(read_trained_on(folder)), None
    except (CheckpointError, tracking.MlflowException, OSError) as exc:
        return None, set(), f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


def decide(
    p: RegisterParams,
    tracking_p: TrackingParams,
    ep: EvaluateParams,
    table: pd.DataFrame,
    *,
    seen: set[str],
    validated: Path,
    thickness: MeasureParams | None = None,
    version: str | None = None,
) -> dict:
    """Compare with the current champion (read now, inside the lock): Dice by a paired
    bootstrap, then, when evaluate measured thickness (``thickness``), the thickness guard.
    ``version`` (the challenger's) already @champion: a concurrent registration of the same
    weights promoted it; nothing is decided (or overwritten)."""
    champion = tracking.alias_version(tracking_p.model_name, "champion")
    if champion is not None and champion == version:
        return {
            "promote": False,
            "already_champion": True,
            "champion_version": champion,
            "reason": f"v{version} is already @champion (promoted by a concurrent registration "
            "of the same weights): nothing to decide",
        }
    if champion is None:
        return {
            "promote": True,
            "reason": "no champion yet: the first valid model becomes champion",
        }
    model, champion_seen, broken = load_champion(tracking_p, champion)
    if broken:
        promote = p.replace_broken_champion
        action = (
            "replaced (register.replace_broken_champion)"
            if promote
            else (
                "kept; fix the registry, or set register.replace_broken_champion: true "
                "to replace it"
            )
        )
        reason = f"champion v{champion} cannot be loaded ({broken}): {action}"
        return {"promote": promote, "champion_version": champion, "reason": reason}
    usable = table[~table["pixels_sha256"].isin(seen | champion_seen)]
    if len(usable) < p.min_test_images:
        return {
            "promote": False,
            "champion_version": champion,
            "images": len(usable),
            "reason": f"not promoted: {len(usable)} of {len(table)} test image(s) were seen by "
            f"neither model, fewer than register.min_test_images = {p.min_test_images}; "
            "add labelled test images",
        }
    measured = promotion.THICKNESS in usable
    old = pd.DataFrame(
        score_images(model, ep, validated, usable["image"].tolist(), desc="champion",
                     thickness=thickness if measured else None)
    )  # fmt: skip
    res = promotion.paired_bootstrap(
        old["dice"].to_numpy(),
        usable["dice"].to_numpy(),
        p.min_delta,
        p.confidence,
        p.bootstrap,
        p.seed,
    )
    left_out = len(table) - len(usable)
    res |= {"champion_version": champion, "test_images_left_out": left_out}
    if measured and thickness is not None:
        refused = promotion.thickness_guard(
            old[promotion.THICKNESS].to_numpy(float),
            usable[promotion.THICKNESS].to_numpy(float),
            p.thickness_tolerance,
        )
        if refused and res["promote"]:
            res |= refused
        elif not refused:
            res["thickness_checked"] = True
    return res


def trained_pixel_size(folder: Path) -> float | None:
    """The pixel size the model was trained at, as its folder records it."""
    path = Path(folder) / "trained_on.json"
    return json.loads(path.read_text()).get("pixel_size_nm") if path.is_file() else None


def run(
    p: RegisterParams,
    tracking_p: TrackingParams,
    ep: EvaluateParams,
    validated: str | Path,
    *,
    run_log: tracking.RunLogger,
    model_dir: str | Path | None = None,
    tags: dict[str, str] | None = None,
    thickness: MeasureParams | None = None,
) -> dict:
    """Register the model evaluate scored (``model_dir``, when given, must be it)."""
    folder, scored = scored_model(ep, model_dir)
    scores = json.loads(Path(ep.metrics).read_text())
    table = pd.read_csv(Path(ep.out) / "per_image.csv")
    seen = set(read_trained_on(folder))
    all_tags = {
        **(tags or {}),
        **{f"test_{k}": v for k, v in scores.items() if k != "model_sha256"},
        "model_sha256": scored["sha256"],
        "trained_on_images": len(seen),
        "source_run_id": run_log.run_id,
        "pixel_size_nm": trained_pixel_size(folder) or "unknown",
    }
    version = tracking.find_version(tracking_p.model_name, scored["sha256"])
    if version is None:
        example = np.random.default_rng(0).random((1, 1, 64, 64), dtype=np.float32)
        logged = run_log.log_model(folder, example)
        version = tracking.register_version(tracking_p, logged, all_tags)
    else:
        log.info(
            "register: %s v%s already holds this model; reusing it", tracking_p.model_name, version
        )
    tracking.verify_version(tracking_p.model_name, version, scored["sha256"])
    tracking.set_alias(tracking_p.model_name, "challenger", version)
    with promotion.lock(p.lock, tracking.tracking_uri(), tracking_p.model_name):
        decision = decide(
            p, tracking_p, ep, table, seen=seen, validated=Path(validated), thickness=thickness,
            version=version,
        )  # fmt: skip
        if decision["promote"]:
            tracking.set_alias(tracking_p.model_name, "champion", version)
        if not decision.get("already_champion"):  # the promoting run's record stays
            tracking.tag_version(
                tracking_p.model_name, version, {f"promotion.{k}": v for k, v in decision.items()}
            )
    champion = decision["promote"] or decision.get("already_champion")
    alias = "champion" if champion else "challenger"
    result = {
        "name": tracking_p.model_name,
        "version": version,
        "alias": alias,
        "model": str(folder),
        "model_sha256": scored["sha256"],
        "decision": decision,
        "tags": all_tags,
    }
    run_log.tags({"registered_version": version, "alias": alias, "promoted": decision["promote"]})
    with atomic_dir(p.out) as tmp:
        write_json(tmp / "registration.json", result)
    log.info(
        "register: %s v%s -> @%s (%s)", tracking_p.model_name, version, alias, decision["reason"]
    )
    return result
