"""Real MLflow stores under fault: the server gone before a step (clear error, nothing run)
or during one (metrics buffered, none lost), 8 processes registering at once on `mlflow
server` + PostgreSQL, and a version whose stored artifact vanished refused before any alias
moves."""

import hashlib
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gbmseg import tracking
from gbmseg.config import TrackingParams
from gbmseg.engine import checkpoint
from gbmseg.errors import TrackingError
from gbmseg.model.unet import build
from gbmseg.steps import register
from tests.registry_world import eval_params, register_model, target_of
from tests.servers import free_port, mlflow_server, postgres

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.slow]
EXAMPLE = np.zeros((1, 1, 16, 16), np.float32)


def _weights(folder: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    checkpoint.save(folder / "model.pt", checkpoint.model_state(build({"depth": 2, "base": 4})))
    return folder


def test_mlflow_down_before_a_step_fails_clearly_and_loses_nothing(world, tmp_path):
    root, p = world
    before = hashlib.sha256((root / "good" / "model" / "model.pt").read_bytes()).hexdigest()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
    }
    sets = [
        f"evaluate.model={root / 'good' / 'model'}",
        f"validate.out={p.validate_.out}",
        f"evaluate.out={root / 'good' / 'eval'}",
        f"evaluate.metrics={root / 'good' / 'eval.json'}",
        f"register.out={tmp_path / 'reg'}",
    ]
    cmd = [sys.executable, "-m", "gbmseg", "register", *[a for s in sets for a in ("-S", s)]]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "is unreachable or refused the request" in res.stderr
    assert "Traceback" not in res.stderr
    after = hashlib.sha256((root / "good" / "model" / "model.pt").read_bytes()).hexdigest()
    assert after == before and not (tmp_path / "reg").exists()


def test_mlflow_down_during_a_step_buffers_metrics_and_loses_none(tmp_path, monkeypatch):
    port, backend = free_port(), f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a stopped server: refused at once
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")  # a live but busy one: wait for it
    tp = TrackingParams(uri=f"http://127.0.0.1:{port}", experiment="down", model_name="m")
    with mlflow_server(backend, tmp_path / "art", port=port):
        ctx = tracking.stage_run(tp, "train", "g")
        run = ctx.__enter__()
        run.metrics({"loss": 1.0}, step=1)
    run.metrics({"loss": 0.5}, step=2)  # server gone: buffered, training goes on
    run.metrics({"loss": 0.25}, step=3)
    assert len(run.pending) == 2
    with mlflow_server(backend, tmp_path / "art", port=port):
        run.metrics({"loss": 0.125}, step=4)  # back: the buffer is flushed first
        assert run.pending == []
        ctx.__exit__(None, None, None)
        from mlflow import MlflowClient

        hist = MlflowClient().get_metric_history(run.run_id, "loss")
    assert sorted((m.step, m.value) for m in hist) == [(1, 1.0), (2, 0.5), (3, 0.25), (4, 0.125)]


def test_mlflow_down_while_params_tags_and_files_are_logged(tmp_path, monkeypatch, caplog):
    """The server drops mid-step: params, tags and files are kept and sent when it is back;
    a server still gone when the step ends costs a warning, never a traceback."""
    port, backend = free_port(), f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    tp = TrackingParams(uri=f"http://127.0.0.1:{port}", experiment="drop", model_name="m")
    (tmp_path / "report.csv").write_text("a,b\n1,2\n")
    with mlflow_server(backend, tmp_path / "art", port=port):
        ctx = tracking.stage_run(tp, "evaluate", "g")
        run = ctx.__enter__()
    run.params({"evaluate": {"tile": 256}})  # the server is gone: none of these raise
    run.tags({"transfer.strategy": "full"})
    run.artifact(tmp_path / "report.csv", "evaluate")
    assert [kind for kind, _, _ in run.pending] == ["params", "tags", "artifact"]
    with mlflow_server(backend, tmp_path / "art", port=port):
        assert run.flush() and run.pending == []
        from mlflow import MlflowClient

        got = MlflowClient().get_run(run.run_id)
        files = [f.path for f in MlflowClient().list_artifacts(run.run_id, "evaluate")]
    assert got.data.params["evaluate.tile"] == "256"
    assert got.data.tags["transfer.strategy"] == "full"
    assert files == ["evaluate/report.csv"]
    run.tags({"late": "1"})  # gone again at the very end of the step
    ctx.__exit__(None, None, None)
    assert "never reached MLflow" in caplog.text


def _register_one(uri: str, weights: str, q) -> None:
    os.environ["MLFLOW_TRACKING_URI"] = uri
    tp = TrackingParams(uri="", experiment="race", model_name="raced")
    with tracking.stage_run(tp, "register", f"p{os.getpid()}") as run:
        model_uri = run.log_model(weights, EXAMPLE)
        q.put((tracking.register_version(tp, model_uri, {"pid": os.getpid()}), run.run_id))


def test_eight_concurrent_registrations_each_registered_once(tmp_path):
    weights = _weights(tmp_path / "model", 0)
    with postgres() as pg, mlflow_server(pg, tmp_path / "art") as url:
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        procs = [ctx.Process(target=_register_one, args=(url, str(weights), q)) for _ in range(8)]
        for proc in procs:
            proc.start()
        got = [q.get(timeout=300) for _ in procs]
        for proc in procs:
            proc.join(60)
        assert all(proc.exitcode == 0 for proc in procs)
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=url, registry_uri=url)
        versions = client.search_model_versions("name = 'raced'")
    assert sorted(int(v) for v, _ in got) == list(range(1, 9))
    assert len(versions) == 8 and len({v.run_id for v in versions}) == 8
    assert {v.run_id for v in versions} == {r for _, r in got}


class LosingStore(tracking.RunLogger):
    """The artifact store loses the model files right after they were logged."""

    root: Path

    def log_model(self, model_dir, input_example):
        before = set(self.root.rglob("model.pt"))
        uri = super().log_model(model_dir, input_example)
        for q in set(self.root.rglob("model.pt")) - before:
            q.unlink()
        return uri


def test_version_with_missing_artifact_is_refused_and_no_alias_moves(
    world,
    tmp_path,
    monkeypatch,
):
    root, p = world
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    first = register_model(root, p, "good", group="g1")
    assert (first["version"], first["alias"]) == ("1", "champion")
    rp = p.register_.model_copy(update={"out": str(tmp_path / "reg2"), "bootstrap": 200})
    with tracking.stage_run(p.tracking, "register", "g2") as run:
        losing = LosingStore(run.run_id)
        losing.root = tmp_path
        with pytest.raises(TrackingError, match="v2 refused: source artifact missing"):
            ep = eval_params(root, p, "bad")
            register.run(
                rp,
                p.tracking,
                ep,
                target_of(p)[0],
                run_log=losing,
                model_dir=root / "bad" / "model",
            )
    assert tracking.alias_version(p.tracking.model_name, "champion") == "1"
    assert tracking.alias_version(p.tracking.model_name, "challenger") != "2"
    from mlflow import MlflowClient

    tags = MlflowClient().get_model_version(p.tracking.model_name, "2").tags
    assert "source artifact missing" in tags["gbmseg.refused"]
    assert not (tmp_path / "reg2").exists()
