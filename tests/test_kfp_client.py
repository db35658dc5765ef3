"""`gbmseg kfp submit|schedule`: what is sent to the KFP API (no cluster here, so the
client object is the one thing replaced), and a data_version that follows the data."""

import json
import shutil
from types import SimpleNamespace

import pytest

from gbmseg import kfp_client
from gbmseg.cli import main
from gbmseg.config import load
from gbmseg.kfp_entry import torchrun_command
from tests.conftest import ROOT

PACKAGE = ROOT / "pipelines" / "gbmseg_pipeline.yaml"


class RecordingClient:
    """Stands in for kfp.Client (a Kubernetes API server cannot run here)."""

    def __init__(self):
        self.calls = []

    def create_run_from_pipeline_package(self, pipeline_file, **kw):
        self.calls.append(("run", pipeline_file, kw))
        return SimpleNamespace(run_id="run-1")

    def get_experiment(self, experiment_name, namespace):
        raise ValueError(f"no experiment {experiment_name}")

    def create_experiment(self, name, namespace=None):
        self.calls.append(("experiment", name, {"namespace": namespace}))
        return SimpleNamespace(experiment_id="exp-1")

    def create_recurring_run(self, **kw):
        self.calls.append(("recurring", kw.get("job_name"), kw))
        return SimpleNamespace(recurring_run_id="rr-1")


@pytest.fixture
def data(tmp_path):
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    (raw / "images" / "a.png").write_bytes(b"one")
    return raw


@pytest.mark.faults  # fault case, listed with tests/faults/
def test_data_version_changes_with_the_data_and_only_with_it(data):
    v1 = kfp_client.fingerprint(str(data))
    assert kfp_client.fingerprint(str(data)) == v1
    (data / "images" / "a.png").write_bytes(b"two")
    v2 = kfp_client.fingerprint(str(data))
    assert v2 != v1
    shutil.copytree(data, data.parent / "copy")
    assert kfp_client.fingerprint(str(data.parent / "copy")) == v2  # content, not location


def test_submit_sends_params_yaml_and_data_version(data):
    p = load(ROOT / "params.yaml")
    tree = p.model_dump(mode="json", by_alias=True)
    client = RecordingClient()
    args = kfp_client.arguments(tree, p.kfp, str(data))
    assert kfp_client.submit(client, p.kfp, PACKAGE, args, "try") == "run-1"
    (kind, package, kw) = client.calls[0]
    assert kind == "run" and package == str(PACKAGE)
    assert kw["arguments"]["params"] == tree and kw["arguments"]["raw_uri"] == str(data)
    assert kw["arguments"]["data_version"] == kfp_client.fingerprint(str(data))
    assert kw["experiment_name"] == "gbmseg" and kw["namespace"] == "kubeflow"
    assert kw["enable_caching"] is True


@pytest.mark.faults  # fault case, listed with tests/faults/
def test_schedule_is_cron_single_concurrency_no_catchup(data):
    p = load(ROOT / "params.yaml")
    client = RecordingClient()
    args = kfp_client.arguments(p.model_dump(mode="json", by_alias=True), p.kfp, str(data))
    assert kfp_client.schedule(client, p.kfp, PACKAGE, args, "weekly") == "rr-1"
    assert client.calls[0][0] == "experiment"  # created when missing
    kw = client.calls[1][2]
    assert kw["cron_expression"] == p.kfp.cron == "0 0 3 * * 1"
    assert kw["max_concurrency"] == 1
    assert kw["no_catchup"] is True  # missed slots are never backfilled
    assert kw["enable_caching"] is False  # a schedule re-reads raw_uri: no stale cache
    assert kw["experiment_id"] == "exp-1" and kw["pipeline_package_path"] == str(PACKAGE)


def test_cli_dry_run_and_missing_package(data, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["kfp", "submit", "--dry-run", "--raw-uri", str(data)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["arguments"]["data_version"] == kfp_client.fingerprint(str(data))
    assert main(["kfp", "schedule", "--package", "nope.yaml", "--raw-uri", str(data)]) == 2


def test_cli_submit_uses_the_client(data, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    client = RecordingClient()
    monkeypatch.setattr(kfp_client, "connect", lambda kp: client)
    assert main(["kfp", "submit", "--raw-uri", str(data), "--run-name", "r"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == "run-1"
    assert client.calls[0][2]["run_name"] == "r"


def test_more_than_one_gpu_runs_under_torchrun():
    cmd = torchrun_command(["train", "--params", "p.yaml"], 4)
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "-m"]
    assert cmd[-4:] == ["gbmseg", "train", "--params", "p.yaml"]
