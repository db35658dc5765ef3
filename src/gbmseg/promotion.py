"""Promotion rule and lock: a challenger replaces the champion only when a paired bootstrap
over per-image Dice on the same test images says it is better and its thickness agrees with
the labels no worse than the champion's (``thickness_guard``), and only one promotion runs at
a time (MLflow aliases are last-writer-wins)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

log = logging.getLogger(__name__)


def paired_bootstrap(
    champion: np.ndarray,
    challenger: np.ndarray,
    min_delta: float,
    confidence: float,
    n: int,
    seed: int,
) -> dict:
    """Decide on per-image scores of the same images, in the same order."""
    a, b = np.asarray(champion, float), np.asarray(challenger, float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need paired scores of the same images, got {a.shape} and {b.shape}")
    delta = b - a
    rng = np.random.default_rng(seed)
    boot = delta[rng.integers(0, delta.size, size=(n, delta.size))].mean(axis=1)
    lower = float(np.quantile(boot, 1 - confidence))
    better = lower > min_delta
    return {
        "images": int(delta.size),
        "champion_dice": round(float(a.mean()), 5),
        "challenger_dice": round(float(b.mean()), 5),
        "mean_delta": round(float(delta.mean()), 5),
        "delta_lower_bound": round(lower, 5),
        "confidence": confidence,
        "min_delta": min_delta,
        "p_better": round(float((boot > min_delta).mean()), 4),
        "promote": bool(better),
        "reason": (
            f"challenger better: the {confidence:.0%} lower bound of the Dice gain, "
            f"{lower:+.4f}, exceeds min_delta {min_delta}"
        )
        if better
        else (
            f"not promoted: the {confidence:.0%} lower bound of the Dice gain, {lower:+.4f}, "
            f"does not exceed min_delta {min_delta}"
        ),
    }


THICKNESS = "medial_median_nm_rel_diff"  # per image: (predicted - labelled) / labelled


def thickness_guard(champion: np.ndarray, challenger: np.ndarray, tolerance: float) -> dict | None:
    """Refusal (a decision dict) when the challenger's mean |relative thickness difference|
    on the same images is worse than the champion's by more than ``tolerance``; None when it
    is not (or when either has no figure: images without a measurable membrane)."""
    a, b = np.abs(np.asarray(champion, float)), np.abs(np.asarray(challenger, float))
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        return None
    old, new = float(a[ok].mean()), float(b[ok].mean())
    figures = {
        "champion_thickness_mean_abs_rel_diff": round(old, 4),
        "challenger_thickness_mean_abs_rel_diff": round(new, 4),
        "thickness_tolerance": tolerance,
    }
    if new <= old + tolerance:
        return None
    return figures | {
        "promote": False,
        "reason": (
            f"not promoted: its GBM thickness agrees worse with the labels than the champion's "
            f"(mean |relative difference| of the medial thickness {new:.1%} vs {old:.1%} on "
            f"{int(ok.sum())} images, beyond register.thickness_tolerance = {tolerance:g}), "
            "whatever its Dice"
        ),
    }


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _pg_lock(uri: str, key: str) -> Iterator[None]:
    import psycopg2

    lock_id = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    conn = psycopg2.connect(uri.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (lock_id,))
        yield
    finally:
        with contextlib.suppress(Exception), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (lock_id,))
        conn.close()


def lock(spec: str, tracking_uri: str, model_name: str) -> contextlib.AbstractContextManager:
    """The promotion lock: ``spec`` (a postgresql:// URI or a file path) or one derived from a
    local tracking store; a remote server needs an explicit ``register.lock``."""
    target = spec or tracking_uri
    scheme = urlparse(target).scheme
    if scheme.startswith("postgresql"):
        return _pg_lock(target, f"gbmseg-promote:{model_name}")
    if scheme == "sqlite":
        return _file_lock(Path(target[len("sqlite:///") :]).with_suffix(".promote.lock"))
    if scheme in ("", "file"):
        return _file_lock(Path(urlparse(target).path or target) / f".{model_name}.promote.lock")
    raise ValueError(
        f"tracking store {tracking_uri!r} is remote: set register.lock to the registry's "
        "postgresql:// URI or to a lock file on storage every promoter shares"
    )
