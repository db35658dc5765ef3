"""SIGKILL a real `gbmseg train` mid-run, resume it, and land where an uninterrupted run lands."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gbmseg.engine import checkpoint
from tests.conftest import TINY, prepared, tiny

EPOCHS = 30
pytestmark = pytest.mark.faults


def _cmd(p, out: Path, *extra: str) -> list[str]:
    sets = [
        *TINY,
        f"pack.out={p.pack.out}",
        f"train.out={out}",
        f"finetune.pretrained={out}/source",
        f"train.baseline_epochs={EPOCHS}",  # the target trained from scratch: the baseline
        "train.patience=100",
        "train.threads=1",  # a fixed thread count: the same sums in the run and its resume
        f"train.metrics={out}.metrics",
        f"train.history={out}.history",
        f"train.checkpoints={out}.ckpt",
    ]
    return [
        sys.executable,
        "-m",
        "gbmseg",
        "train",
        "target",
        "--no-track",
        *[a for s in sets for a in ("-S", s)],
        *extra,
    ]


def _losses(path: Path) -> list[float]:
    with open(path) as fh:
        return [float(r["loss"]) for r in csv.DictReader(fh)]


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path):
    p = prepared(tiny(tmp_path))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    subprocess.run(_cmd(p, tmp_path / "full"), check=True, capture_output=True, env=env)
    victim = tmp_path / "killed"
    proc = subprocess.Popen(
        _cmd(p, victim), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    last = Path(f"{victim}.ckpt") / "train-target" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline:
        if last.is_file() and checkpoint.load(last)["epoch"] >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = checkpoint.load(last)["epoch"]  # loads: never a half-written checkpoint
    assert 2 <= killed_at < EPOCHS - 1
    assert not (victim / "target" / "model.pt").exists()  # nothing published by the killed run

    subprocess.run(_cmd(p, victim, "--resume"), check=True, capture_output=True, env=env)
    full = _losses(Path(f"{tmp_path / 'full'}.history") / "target.csv")
    resumed = _losses(Path(f"{victim}.history") / "target.csv")
    assert len(resumed) == len(full) == EPOCHS
    assert resumed[-1] == pytest.approx(full[-1], rel=1e-3)
    assert (victim / "target" / "model.pt").is_file()


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_inside_the_epoch_and_resume_lands_the_same(tmp_path):
    """A preempted node: SIGTERM stops training after the batch in hand with a checkpoint
    (exit 143); --resume replays the epoch's batch order from there."""
    p = prepared(tiny(tmp_path))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    small = ("-S", "train.batch_size=1", "-S", "train.steps_per_epoch=40")  # stop inside one
    subprocess.run([*_cmd(p, tmp_path / "full"), *small], check=True, capture_output=True, env=env)
    victim = tmp_path / "stopped"
    proc = subprocess.Popen(
        [*_cmd(p, victim), *small],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    last = Path(f"{victim}.ckpt") / "train-target" / "last.pt"
    deadline = time.time() + 120
    while not (last.is_file() and checkpoint.load(last)["epoch"] >= 1) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside an epoch
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "run again with --resume" in err and "Traceback" not in err
    state = checkpoint.load(last)
    assert state.get("partial", {}).get("batches", 1) > 0  # mid-epoch, or at an epoch's end
    assert not (victim / "target" / "model.pt").exists()

    subprocess.run([*_cmd(p, victim, "--resume"), *small], check=True, capture_output=True, env=env)
    full = _losses(Path(f"{tmp_path / 'full'}.history") / "target.csv")
    resumed = _losses(Path(f"{victim}.history") / "target.csv")
    assert len(resumed) == len(full) == EPOCHS
    assert resumed[-1] == pytest.approx(full[-1], rel=1e-3)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_last_pt_is_refused_by_name_and_nothing_else_is_touched(tmp_path, damage):
    p = prepared(tiny(tmp_path))
    out = tmp_path / "run"
    subprocess.run(_cmd(p, out), check=True, capture_output=True)
    ckpt = Path(f"{out}.ckpt") / "train-target"
    published = (out / "target" / "model.pt").read_bytes()
    best = (ckpt / "best.pt").read_bytes()
    data = (ckpt / "last.pt").read_bytes()
    bad = data[: len(data) // 3] if damage == "truncate" else b"\x80\x04garbage" * 100
    (ckpt / "last.pt").write_bytes(bad)
    res = subprocess.run(_cmd(p, out, "--resume"), capture_output=True, text=True)
    assert res.returncode == 2, res.stderr[-2000:]
    assert f"{ckpt / 'last.pt'}: refused to load" in res.stderr
    assert "Traceback" not in res.stderr
    assert (out / "target" / "model.pt").read_bytes() == published
    assert (ckpt / "best.pt").read_bytes() == best
