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
        f"finetune.epochs={EPOCHS}",  # the target's from-scratch run has fine-tuning's budget
        "train.patience=100",
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
