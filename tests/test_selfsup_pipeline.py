"""A self-supervised start end to end: `dvc repro` with a folder of the lab's unlabelled
images (and no source set) pretrains on them, fine-tunes from that model, evaluates and
registers; the Kubeflow pipeline's selfsup branch under kfp.local gives the same results."""

import shutil
from pathlib import Path

import pytest
import yaml

from gbmseg.config import without_nulls
from tests.project import compare, edit_params, json_of, run, snapshot

SELFSUP = [
    "selfsup.unlabelled={lab: data/raw/unlabelled}",
    "finetune.pretrained=models/train/lab",
    "selfsup.steps=30",
    "selfsup.batch_size=4",
    "selfsup.tile=64",
    "synth.source_images=0",
]


def _unlabelled_folder(raw: Path) -> Path:
    """The target's images without their masks, plus a copy of one of its test images."""
    folder = raw / "unlabelled"
    folder.mkdir()
    for img in sorted((raw / "target" / "images").iterdir()):
        shutil.copy(img, folder / img.name)
    test_image = sorted((raw / "target" / "test" / "images").iterdir())[0]
    shutil.copy(test_image, folder / "copy_of_a_test_image.png")
    return folder


@pytest.fixture(scope="module")
def project(project_files, tmp_path_factory):
    proj = shutil.copytree(project_files, tmp_path_factory.mktemp("selfsup") / "proj")
    edit_params(proj, *SELFSUP, drop_source=True)
    run(proj, "git", "init", "-q")
    run(proj, "gbmseg", "synth")
    _unlabelled_folder(proj / "data" / "raw")
    run(proj, "dvc", "commit", "-f", "-q", "data.dvc")
    run(proj, "git", "add", "-A")
    run(proj, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "data")
    out = run(proj, "dvc", "repro").stdout
    return proj, out, snapshot(proj)


@pytest.mark.slow
def test_dvc_repro_fine_tunes_from_the_self_supervised_model(project):
    proj, out, snapshot = project
    assert "Running stage 'selfsup@lab'" in out and "train@source" not in out
    for stage in ("train@target", "resolve", "finetune", "evaluate", "register"):
        assert f"Running stage '{stage}'" in out, stage
    pre = json_of(proj / "metrics" / "selfsup" / "lab.json")
    assert pre["images"] == 5 and pre["left_out_test_images"] == 1
    assert snapshot["finetune"]["strategy"] == "full"
    report = json_of(proj / "models" / "finetune" / "transfer_report.json")
    assert report["quadrant"] == "self-supervised"
    reg = json_of(proj / "reports" / "register" / "registration.json")
    assert reg["model_sha256"] == snapshot["evaluate"]["model_sha256"]
    assert (reg["version"], reg["alias"]) == ("1", "champion")


@pytest.mark.slow
def test_kfp_local_selfsup_branch_equals_dvc_repro(project, tmp_path, monkeypatch):
    from kfp import local

    from gbmseg.data import splits
    from gbmseg.kfp_client import fingerprint
    from pipelines.gbmseg_pipeline import gbmseg_pipeline

    proj, _, snapshot = project
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "root"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    raw = proj / "data" / "raw"
    params = without_nulls(yaml.safe_load((proj / "params.yaml").read_text()))  # as submitted
    task = gbmseg_pipeline(
        source_uri="",
        target_uri=str(raw / "target"),
        unlabelled_uri=str(raw / "unlabelled"),
        data_version=fingerprint(str(raw)),
        pretrained="selfsup",
        splits={"target": splits.read(proj / "splits" / "target.csv")},
        params=params,
    )
    assert task.output.startswith("gbmseg-unet/")
    (pre,) = root.glob("*/selfsup*/history/*.json")
    assert json_of(pre) == json_of(proj / "metrics" / "selfsup" / "lab.json") | {
        "seconds": json_of(pre)["seconds"],
        "crops_per_s": json_of(pre)["crops_per_s"],
    }
    compare(root, snapshot)
