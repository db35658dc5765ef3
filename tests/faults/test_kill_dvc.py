"""`dvc repro` under fault: SIGKILL in the middle of a train stage (dvc.lock never describes
the half-done stage, its output is not half-written, the next `dvc repro` of that stage skips
the finished ones and re-runs only it); and two `dvc repro` at once in one workspace (DVC's lock
refuses the second, nothing corrupt)."""

import os
import shutil
import signal
import subprocess
import time

import pytest
import yaml

from tests.project import clean_env, run

pytestmark = [pytest.mark.faults, pytest.mark.slow]
DONE = ["validate@source", "validate@target", "augment@source", "augment@target"]
DONE += ["pack@source", "pack@target"]


def _set_epochs(proj, epochs: int) -> None:
    tree = yaml.safe_load((proj / "params.yaml").read_text())
    tree["train"].update(epochs=epochs, patience=1000)
    (proj / "params.yaml").write_text(yaml.safe_dump(tree, sort_keys=False))


def _project(project_files, tmp_path, epochs: int):
    proj = shutil.copytree(project_files, tmp_path / "proj")
    _set_epochs(proj, epochs)
    run(proj, "git", "init", "-q")
    run(proj, "gbmseg", "synth")
    run(proj, "dvc", "commit", "-f", "-q", "data.dvc")
    return proj


def _start(proj, log_path, *targets: str):
    log = open(log_path, "w")  # noqa: SIM115
    proc = subprocess.Popen(
        ["dvc", "repro", *targets],
        cwd=proj,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, log


def _wait_for(path, proc, seconds=300):
    deadline = time.time() + seconds
    while not path.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    return path.is_file()


def test_kill_dvc_repro_mid_stage_then_repro_reruns_only_that_stage(project_files, tmp_path):
    proj = _project(project_files, tmp_path, 2000)
    proc, log = _start(proj, tmp_path / "repro.log")
    ckpt = proj / "models" / "checkpoints" / "train-source" / "last.pt"
    assert _wait_for(ckpt, proc), (tmp_path / "repro.log").read_text()[-2000:]
    time.sleep(0.5)  # well inside training
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    log.close()

    lock = yaml.safe_load((proj / "dvc.lock").read_text())
    assert set(DONE) <= set(lock["stages"])
    assert "train@source" not in lock["stages"], "dvc.lock describes a stage that never finished"
    assert not (proj / "models" / "train" / "source").exists(), "half-written model published"
    assert not (proj / "metrics" / "train" / "source.json").exists()

    _set_epochs(proj, 2)
    out = run(proj, "dvc", "repro", "train@source").stdout
    for done in (d for d in DONE if d.endswith("@source")):
        assert f"Stage '{done}' didn't change, skipping" in out, out
    assert "Running stage 'train@source'" in out
    assert (proj / "models" / "train" / "source" / "model.pt").is_file()
    status = run(proj, "dvc", "status", "train@source").stdout.lower()
    assert "up to date" in status, status


def test_two_dvc_repro_at_once_one_is_refused_and_nothing_is_corrupt(project_files, tmp_path):
    proj = _project(project_files, tmp_path, 3)
    first, log1 = _start(proj, tmp_path / "first.log", "train@source")
    assert _wait_for(proj / "data" / "validated" / "source" / "manifest.json", first)
    second = subprocess.run(
        ["dvc", "repro", "train@source"],
        cwd=proj,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode != 0
    assert "lock" in (second.stdout + second.stderr).lower()  # DVC's repo lock said no
    assert first.wait(900) == 0, (tmp_path / "first.log").read_text()[-3000:]
    log1.close()
    # the finished workspace is whole and current
    again = run(proj, "dvc", "repro", "train@source").stdout
    assert "Running stage" not in again, again
    assert (proj / "models" / "train" / "source" / "model.pt").is_file()
    assert run(proj, "dvc", "status", "train@source").stdout.lower().count("up to date") == 1
