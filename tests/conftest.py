"""Shared fixtures: the project's own params.yaml, tiny synthetic data, real EM data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gbmseg.config import Params, load
from gbmseg.config.params import OUTPUT_PATHS

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
    "train.baseline_epochs=2",
    "train.steps_per_epoch=3",
    "finetune.epochs=2",
    "evaluate.tile=64",
    "register.min_test_images=2",
]


def params(*overrides: str) -> Params:
    return load(ROOT / "params.yaml", list(overrides))


def tiny(tmp: Path, *overrides: str) -> Params:
    """Tiny configuration with every path inside ``tmp`` (params.yaml's layout under it:
    ``tmp/data/raw/target``, ``tmp/models/train/source``, ...; see ``Params.rooted``)."""
    return params(*TINY, *overrides).rooted(tmp, raw=True)


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


def path_overrides(p: Params) -> list[str]:
    """``-S`` values that pin every data and model path of ``p`` (e.g. from ``tiny``): a
    command run with them reads and writes nowhere else."""
    tree = p.model_dump(mode="json", by_alias=True)
    pairs = {f"sets.{name}.raw": s["raw"] for name, s in tree["sets"].items()}
    for section, fields in OUTPUT_PATHS.items():
        pairs |= {f"{section}.{field}": tree[section][field] for field in fields}
    return [f"{k}={v}" for k, v in pairs.items()]


@pytest.fixture(scope="session")
def project_files(tmp_path_factory) -> Path:
    """The project's files once, with the tiny parameters: each end-to-end test copies it
    (``shutil.copytree``) and runs `dvc` and `gbmseg` there as a user would."""
    from tests.project import project_copy

    return project_copy(tmp_path_factory.mktemp("project") / "proj")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Tiny data, a trained model and a random (bad) one, each already evaluated (see
    tests/registry_world.py)."""
    from tests.registry_world import make_world

    return make_world(tmp_path_factory)
