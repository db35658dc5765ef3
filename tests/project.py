"""A tiny copy of the project for the end-to-end tests: its files, `dvc` and `gbmseg` run in
it as a user would, and the outputs compared across DVC and kfp.local runs."""

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


def project_copy(dst: Path, *overrides: str) -> Path:
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
        kept = not rel.startswith(skip) or rel.endswith("README.md")  # e.g. models/train/
        if src.is_file() and kept and rel != "dvc.lock":
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    edit_params(dst, *TINY, *overrides)
    return dst


def edit_params(proj: Path, *overrides: str, drop_source: bool = False) -> None:
    tree = yaml.safe_load((proj / "params.yaml").read_text())
    for item in overrides:
        apply_override(tree, item)
    if drop_source:  # the source is neither in `sets` nor trained from scratch any more
        del tree["sets"]["source"]
        tree["train"]["sets"] = [s for s in tree["train"]["sets"] if s != "source"]
    (proj / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))
    load(proj / "params.yaml")  # still valid


def clean_env() -> dict[str, str]:
    """This environment without MLflow or gbmseg settings, the venv's commands first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GBMSEG_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(cwd: Path, *cmd: str) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    )
    return res


def synth_and_commit(proj: Path) -> None:
    shutil.rmtree(proj / "data" / "raw", ignore_errors=True)
    run(proj, "gbmseg", "synth")
    run(proj, "dvc", "commit", "-f", "-q", "data.dvc")
    run(proj, "git", "add", "-A")
    run(proj, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "data")


def json_of(path: Path) -> dict:
    return json.loads(path.read_text())


def snapshot(proj: Path) -> dict:
    """What the kfp.local runs are compared with."""
    sets = yaml.safe_load((proj / "params.yaml").read_text())["sets"]
    return {
        "packed": {
            s: json_of(proj / "data" / "packed" / s / "manifest.json")["splits"] for s in sets
        },
        "evaluate": json_of(proj / "metrics" / "evaluate.json"),
        "finetune": json_of(proj / "metrics" / "finetune.json"),
    }


def compare(root: Path, dvc: dict) -> None:
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
