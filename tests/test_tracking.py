"""MLflow logging and registration against a real (sqlite) tracking store."""

import json

import numpy as np
import pytest
import torch

from gbmseg import tracking
from gbmseg.engine import checkpoint
from gbmseg.model.unet import build
from gbmseg.steps import register
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


def _register(p, tmp_path, group="g1"):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"dice": 0.9, "iou": 0.8}))
    with tracking.stage_run(p.tracking, "register", group) as run:
        return register.run(
            p.register_, p.tracking, tmp_path / "model", metrics, run, {"git_sha": "abc"}
        )


@pytest.mark.slow
def test_first_version_is_champion_then_challenger_and_model_serves(store):
    p = tiny(store)
    _model_dir(store / "model")
    first = _register(p, store)
    second = _register(p, store)
    assert (first["version"], first["alias"]) == ("1", "champion")
    assert (second["version"], second["alias"]) == ("2", "challenger")
    saved = json.loads((store / "reports" / "register" / "registration.json").read_text())
    assert saved["tags"]["git_sha"] == "abc" and saved["tags"]["test_dice"] == 0.9

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
    from gbmseg.steps import predict

    resolved = predict.resolve_model(f"models:/{p.tracking.model_name}@champion")
    for a, b in zip(resolved.state_dict().values(), net.state_dict().values(), strict=True):
        assert torch.equal(a, b)


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
