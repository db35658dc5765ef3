"""The lab's loop end to end on a tiny configuration in a temporary copy of the project:
`dvc repro` pretraining on the source, then fine-tuning the registry's champion on a target
of two labelled images; and the Kubeflow pipeline under kfp.local on the same params and
data, with equal results."""

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gbmseg.config import apply_override, load, without_nulls
from tests.conftest import ROOT, TINY

BIN = Path(sys.executable).parent
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


def _project_copy(dst: Path, *overrides: str) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    skip = ("data/", "metrics/", "reports/", "models/", "splits/")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(skip) and rel != "dvc.lock":
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    _edit_params(dst, *TINY, *overrides)
    return dst


def _edit_params(proj: Path, *overrides: str, drop_source: bool = False) -> None:
    tree = yaml.safe_load((proj / "params.yaml").read_text())
    for item in overrides:
        apply_override(tree, item)
    if drop_source:
        del tree["sets"]["source"]
    (proj / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    load(proj / "params.yaml")  # still valid


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GBMSEG_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(cwd: Path, *cmd: str) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    )
    return res


def _ran(out: str) -> list[str]:
    return [s for s in STAGES if f"Running stage '{s}'" in out]


def _synth_and_commit(proj: Path) -> None:
    shutil.rmtree(proj / "data" / "raw", ignore_errors=True)
    _run(proj, "gbmseg", "synth")
    _run(proj, "dvc", "commit", "-f", "-q", "data.dvc")
    _run(proj, "git", "add", "-A")
    _run(proj, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "data")


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _snapshot(proj: Path) -> dict:
    """What the kfp.local runs are compared with."""
    sets = yaml.safe_load((proj / "params.yaml").read_text())["sets"]
    return {
        "packed": {
            s: _json(proj / "data" / "packed" / s / "manifest.json")["splits"] for s in sets
        },
        "evaluate": _json(proj / "metrics" / "evaluate.json"),
        "finetune": _json(proj / "metrics" / "finetune.json"),
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A tiny project copy after `dvc repro` (pretraining on the source), then again with the
    registry's champion as the start and a two-image target; the outputs of both runs."""
    proj = _project_copy(tmp_path_factory.mktemp("e2e") / "proj")
    _run(proj, "git", "init", "-q")
    _synth_and_commit(proj)
    first = _run(proj, "dvc", "repro").stdout
    second = _run(proj, "dvc", "repro").stdout
    pretrain = _snapshot(proj)
    shutil.copy(proj / "mlflow.db", proj.parent / "registry-after-pretrain.db")
    frozen = proj.parent / "pretrain-variant"  # its data, params and splits, for kfp.local
    for rel in ("data/raw", "splits"):
        shutil.copytree(proj / rel, frozen / rel)
    shutil.copy(proj / "params.yaml", frozen / "params.yaml")
    registration = _json(proj / "reports" / "register" / "registration.json")

    _edit_params(proj, *REGISTRY, drop_source=True)
    (proj / "splits" / "target.csv").unlink()  # another set of lab images: a new split file
    _synth_and_commit(proj)
    third = _run(proj, "dvc", "repro").stdout
    fourth = _run(proj, "dvc", "repro").stdout
    runs = {"first": first, "second": second, "third": third, "fourth": fourth}
    return proj, runs, pretrain, _snapshot(proj), registration


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
    resolved = _json(proj / "models" / "pretrained" / "pretrained.json")
    assert (resolved["name"], resolved["version"]) == ("gbmseg-unet", "1")
    split = registry["packed"]["target"]
    assert len(split["train"]["sources"]) + len(split["val"]["sources"]) == 2
    assert len(split["test"]["sources"]) == 3
    reg = _json(proj / "reports" / "register" / "registration.json")
    assert reg["version"] == "2" and reg["model_sha256"] == registry["evaluate"]["model_sha256"]
    assert reg["alias"] == "challenger" and "min_delta 0.99" in reg["decision"]["reason"]
    seen = _json(proj / "models" / "finetune" / "trained_on.json")
    assert seen["images"] > 2  # the two target images and every image the champion saw

    # a new champion: the next `dvc repro` fine-tunes it
    env = {**_env(), "MLFLOW_TRACKING_URI": f"sqlite:///{proj}/mlflow.db"}
    code = "from mlflow import MlflowClient; "
    code += "MlflowClient().set_registered_model_alias('gbmseg-unet', 'champion', '2')"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    again = _ran(_run(proj, "dvc", "repro").stdout)
    assert {"resolve", "finetune", "evaluate", "register"} <= set(again)
    assert "train@target" not in again


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


def _compare(root: Path, dvc: dict) -> None:
    for name, split in dvc["packed"].items():
        found = [
            json.loads(q.read_text())["splits"]
            for q in root.glob("*/pack*/packed/*/manifest.json")
            if q.parent.name == name
        ]
        assert found and found[0] == split, name  # equal packed array hashes
    (kfp_eval,) = root.glob("*/evaluate*/report/metrics.json")
    kfp_metrics = json.loads(kfp_eval.read_text())
    log.info("evaluate: dvc %s vs kfp.local %s", dvc["evaluate"], kfp_metrics)
    assert kfp_metrics["n_images"] == dvc["evaluate"]["n_images"]
    for key in ("dice", "iou", "baseline_dice"):
        assert kfp_metrics[key] == pytest.approx(dvc["evaluate"][key], abs=0.01), key
    (kfp_ft,) = root.glob("*/finetune*/history/metrics.json")
    assert json.loads(kfp_ft.read_text())["strategy"] == dvc["finetune"]["strategy"]


@pytest.mark.slow
def test_kfp_local_pretraining_variant_equals_dvc_repro(project, tmp_path, monkeypatch):
    proj, _, pretrain, _, _ = project
    frozen = proj.parent / "pretrain-variant"
    _compare(_kfp_run(frozen, tmp_path, monkeypatch, None), pretrain)


@pytest.mark.slow
def test_kfp_local_registry_variant_equals_dvc_repro(project, tmp_path, monkeypatch):
    proj, _, _, registry, _ = project
    db = proj.parent / "registry-after-pretrain.db"  # the champion the dvc run fine-tuned
    _compare(_kfp_run(proj, tmp_path, monkeypatch, db), registry)
