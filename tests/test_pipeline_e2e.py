"""End to end on a tiny configuration in a temporary copy of the project: `dvc repro`, then
the Kubeflow pipeline under kfp.local on the same params and data, with equal results."""

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gbmseg.config import apply_override, load
from tests.conftest import ROOT, TINY

BIN = Path(sys.executable).parent
log = logging.getLogger(__name__)


def _project_copy(dst: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("data/", "metrics/", "reports/", "models/")):
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    tree = yaml.safe_load((dst / "params.yaml").read_text())
    for item in TINY:
        apply_override(tree, item)
    (dst / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    load(dst / "params.yaml")  # still valid
    return dst


def _run(cwd: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GBMSEG_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    )
    return res


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    """A tiny project copy after `gbmseg synth` and `dvc repro`; (path, repro stdout)."""
    proj = _project_copy(tmp_path_factory.mktemp("e2e") / "proj")
    _run(proj, "git", "init", "-q")
    _run(proj, "gbmseg", "synth")
    _run(proj, "dvc", "commit", "-f", "-q", "data.dvc")
    _run(proj, "git", "add", "-A")
    _run(proj, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tiny")
    return proj, _run(proj, "dvc", "repro")


@pytest.mark.slow
def test_dvc_repro_end_to_end_then_nothing_to_do(repro):
    proj, out = repro
    for stage in ("validate", "augment", "pack", "train", "finetune", "evaluate", "register"):
        assert f"Running stage '{stage}'" in out.stdout
    report = json.loads((proj / "models" / "finetune" / "transfer_report.json").read_text())
    assert report["histogram_distance"] == 0.0  # fine-tuned on the data it was trained on
    assert (
        not report["large"]
        and report["strategy"]
        == json.loads((proj / "metrics" / "finetune.json").read_text())["strategy"]
    )

    metrics = json.loads((proj / "metrics" / "evaluate.json").read_text())
    assert set(metrics) >= {"dice", "iou", "n_images"} and metrics["n_images"] == 2
    reg = json.loads((proj / "reports" / "register" / "registration.json").read_text())
    assert (reg["version"], reg["alias"]) == ("1", "champion")
    assert (proj / "mlflow.db").is_file()
    assert list((proj / "reports" / "evaluate" / "overlays").glob("*.png"))

    status = _run(proj, "dvc", "status", "--json")
    assert json.loads(status.stdout) == {}
    again = _run(proj, "dvc", "repro")
    assert "Running stage" not in again.stdout
    assert "Data and pipelines are up to date" in again.stdout


@pytest.mark.slow
def test_kfp_local_pipeline_equals_dvc_repro(repro, tmp_path, monkeypatch):
    """The same step code under Kubeflow (kfp.local): same packed arrays, close metrics."""
    from kfp import local

    from pipelines.gbmseg_pipeline import gbmseg_pipeline

    proj, _ = repro
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)  # no relative default path may leak in from the checkout
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    from gbmseg.kfp_client import fingerprint

    task = gbmseg_pipeline(
        raw_uri=str(proj / "data" / "raw"),
        data_version=fingerprint(str(proj / "data" / "raw")),
        params=yaml.safe_load((proj / "params.yaml").read_text()),
    )
    assert task.output == "gbmseg-unet/1@champion"

    (kfp_pack,) = (tmp_path / "root").glob("*/pack/packed/manifest.json")
    dvc_pack = json.loads((proj / "data" / "packed" / "manifest.json").read_text())
    assert json.loads(kfp_pack.read_text())["splits"] == dvc_pack["splits"]
    (kfp_eval,) = (tmp_path / "root").glob("*/evaluate/report/metrics.json")
    kfp_metrics = json.loads(kfp_eval.read_text())
    dvc_metrics = json.loads((proj / "metrics" / "evaluate.json").read_text())
    log.info("packed splits equal; evaluate dvc %s vs kfp.local %s", dvc_metrics, kfp_metrics)
    assert kfp_metrics["n_images"] == dvc_metrics["n_images"]
    for key in ("dice", "iou", "pixel_error"):
        assert kfp_metrics[key] == pytest.approx(dvc_metrics[key], abs=0.01), key
    (kfp_ft,) = (tmp_path / "root").glob("*/finetune/history.metrics.json")
    dvc_ft = json.loads((proj / "metrics" / "finetune.json").read_text())
    kfp_ft = json.loads(kfp_ft.read_text())
    log.info("finetune dvc %s vs kfp.local %s", dvc_ft, kfp_ft)
    assert kfp_ft["strategy"] == dvc_ft["strategy"]
    assert kfp_ft["best_val_dice"] == pytest.approx(dvc_ft["best_val_dice"], abs=0.01)
