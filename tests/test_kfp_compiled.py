"""The checked-in compiled pipeline must match what the code compiles to."""

import yaml

from pipelines.gbmseg_pipeline import COMPILED, compile_pipeline
from tests.conftest import ROOT


def test_compiled_pipeline_is_up_to_date(tmp_path):
    fresh = yaml.safe_load(compile_pipeline(tmp_path / "p.yaml").read_text())
    committed = yaml.safe_load(COMPILED.read_text())
    assert fresh == committed, "pipelines/gbmseg_pipeline.yaml is stale: run `make pipeline`"


def test_pipeline_defaults_come_from_params_yaml():
    spec = yaml.safe_load(COMPILED.read_text())
    default = spec["root"]["inputDefinitions"]["parameters"]["params"]["defaultValue"]
    assert default == yaml.safe_load((ROOT / "params.yaml").read_text())


def test_train_requests_a_gpu():
    spec = yaml.safe_load(COMPILED.read_text())
    resources = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert (
        resources["accelerator"]["resourceCount"] == "1" or resources["accelerator"]["count"] == "1"
    )
