"""S3 against a real S3-compatible server on loopback (moto's server mode): the storage
module's verified folder copies, `dvc push` / `dvc pull` into a fresh clone, and MLflow
artifacts landing in the bucket and loading back."""

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gbmseg import storage
from tests.conftest import ROOT
from tests.servers import S3_CREDENTIALS, free_port, s3_server

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    logs = tmp_path_factory.mktemp("s3logs")
    with s3_server(logs) as url:
        yield url


@pytest.fixture
def s3_env(s3, monkeypatch):
    for k, v in {**S3_CREDENTIALS, "AWS_ENDPOINT_URL_S3": s3}.items():
        monkeypatch.setenv(k, v)
    return s3


def _files(root: Path) -> dict[str, str]:
    return {
        q.relative_to(root).as_posix(): hashlib.sha256(q.read_bytes()).hexdigest()
        for q in sorted(root.rglob("*"))
        if q.is_file()
    }


def test_folder_round_trip_with_marker_and_checksums(s3_env, tmp_path):
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "images" / "a.png").write_bytes(os.urandom(5000))
    (src / "meta.json").write_text('{"x": 1}')
    storage.ensure_bucket("bkt")
    storage.upload_dir(src, "s3://bkt/raw")
    assert sorted(storage.list_keys("s3://bkt/raw")) == [
        "raw/_COMPLETE",
        "raw/images/a.png",
        "raw/meta.json",
    ]
    storage.download_dir("s3://bkt/raw", tmp_path / "back")
    assert _files(tmp_path / "back") == _files(src)


def test_unfinished_upload_and_tampered_object_are_refused(s3_env, tmp_path):
    s3 = storage.client()
    storage.ensure_bucket("bkt2")
    s3.put_object(Bucket="bkt2", Key="half/images/a.png", Body=b"partial")  # no marker
    with pytest.raises(storage.StorageError, match="no _COMPLETE marker"):
        storage.download_dir("s3://bkt2/half", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.bin").write_bytes(b"good")
    storage.upload_dir(src, "s3://bkt2/ok")
    s3.put_object(Bucket="bkt2", Key="ok/f.bin", Body=b"evil")
    with pytest.raises(storage.StorageError, match="sha256 differs"):
        storage.download_dir("s3://bkt2/ok", tmp_path / "y")
    assert not (tmp_path / "y").exists()


def test_endpoint_down_is_retried_then_one_clear_error(monkeypatch):
    for k, v in S3_CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    dead = f"http://127.0.0.1:{free_port()}"
    t0 = time.time()
    with pytest.raises(storage.StorageError, match=r"after retries.*AWS_ENDPOINT_URL_S3"):
        storage.ensure_bucket("b", storage.client(dead, attempts=3, timeout=1))
    assert time.time() - t0 < 30


def _dvc(cwd: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )


@pytest.mark.slow
def test_dvc_push_then_pull_into_a_fresh_clone(s3_env, tmp_path):
    """The project's own remote `s3` (from .dvc/config), endpoint set per clone (--local)."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        subprocess.run(["git", "clone", "-q", str(ROOT), str(d)], check=True)
        _dvc(d, "remote", "modify", "--local", "s3", "endpointurl", s3_env, env=env)
    subprocess.run([str(BIN / "gbmseg"), "synth"], cwd=a, env=env, check=True, capture_output=True)
    _dvc(a, "commit", "-f", "data.dvc", env=env)  # into the cache, hash checked vs data.dvc
    assert not subprocess.run(
        ["git", "status", "--porcelain"], cwd=a, capture_output=True, text=True
    ).stdout.strip()  # data.dvc unchanged: same hash
    storage.ensure_bucket("gbmseg-dvc")
    _dvc(a, "push", "data.dvc", env=env)
    assert any(k.startswith("store/") for k in storage.list_keys("s3://gbmseg-dvc/store"))
    assert not (b / "data" / "raw").exists()
    _dvc(b, "pull", "data.dvc", env=env)
    assert _files(b / "data" / "raw") == _files(a / "data" / "raw")
    assert len(_files(b / "data" / "raw")) > 10


@pytest.mark.slow
def test_mlflow_artifacts_land_in_the_bucket_and_load_back(s3, tmp_path, monkeypatch):
    from gbmseg import tracking
    from gbmseg.config import TrackingParams
    from gbmseg.engine import checkpoint
    from gbmseg.model.unet import build
    from gbmseg.tracking import load_model_ref
    from tests.servers import mlflow_server

    server_env = {**S3_CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": s3}
    for k, v in S3_CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3)
    storage.ensure_bucket("gbmseg-mlflow")
    backend = f"sqlite:///{tmp_path}/mlflow.db"
    with mlflow_server(backend, "s3://gbmseg-mlflow/artifacts", server_env, tmp_path) as url:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        tp = TrackingParams(uri="", experiment="s3", model_name="s3-unet")
        torch.manual_seed(0)
        model = build({"depth": 2, "base": 4})
        folder = tmp_path / "model"
        checkpoint.save(folder / "model.pt", checkpoint.model_state(model))
        with tracking.stage_run(tp, "register", "s3-test") as run:
            uri = run.log_model(folder, np.zeros((1, 1, 16, 16), np.float32))
            version = tracking.register_version(tp, uri, {})
        keys = storage.list_keys("s3://gbmseg-mlflow/artifacts")
        assert any(k.endswith("/MLmodel") for k in keys), keys
        assert any(k.endswith("model.pt") for k in keys), keys
        back = load_model_ref(f"models:/s3-unet/{version}")
    for k, v in model.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
