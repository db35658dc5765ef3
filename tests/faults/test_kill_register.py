"""SIGKILL of `gbmseg register` at its worst moments: right after a version is registered
(before any alias moves), and between the two alias moves (while the champion is being
scored).  The registry stays consistent (the champion is always one complete, verified
version) and a re-run finishes the job without registering the same model twice."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.registry_world import eval_params

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _cmd(root, p, name: str) -> list[str]:
    ep = eval_params(root, p, name)
    sets = [
        f"evaluate.model={root / name / 'model'}",
        f"evaluate.out={ep.out}",
        f"evaluate.metrics={ep.metrics}",
        f"validate.out={p.validate_.out}",
        f"register.out={root / name / 'reg'}",
        "register.bootstrap=200",
        "register.min_test_images=2",
    ]
    return [sys.executable, "-m", "gbmseg", "register", *[a for s in sets for a in ("-S", s)]]


def _rows(db, sql: str) -> list[tuple]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2) as con:
            return con.execute(sql).fetchall()
    except sqlite3.Error:
        return []


VERSIONS = "select version from model_versions where current_stage != 'Deleted_Internal'"
ALIASES = "select alias, version from registered_model_aliases"


def _kill_when(cmd, env, db, ready) -> None:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while proc.poll() is None and time.time() < deadline and not ready(db):
        time.sleep(0.005)
    assert proc.poll() is None, "register finished before the moment to kill it"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _consistent(db, tmp_path) -> dict:
    aliases = dict(_rows(db, ALIASES))
    tags = _rows(db, "select version, key, value from model_version_tags")
    refused = {v for v, k, _ in tags if k == "gbmseg.refused"}
    shas = [(v, val) for v, k, val in tags if k == "model_sha256" and v not in refused]
    assert len({s for _, s in shas}) == len(shas), "the same model registered twice"
    if "champion" in aliases:
        assert aliases["champion"] not in refused
    return aliases


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}


def test_killed_after_registering_before_any_alias(world, env, tmp_path):
    root, p = world
    db = tmp_path / "mlflow.db"
    _kill_when(_cmd(root, p, "good"), env, db, lambda d: _rows(d, VERSIONS))
    assert len(_rows(db, VERSIONS)) == 1
    assert "champion" not in _consistent(db, tmp_path)
    res = subprocess.run(_cmd(root, p, "good"), env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "already holds this model; reusing it" in res.stderr
    assert len(_rows(db, VERSIONS)) == 1  # no second version of the same model
    assert _consistent(db, tmp_path) == {"champion": 1, "challenger": 1}


def test_killed_between_the_alias_moves(world, env, tmp_path):
    root, p = world
    db = tmp_path / "mlflow.db"
    first = subprocess.run(_cmd(root, p, "bad"), env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]  # the first model is champion
    # the challenger alias moves first; the champion is then scored (seconds), then moved
    moved = lambda d: dict(_rows(d, ALIASES)).get("challenger") == 2  # noqa: E731
    _kill_when(_cmd(root, p, "good"), env, db, moved)
    aliases = _consistent(db, tmp_path)
    assert aliases == {"champion": 1, "challenger": 2}  # the old champion, whole
    res = subprocess.run(_cmd(root, p, "good"), env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(_rows(db, VERSIONS)) == 2
    assert _consistent(db, tmp_path) == {"champion": 2, "challenger": 2}
