"""Shared fixtures: the project's own params.yaml, tiny synthetic data, real EM data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gbmseg.config import Params, load

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GBMSEG_SHARED_DATA", ROOT.parent / "shared" / "data"))

TINY = [
    "synth.n_images=8",
    "synth.size=64",
    "validate.min_images=3",
    "augment.copies=1",
    "pack.tile=64",
    "pack.stride=64",
    "pack.val_fraction=0.15",
    "pack.test_fraction=0.25",
    "train.model.depth=2",
    "train.model.base=4",
    "train.epochs=2",
    "train.batch_size=4",
    "train.max_minutes=0",
    "train.amp=fp32",
    "finetune.epochs=2",
    "evaluate.tile=64",
]


def params(*overrides: str) -> Params:
    return load(ROOT / "params.yaml", list(overrides))


def tiny(tmp: Path, *overrides: str) -> Params:
    """Tiny configuration with every path inside ``tmp``."""
    paths = [
        f"data.raw={tmp}/raw",
        f"validate.out={tmp}/validated",
        f"augment.out={tmp}/augmented",
        f"pack.out={tmp}/packed",
        f"train.out={tmp}/model",
        f"train.metrics={tmp}/metrics/train.json",
        f"train.history={tmp}/reports/history.csv",
        f"finetune.out={tmp}/finetuned",
        f"finetune.metrics={tmp}/metrics/finetune.json",
        f"finetune.history={tmp}/reports/finetune.csv",
        f"finetune.pretrained={tmp}/model",
        f"evaluate.out={tmp}/reports/evaluate",
        f"evaluate.metrics={tmp}/metrics/evaluate.json",
        f"register.out={tmp}/reports/register",
    ]
    return params(*TINY, *paths, *overrides)


@pytest.fixture
def tiny_params(tmp_path: Path) -> Params:
    return tiny(tmp_path)


@pytest.fixture
def synth_data(tiny_params: Params) -> Path:
    from gbmseg.steps import synth

    synth.run(tiny_params.synth, tiny_params.data.raw, tiny_params.data.positive)
    return Path(tiny_params.data.raw)


def prepared(p: Params) -> Params:
    """Run synth, validate, augment and pack for ``p`` (a tiny configuration); return it."""
    from gbmseg.steps import augment, pack, synth, validate

    synth.run(p.synth, p.data.raw, p.data.positive)
    validate.run(p.validate_, p.data.raw, p.validate_.out, p.data.positive)
    augment.run(p.augment, p.validate_.out, p.augment.out)
    pack.run(p.pack, p.validate_.out, p.augment.out, p.pack.out)
    return p


def shared(name: str) -> Path:
    path = SHARED / name
    if not (path / "images").is_dir():
        pytest.skip(f"real EM data {path} not present (set GBMSEG_SHARED_DATA)")
    return path
