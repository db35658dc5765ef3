"""The cluster half, checked offline: the Dockerfile lints clean (hadolint) and every
kustomize overlay renders and validates against the Kubernetes schemas."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

BIN = Path(sys.executable).parent
OVERLAYS = sorted(p.name for p in (ROOT / "infra" / "overlays").iterdir() if p.is_dir())


def _hadolint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "hadolint"), str(path)], capture_output=True, text=True)


def test_dockerfile_lints_clean_and_runs_as_non_root():
    res = _hadolint(ROOT / "Dockerfile")
    assert res.returncode == 0, res.stdout
    text = (ROOT / "Dockerfile").read_text()
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_hadolint_does_fail_on_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    assert _hadolint(bad).returncode != 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates(overlay, tmp_path):
    if not shutil.which("kubectl"):
        pytest.skip("kubectl not installed")
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "infra" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    out = tmp_path / f"{overlay}.yaml"
    out.write_text(rendered)
    res = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(out)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    pods = [
        d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "StatefulSet")
    ]
    assert pods
    for spec in pods:
        assert spec["securityContext"]["runAsNonRoot"] is True
        for c in spec["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert "limits" in c["resources"] and "requests" in c["resources"]
    secrets = [d for d in docs if d["kind"] == "Secret"]
    for s in secrets:  # templates only: every secret value is a placeholder
        for k, v in s.get("stringData", {}).items():
            assert (
                v in ("", "CHANGE-ME")
                or k == "username"
                or "CHANGE-ME" in v
                or (k == "MLFLOW_TRACKING_URI" and "@" not in v)
            ), (s["metadata"]["name"], k)
    mlflow = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "mlflow"
    )
    box = mlflow["spec"]["template"]["spec"]["containers"][0]
    assert "--app-name basic-auth" in box["args"][0]  # not open without auth
    assert any(e["name"] == "MLFLOW_AUTH_CONFIG_PATH" for e in box["env"])
    if overlay == "local":  # no cloud bucket: an in-cluster S3-compatible store
        assert any(d["kind"] == "StatefulSet" and d["metadata"]["name"] == "minio" for d in docs)


def test_multi_node_template_runs_gbmseg_train_under_torchrun():
    job = yaml.safe_load((ROOT / "infra" / "training" / "pytorchjob.yaml").read_text())
    kfp = yaml.safe_load((ROOT / "params.yaml").read_text())["kfp"]
    assert job["kind"] == "PyTorchJob" and job["apiVersion"] == "kubeflow.org/v1"
    for role in ("Master", "Worker"):
        pod = job["spec"]["pytorchReplicaSpecs"][role]["template"]["spec"]
        assert pod["nodeSelector"] == kfp["gpu_pool"]["node_selector"]
        assert pod["tolerations"] == kfp["gpu_pool"]["tolerations"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (box,) = pod["containers"]
        assert "torchrun -m gbmseg train" in " ".join(box["args"][0].split())
        assert box["resources"]["limits"]["nvidia.com/gpu"] == job["spec"]["nprocPerNode"]
