"""torchrun with 2 CPU processes (gloo): train and finetune each train on both ranks, agree,
and rank 0 alone publishes (one model, one metrics file, one result)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gbmseg import stages
from tests.conftest import TINY, prepared, tiny


def _torchrun(step: list[str], sets: list[str]) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "gbmseg",
        *step,
        "--no-track",
        *[a for s in sets for a in ("-S", s)],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.mark.slow
def test_torchrun_two_processes_gloo_train_then_finetune(tmp_path):
    p = prepared(tiny(tmp_path), ("source", "target"))
    keys = ("pack.out", "pack.splits", "train.out", "train.metrics", "train.history")
    keys += ("train.checkpoints", "resolve.out", "finetune.out", "finetune.metrics")
    keys += ("finetune.history", "finetune.pretrained")
    paths = [f"{k}={getattr(p.section(k.split('.')[0]), k.split('.')[1])}" for k in keys]
    sets = [*TINY, *paths, "train.epochs=3", "finetune.epochs=3"]
    res = _torchrun(["train", "source"], sets)
    # one JSON result (rank 0 only), one model, one metrics file, three epochs of history
    assert res.stdout.count('"best_val_dice"') == 1
    tp = p.train_params("source")
    assert json.loads(Path(tp.metrics).read_text())["epochs_run"] == 3
    assert (Path(tp.out) / "model.pt").is_file()
    assert Path(tp.history).read_text().count("\n") == 4
    assert res.stderr.count("training ") == 2  # both ranks trained, each on half the tiles

    stages.resolve(p)
    out = Path(p.finetune.out)
    res = _torchrun(["finetune"], sets)
    assert res.stdout.count('"best_val_dice"') == 1 and res.stderr.count("training ") == 2
    published = ["model.pt", "model_config.json", "trained_on.json", "threshold.json", "_meta.json"]
    reports = ["transfer_report.json", "transfer_report.md"]
    assert sorted(q.name for q in out.iterdir()) == sorted([*published, *reports])
    siblings = [q.name for q in out.parent.iterdir() if q.name.startswith(f".{out.name}.")]
    assert siblings == []  # no second, half-published copy from the other rank
    assert json.loads(Path(p.finetune.metrics).read_text())["epochs_run"] == 3
