"""torchrun with 2 CPU processes (gloo): trains, agrees across ranks, rank 0 alone writes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY, prepared, tiny


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    p = prepared(tiny(tmp_path))
    sets = [
        *TINY,
        f"pack.out={p.pack.out}",
        f"train.out={p.train.out}",
        "train.epochs=3",
        f"train.metrics={p.train.metrics}",
        f"train.history={p.train.history}",
    ]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "gbmseg",
        "train",
        "--no-track",
        *[a for s in sets for a in ("-S", s)],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    # one JSON result (rank 0 only), one model, one metrics file, three epochs of history
    assert res.stdout.count('"best_val_dice"') == 1
    metrics = json.loads(Path(p.train.metrics).read_text())
    assert metrics["epochs_run"] == 3
    assert (tmp_path / "model" / "model.pt").is_file()
    assert Path(p.train.history).read_text().count("\n") == 4
    # both ranks trained: each saw half of the tiles per epoch
    assert res.stderr.count("training ") == 2
