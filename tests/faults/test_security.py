"""A malicious pickle offered as weights is refused without running it;
nothing in gbmseg unpickles; no secrets in the repository (a scanner that is shown to
catch planted ones); the image runs as non-root with MLflow's pickle loading off."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT

pytestmark = pytest.mark.faults


class Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize("step", ["predict", "finetune"])
def test_malicious_pickle_as_weights_is_refused_unrun(step, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil" / "model.pt"
    evil.parent.mkdir()
    torch.save({"model": Evil(str(marker)), "model_config": {}}, evil)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "x.png")
    args = {
        "predict": ["predict", "--model", str(evil), str(tmp_path / "x.png"), "--out", "o"],
        "finetune": ["finetune", "-S", f"resolve.out={evil.parent}", "--no-track"],
    }[step]
    cmd = [sys.executable, "-m", "gbmseg", *args, "--params", str(ROOT / "params.yaml")]
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 2, res.stderr[-1500:]
    assert "refused to load" in res.stderr and "weights_only=True" in res.stderr
    assert not marker.exists(), "the pickle's payload ran"


def test_no_module_unpickles():
    for path in (ROOT / "src").rglob("*.py"):
        text = path.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text, flags=re.S):
            assert "weights_only=True" in call, f"{path}: {call}"
        assert not re.search(r"\bpickle\.loads?\(|\bjoblib\.load\(|cloudpickle", text), path


def test_image_runs_as_non_root_and_refuses_mlflow_pickles():
    text = (ROOT / "Dockerfile").read_text()
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false" in text


SECRET_PATTERNS = {
    "AWS access key id": r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",
    "AWS secret key": r"(?i)aws_secret_access_key\s*[:=]\s*['\"]?[A-Za-z0-9/+]{40}\b",
    "private key": r"-----BEGIN (RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----",
    "GitHub token": r"\bgh[pousr]_[A-Za-z0-9]{36}\b",
    "Slack token": r"\bxox[abpr]-[A-Za-z0-9-]{10,}",
    "password in URL": r"[a-z][a-z0-9+.-]*://[^/\s:@'\"$]+:(?!CHANGE-ME@)[^@\s/'\"$]{3,}@",
}


def scan(text: str) -> list[str]:
    return [name for name, rx in SECRET_PATTERNS.items() if re.search(rx, text)]


def test_secret_scanner_catches_planted_secrets():
    planted = [
        "key = AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "token ghp_" + "a1B2" * 9,
        "postgresql://mlflow:hunter22@db:5432/mlflow",
    ]
    for line in planted:
        assert scan(line), line
    assert not scan("postgresql://$(PGUSER):$(PGPASSWORD)@postgres:5432/mlflow")
    assert not scan("postgresql://mlflow:CHANGE-ME@postgres:5432/mlflow_auth")


def test_no_secrets_in_the_repository():
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    found = []
    for rel in filter(None, files):
        path = ROOT / rel
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if rel == "tests/faults/test_security.py":
            continue  # the planted examples above
        found += [f"{rel}: {name}" for name in scan(text)]
    assert not found, found


def test_mlflow_pickle_deserialisation_is_off_in_gbmseg():
    from mlflow.environment_variables import MLFLOW_ALLOW_PICKLE_DESERIALIZATION

    import gbmseg.tracking  # noqa: F401  (sets the default before mlflow reads it)

    assert MLFLOW_ALLOW_PICKLE_DESERIALIZATION.get() is False
