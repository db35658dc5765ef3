"""SIGKILL of `dvc repro` in the middle of a train stage.  dvc.lock must never
describe the half-done stage, the stage's output must not exist half-written, and the next
`dvc repro` must re-run only that stage and what depends on it."""

import os
import signal
import subprocess
import time

import pytest
import yaml

from tests.test_pipeline_e2e import BIN, _project_copy, _run

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _set_epochs(proj, epochs: int) -> None:
    tree = yaml.safe_load((proj / "params.yaml").read_text())
    tree["train"].update(epochs=epochs, patience=1000)
    (proj / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))


def test_kill_dvc_repro_mid_stage_then_repro_reruns_only_that_stage(tmp_path):
    proj = _project_copy(tmp_path / "proj")
    _set_epochs(proj, 2000)
    (proj / "dvc.lock").unlink()  # the checkout's lock describes other params: start clean
    _run(proj, "git", "init", "-q")
    _run(proj, "gbmseg", "synth")
    _run(proj, "dvc", "commit", "-f", "-q", "data.dvc")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GBMSEG_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    log = open(tmp_path / "repro.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        ["dvc", "repro"],
        cwd=proj,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    ckpt = proj / "models" / "train.ckpt" / "last.pt"
    deadline = time.time() + 300
    while not ckpt.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert ckpt.is_file(), (tmp_path / "repro.log").read_text()[-2000:]
    time.sleep(0.5)  # well inside training
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    log.close()

    lock = yaml.safe_load((proj / "dvc.lock").read_text())
    assert {"validate", "augment", "pack"} <= set(lock["stages"])
    assert "train" not in lock["stages"], "dvc.lock describes a stage that never finished"
    assert not (proj / "models" / "train").exists(), "half-written model published"
    assert not (proj / "metrics" / "train.json").exists()

    _set_epochs(proj, 2)
    out = _run(proj, "dvc", "repro").stdout
    for done in ("validate", "augment", "pack"):
        assert f"Stage '{done}' didn't change, skipping" in out, out
        assert f"Running stage '{done}'" not in out
    assert "Running stage 'train'" in out
    assert (proj / "models" / "train" / "model.pt").is_file()
    assert "up to date" in _run(proj, "dvc", "status").stdout.lower()
