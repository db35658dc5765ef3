"""Shared fixtures: the project's own params.yaml, tiny synthetic data, real EM data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gbmseg.config import Params, load

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GBMSEG_SHARED_DATA", ROOT.parent / "shared" / "data"))

TINY = [
    "synth.source_images=8",
    "synth.target_images=5",
    "synth.target_test_images=3",
    "synth.size=64",
    "validate.min_images=1",
    "augment.copies=1",
    "pack.tile=64",
    "pack.stride=64",
    "pack.val_fraction=0.2",
    "pack.test_fraction=0.25",
    "train.model.depth=2",
    "train.model.base=4",
    "train.epochs=2",
    "train.batch_size=4",
    "train.max_minutes=0",
    "train.amp=fp32",
    "finetune.epochs=2",
    "evaluate.tile=64",
    "register.min_test_images=2",
]


def params(*overrides: str) -> Params:
    return load(ROOT / "params.yaml", list(overrides))


def tiny(tmp: Path, *overrides: str) -> Params:
    """Tiny configuration with every path inside ``tmp``."""
    paths = [
        f"sets.source.raw={tmp}/raw/source",
        f"sets.target.raw={tmp}/raw/target",
        f"validate.out={tmp}/validated",
        f"augment.out={tmp}/augmented",
        f"pack.out={tmp}/packed",
        f"pack.splits={tmp}/splits",
        f"train.out={tmp}/models/train",
        f"train.metrics={tmp}/metrics/train",
        f"train.history={tmp}/reports/train",
        f"train.checkpoints={tmp}/checkpoints",
        f"resolve.out={tmp}/models/pretrained",
        f"finetune.out={tmp}/models/finetune",
        f"finetune.metrics={tmp}/metrics/finetune.json",
        f"finetune.history={tmp}/reports/finetune.csv",
        f"finetune.pretrained={tmp}/models/train/source",
        f"selfsup.metrics={tmp}/metrics/selfsup",
        f"selfsup.history={tmp}/reports/selfsup",
        f"evaluate.model={tmp}/models/finetune",
        f"evaluate.baseline={tmp}/models/train/target",
        f"evaluate.out={tmp}/reports/evaluate",
        f"evaluate.metrics={tmp}/metrics/evaluate.json",
        f"register.out={tmp}/reports/register",
        f"predict.out={tmp}/predictions",
        f"measure.out={tmp}/reports/measure",
    ]
    return params(*TINY, *paths, *overrides)


@pytest.fixture
def tiny_params(tmp_path: Path) -> Params:
    return tiny(tmp_path)


@pytest.fixture
def synth_data(tiny_params: Params) -> Path:
    """The tiny target set (images/, masks/, test/, meta.json)."""
    from gbmseg import stages

    stages.synth(tiny_params)
    return Path(tiny_params.target.raw)


def prepared(p: Params, names: tuple[str, ...] = ("target",)) -> Params:
    """Run synth, validate, augment and pack for ``p`` (a tiny configuration); return it."""
    from gbmseg import stages

    stages.synth(p)
    for name in names:
        stages.validate(p, name)
        stages.augment(p, name)
        stages.pack(p, name)
    return p


def shared(name: str) -> Path:
    path = SHARED / name
    if not (path / "images").is_dir():
        from tests.servers import unavailable

        unavailable(f"real EM data {path} not present (set GBMSEG_SHARED_DATA)")
    return path


@pytest.fixture(autouse=True)
def _own_mlflow_environment():
    """Each test starts from the MLflow environment variables the run began with: one test's
    store (a server stopped since) never becomes the next test's default."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    yield
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        if key not in saved:
            del os.environ[key]
    os.environ.update(saved)


PATH_KEYS = [
    "validate.out", "augment.out", "pack.out", "pack.splits", "train.out", "train.metrics",
    "train.history", "train.checkpoints", "resolve.out", "finetune.pretrained", "finetune.out",
    "finetune.metrics", "finetune.history", "evaluate.model", "evaluate.baseline",
    "evaluate.out", "evaluate.metrics", "selfsup.metrics", "selfsup.history",
]  # fmt: skip


def path_overrides(p: Params) -> list[str]:
    """``-S`` values that pin every data and model path of ``p`` (e.g. from ``tiny``): a
    command run with them reads and writes nowhere else."""
    tree = p.model_dump(mode="json", by_alias=True)
    pairs = {f"sets.{name}.raw": s["raw"] for name, s in tree["sets"].items()}
    for key in PATH_KEYS:
        section, field = key.split(".")
        pairs[key] = tree[section][field]
    return [f"{k}={v}" for k, v in pairs.items()]
