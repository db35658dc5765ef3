"""MLflow logging and registration against a real (sqlite) tracking store."""

import json

import mlflow
import numpy as np
import pytest
import torch

from gbmseg import tracking
from gbmseg.engine import checkpoint
from gbmseg.model.unet import build
from tests.conftest import tiny


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _model_dir(path):
    torch.manual_seed(0)
    m = build({"depth": 2, "base": 4})
    path.mkdir(parents=True)
    checkpoint.save(path / "model.pt", checkpoint.model_state(m))
    return path


@pytest.mark.slow
def test_logged_model_loads_predicts_and_resolves_by_alias(store):
    p = tiny(store)
    _model_dir(store / "model")
    example = np.zeros((1, 1, 64, 64), np.float32)
    with tracking.stage_run(p.tracking, "register", "g1") as run:
        uri = run.log_model(store / "model", example)
    version = tracking.register_version(p.tracking, uri, {"git_sha": "abc"})
    tracking.set_alias(p.tracking.model_name, "champion", version)
    assert tracking.alias_version(p.tracking.model_name, "champion") == version == "1"
    assert tracking.alias_version(p.tracking.model_name, "challenger") is None

    model = mlflow.pyfunc.load_model(f"models:/{p.tracking.model_name}@champion")
    x = np.random.default_rng(0).random((2, 1, 40, 56), dtype=np.float32)
    y = model.predict(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    # the same weights give the same answer outside MLflow
    net = checkpoint.load_model(store / "model")
    with torch.no_grad():
        ref = torch.sigmoid(net(torch.from_numpy(x[:1, :, :40, :40]))).numpy()
    sub = model.predict(np.ascontiguousarray(x[:1, :, :40, :40]))
    assert np.allclose(sub, ref, atol=1e-4)
    # `gbmseg predict --model models:/gbmseg-unet@champion` resolves the same weights
    resolved = tracking.load_model_ref(f"models:/{p.tracking.model_name}@champion")
    for a, b in zip(resolved.state_dict().values(), net.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # no pickled network: the model is code (serving.py) + a state_dict
    mlmodel = next(store.rglob("MLmodel"))
    assert "loader_module: mlflow.pyfunc.loaders.code_model" in mlmodel.read_text()
    assert (mlmodel.parent / "serving.py").is_file() and (
        mlmodel.parent / "artifacts" / "model.pt"
    ).is_file()
    assert not list(mlmodel.parent.rglob("*.pkl"))


@pytest.mark.slow
def test_stage_runs_of_one_pipeline_share_a_parent(store):
    from mlflow import MlflowClient

    p = tiny(store)
    with tracking.stage_run(p.tracking, "train", "group-x") as a:
        a.metrics({"loss": 1.0}, step=1)
    with tracking.stage_run(p.tracking, "evaluate", "group-x") as b:
        b.metrics({"dice": 0.5})
    client = MlflowClient()
    ra, rb = client.get_run(a.run_id), client.get_run(b.run_id)
    parent = ra.data.tags["mlflow.parentRunId"]
    assert parent == rb.data.tags["mlflow.parentRunId"]
    assert client.get_run(parent).data.tags["gbmseg.role"] == "pipeline"
    assert ra.data.metrics["loss"] == 1.0


def test_default_store_is_inside_the_project(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    p = tiny(tmp_path)
    assert tracking.resolve_uri(p.tracking, tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5555")
    assert tracking.resolve_uri(p.tracking, tmp_path) == "http://127.0.0.1:5555"


def test_setting_up_one_store_leaves_the_environment_alone(tmp_path, monkeypatch):
    """Two stages in one process with different stores each get their own: MLflow's habit of
    exporting MLFLOW_TRACKING_URI is undone, and the default store keeps its artifacts in the
    project (not in ./mlruns)."""
    import os

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    p = tiny(tmp_path)
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    exp = tracking.setup(p.tracking, first)
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    import mlflow

    location = mlflow.get_experiment(exp).artifact_location
    assert location == (first.resolve() / "mlartifacts").as_uri()
    tracking.setup(p.tracking, second)
    assert mlflow.get_tracking_uri() == f"sqlite:///{second.resolve()}/mlflow.db"
    assert tracking.resolve_uri(p.tracking, second) == mlflow.get_tracking_uri()


@pytest.mark.slow
@pytest.mark.integration
def test_mlflow_models_serve_answers_on_loopback(store):
    """`mlflow models serve --env-manager local` serves the registered model over HTTP."""
    import os
    import subprocess
    import urllib.request

    from tests.servers import BIN, free_port, wait_http

    p = tiny(store)
    _model_dir(store / "model")
    with tracking.stage_run(p.tracking, "register", "g-serve") as run:
        uri = run.log_model(store / "model", np.zeros((1, 1, 64, 64), np.float32))
    tracking.set_alias(
        p.tracking.model_name, "champion", tracking.register_version(p.tracking, uri, {})
    )
    port = free_port()
    cmd = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{p.tracking.model_name}@champion",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    log = open(store / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ping", timeout=120, proc=proc)
        x = np.random.default_rng(0).random((1, 1, 32, 48), dtype=np.float32)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"inputs": x.tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as r:
            body = json.loads(r.read())
        y = np.asarray(body["predictions"], np.float32)
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
        expected = mlflow.pyfunc.load_model(f"models:/{p.tracking.model_name}@champion").predict(x)
        np.testing.assert_allclose(y, expected, atol=1e-5)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
        log.close()
