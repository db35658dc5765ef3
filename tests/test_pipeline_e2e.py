"""The lab's loop end to end on a tiny configuration in a temporary copy of the project:
`dvc repro` pretraining on the source, then fine-tuning the registry's champion on a target
of two labelled images; and the Kubeflow pipeline under kfp.local on the same params and
data, with equal results."""

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gbmseg.config import without_nulls
from tests.project import clean_env, compare, edit_params, json_of, run, snapshot, synth_and_commit

log = logging.getLogger(__name__)
STAGES = ["validate@source", "validate@target", "augment@source", "augment@target"]
STAGES += ["pack@source", "pack@target", "train@source", "train@target", "resolve"]
STAGES += ["finetune", "evaluate", "register"]
REGISTRY = [
    "finetune.pretrained=models:/gbmseg-unet@champion",
    "synth.target_images=2",  # the lab's first case: two labelled images + a test folder
    "synth.source_images=0",
    "register.min_delta=0.99",  # the champion stays, so the next run has nothing new to do
]


@pytest.fixture(scope="module")
def project(project_files, tmp_path_factory):
    """A tiny project copy after `dvc repro` (pretraining on the source), then again with the
    registry's champion as the start and a two-image target; the outputs of both runs."""
    proj = shutil.copytree(project_files, tmp_path_factory.mktemp("e2e") / "proj")
    run(proj, "git", "init", "-q")
    synth_and_commit(proj)
    first = run(proj, "dvc", "repro").stdout
    second = run(proj, "dvc", "repro").stdout
    pretrain = snapshot(proj)
    shutil.copy(proj / "mlflow.db", proj.parent / "registry-after-pretrain.db")
    frozen = proj.parent / "pretrain-variant"  # its data, params and splits, for kfp.local
    for rel in ("data/raw", "splits"):
        shutil.copytree(proj / rel, frozen / rel)
    shutil.copy(proj / "params.yaml", frozen / "params.yaml")
    registration = json_of(proj / "reports" / "register" / "registration.json")

    edit_params(proj, *REGISTRY, drop_source=True)
    (proj / "splits" / "target.csv").unlink()  # another set of lab images: a new split file
    synth_and_commit(proj)
    third = run(proj, "dvc", "repro").stdout
    fourth = run(proj, "dvc", "repro").stdout
    runs = {"first": first, "second": second, "third": third, "fourth": fourth}
    return proj, runs, pretrain, snapshot(proj), registration


@pytest.mark.slow
def test_dvc_repro_pretrains_finetunes_evaluates_and_registers(project):
    proj, runs, pretrain, _, reg = project
    assert _ran(runs["first"]) == STAGES
    assert _ran(runs["second"]) == ["resolve"]  # re-checked; its output did not change
    evaluate = pretrain["evaluate"]
    assert reg["model_sha256"] == evaluate["model_sha256"]  # registered what was evaluated
    assert (reg["version"], reg["alias"]) == ("1", "champion")
    assert {"dice", "baseline_dice", "dice_gain_over_baseline"} <= set(evaluate)
    assert evaluate["n_images"] == 3  # the target's test/ folder
    assert pretrain["finetune"]["pretrained"] == "models/train/source"
    comparison = proj / "reports" / "evaluate" / "comparison.png"
    assert comparison.is_file() or not (proj / "reports" / "evaluate").exists()


@pytest.mark.slow
def test_registry_champion_as_start_on_two_labelled_images(project):
    proj, runs, _, registry, _ = project
    ran = _ran(runs["third"])
    assert "train@source" not in ran and "validate@source" not in ran  # no pretraining
    assert {"resolve", "finetune", "evaluate", "register"} <= set(ran)
    assert _ran(runs["fourth"]) == ["resolve"]
    resolved = json_of(proj / "models" / "pretrained" / "pretrained.json")
    assert (resolved["name"], resolved["version"]) == ("gbmseg-unet", "1")
    split = registry["packed"]["target"]
    assert len(split["train"]["sources"]) + len(split["val"]["sources"]) == 2
    assert len(split["test"]["sources"]) == 3
    reg = json_of(proj / "reports" / "register" / "registration.json")
    assert reg["version"] == "2" and reg["model_sha256"] == registry["evaluate"]["model_sha256"]
    assert reg["alias"] == "challenger" and "min_delta 0.99" in reg["decision"]["reason"]
    seen = json_of(proj / "models" / "finetune" / "trained_on.json")
    assert seen["images"] > 2  # the two target images and every image the champion saw

    # a new champion: the next `dvc repro` fine-tunes it
    env = {**clean_env(), "MLFLOW_TRACKING_URI": f"sqlite:///{proj}/mlflow.db"}
    code = "from mlflow import MlflowClient; "
    code += "MlflowClient().set_registered_model_alias('gbmseg-unet', 'champion', '2')"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    again = _ran(run(proj, "dvc", "repro").stdout)
    assert {"resolve", "finetune", "evaluate", "register"} <= set(again)
    assert "train@target" not in again


def _ran(out: str) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in out]


def _kfp_run(proj: Path, tmp_path: Path, monkeypatch, registry_db: Path | None) -> Path:
    from kfp import local

    from gbmseg.data import splits
    from gbmseg.kfp_client import fingerprint
    from pipelines.gbmseg_pipeline import gbmseg_pipeline

    db = tmp_path / "mlflow.db"
    if registry_db is not None:
        shutil.copy(registry_db, db)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.chdir(tmp_path)  # no relative default path may leak in from the checkout
    root = tmp_path / "root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    raw = proj / "data" / "raw"
    params = without_nulls(yaml.safe_load((proj / "params.yaml").read_text()))  # as submitted
    tables = {s: splits.read(proj / "splits" / f"{s}.csv") for s in params["sets"]}
    assert all(tables.values())
    task = gbmseg_pipeline(
        source_uri="" if registry_db is not None else str(raw / "source"),
        target_uri=str(raw / "target"),
        data_version=fingerprint(str(raw)),
        pretrained="models:/gbmseg-unet@champion" if registry_db is not None else "",
        splits=tables,
        params=params,
    )
    assert task.output.startswith("gbmseg-unet/")
    return root


@pytest.mark.slow
def test_kfp_local_pretraining_variant_equals_dvc_repro(project, tmp_path, monkeypatch):
    proj, _, pretrain, _, _ = project
    frozen = proj.parent / "pretrain-variant"
    compare(_kfp_run(frozen, tmp_path, monkeypatch, None), pretrain)


@pytest.mark.slow
def test_kfp_local_registry_variant_equals_dvc_repro(project, tmp_path, monkeypatch):
    proj, _, _, registry, _ = project
    db = proj.parent / "registry-after-pretrain.db"  # the champion the dvc run fine-tuned
    compare(_kfp_run(proj, tmp_path, monkeypatch, db), registry)
