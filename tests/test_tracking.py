"""MLflow logging and registration against a real (sqlite) tracking store."""

import numpy as np
import pytest
import torch

from gbmseg import tracking
from gbmseg.engine import checkpoint
from gbmseg.model.unet import build
from gbmseg.steps import predict
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
    checkpoint.save(path / "model.pt", {"model": m.state_dict(), "model_config": m.cfg.to_dict()})
    return path


@pytest.mark.slow
def test_logged_model_loads_predicts_and_resolves_by_alias(store):
    p = tiny(store)
    _model_dir(store / "model")
    example = np.zeros((1, 1, 64, 64), np.float32)
    with tracking.stage_run(p.tracking, "register", "g1") as run:
        uri = run.log_model(store / "model" / "model.pt", example)
    version = tracking.register_version(p.tracking, uri, {"git_sha": "abc"})
    tracking.set_alias(p.tracking.model_name, "champion", version)
    assert tracking.alias_version(p.tracking.model_name, "champion") == version == "1"
    assert tracking.alias_version(p.tracking.model_name, "challenger") is None

    model = tracking.load_pyfunc(f"models:/{p.tracking.model_name}@champion")
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
    resolved = predict.resolve_model(f"models:/{p.tracking.model_name}@champion")
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
