"""`gbmseg kfp submit|schedule`: what is sent to the KFP API (no cluster here, so the
client object is the one thing replaced), and a data_version that follows the data."""

import json
import shutil
from types import SimpleNamespace

import pytest

from gbmseg import kfp_client
from gbmseg.cli.app import main
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


def _args(p, data, pretrained=None):
    tree = p.model_dump(mode="json", by_alias=True)
    return tree, kfp_client.arguments(tree, p, str(data), str(data), pretrained)


def test_submit_sends_params_yaml_splits_and_data_version(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the project's split files: the target's exists, not the source's
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "target.csv").write_text("image,split\na.png,test\nb.png,train\n")
    p = load(ROOT / "params.yaml")
    tree, args = _args(p, data)
    client = RecordingClient()
    assert kfp_client.submit(client, p.kfp, PACKAGE, args, "try") == "run-1"
    (kind, package, kw) = client.calls[0]
    assert kind == "run" and package == str(PACKAGE)
    sent = kw["arguments"]
    assert sent["params"] == tree and sent["target_uri"] == sent["source_uri"] == str(data)
    assert sent["pretrained"] == ""  # pretrain on the source set, as finetune.pretrained says
    assert sent["splits"] == {"target": {"a.png": "test", "b.png": "train"}}
    assert len(sent["data_version"]) == 20
    assert kw["experiment_name"] == "gbmseg" and kw["namespace"] == "kubeflow"
    assert kw["enable_caching"] is True


def test_a_registry_start_skips_the_source(data):
    p = load(ROOT / "params.yaml", ["finetune.pretrained=models:/gbmseg-unet@champion"])
    _, args = _args(p, data)
    assert args["pretrained"] == "models:/gbmseg-unet@champion" and args["source_uri"] == ""
    _, forced = _args(load(ROOT / "params.yaml"), data, "models:/m@champion")
    assert forced["pretrained"] == "models:/m@champion"


def test_a_selfsup_start_sends_the_unlabelled_images_instead_of_the_source(data, tmp_path):
    extra = [f"selfsup.unlabelled={{lab: {tmp_path}}}", "finetune.pretrained=models/train/lab"]
    p = load(ROOT / "params.yaml", extra)
    args = kfp_client.arguments({}, p, "s3://not/read", str(data), None, str(data))
    assert args["pretrained"] == "selfsup" and args["source_uri"] == ""
    assert args["unlabelled_uri"] == str(data)
    _, default = _args(load(ROOT / "params.yaml"), data)
    assert default["pretrained"] == "" and default["unlabelled_uri"] == ""


@pytest.mark.faults  # fault case, listed with tests/faults/
def test_schedule_is_cron_single_concurrency_no_catchup(data):
    p = load(ROOT / "params.yaml")
    client = RecordingClient()
    _, args = _args(p, data, "models:/gbmseg-unet@champion")
    assert kfp_client.schedule(client, p.kfp, PACKAGE, args, "weekly") == "rr-1"
    assert client.calls[0][0] == "experiment"  # created when missing
    kw = client.calls[1][2]
    assert kw["cron_expression"] == p.kfp.cron == "0 0 3 * * 1"
    assert kw["max_concurrency"] == 1
    assert kw["no_catchup"] is True  # missed slots are never backfilled
    assert kw["enable_caching"] is False  # a schedule re-reads the data: no stale cache
    assert kw["experiment_id"] == "exp-1" and kw["pipeline_package_path"] == str(PACKAGE)
    assert kw["params"]["pretrained"] == "models:/gbmseg-unet@champion"


def test_cli_dry_run_and_missing_package(data, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    uris = ["--source-uri", str(data), "--target-uri", str(data)]
    assert main(["kfp", "submit", "--dry-run", *uris]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["arguments"]["data_version"]) == 20
    assert main(["kfp", "schedule", "--package", "nope.yaml", *uris]) == 2


def test_cli_submit_uses_the_client(data, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    client = RecordingClient()
    monkeypatch.setattr(kfp_client, "connect", lambda kp: client)
    uris = ["--source-uri", str(data), "--target-uri", str(data)]
    assert main(["kfp", "submit", *uris, "--run-name", "r"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == "run-1"
    assert client.calls[0][2]["run_name"] == "r"


def test_more_than_one_gpu_runs_under_torchrun():
    cmd = torchrun_command(["train", "--params", "p.yaml"], 4)
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4", "-m"]
    assert cmd[-4:] == ["gbmseg", "train", "--params", "p.yaml"]
