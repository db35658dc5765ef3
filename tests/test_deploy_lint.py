"""The cluster half, checked offline: the Dockerfile lints clean (hadolint) and every
kustomize overlay renders and validates against the Kubernetes schemas."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.servers import unavailable

BIN = Path(sys.executable).parent


def kustomize(folder: Path) -> str:
    """`kubectl kustomize` output; without kubectl a clear failure under CI, a skip elsewhere."""
    if not shutil.which("kubectl"):
        unavailable("kubectl not on PATH: install kubectl to render infra/ (kustomize)")
    return subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=True
    ).stdout


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
    rendered = kustomize(ROOT / "infra" / "overlays" / overlay)
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


CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"


def _checkov(path: Path, framework: str) -> dict:
    if not CHECKOV.is_file():
        unavailable("checkov not installed: `make tools` (make test does it)")
    res = subprocess.run(
        [str(CHECKOV), "-f", str(path), "--framework", framework, "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(path.parent), "BC_SKIP_MAPPING": "TRUE"},
    )
    out = json.loads(res.stdout)
    report = out[0] if isinstance(out, list) else out
    failed = [
        f"{c['check_id']} {c['resource']}"
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    return {"summary": report.get("summary", {}), "failed": failed}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_passes_on_rendered_infra(overlay, tmp_path):
    out = tmp_path / f"{overlay}.yaml"
    out.write_text(kustomize(ROOT / "infra" / "overlays" / overlay))
    res = _checkov(out, "kubernetes")
    assert res["failed"] == [], res["failed"]
    assert res["summary"]["passed"] > 100
    for doc in yaml.safe_load_all(out.read_text()):  # every skip carries its reason
        for key, value in ((doc or {}).get("metadata", {}).get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, why = value.partition("=")
                assert check.startswith("CKV_") and len(why) > 20, value


def test_checkov_passes_on_the_dockerfile_and_fails_a_bad_pod(tmp_path):
    assert _checkov(ROOT / "Dockerfile", "dockerfile")["failed"] == []
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n"
        "    - name: c\n      image: busybox:latest\n      securityContext: {privileged: true}\n"
    )
    assert len(_checkov(bad, "kubernetes")["failed"]) > 5
