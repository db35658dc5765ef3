"""The checked-in compiled pipeline must match what the code compiles to."""

import pytest
import yaml

from gbmseg.config import load, validate_tree, without_nulls
from pipelines.gbmseg_pipeline import COMPILED, compile_pipeline
from tests.conftest import ROOT


def test_compiled_pipeline_is_up_to_date(tmp_path):
    fresh = list(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))
    committed = list(yaml.safe_load_all(COMPILED.read_text()))
    assert fresh == committed, "pipelines/gbmseg_pipeline.yaml is stale: run `make pipeline`"


def _spec() -> dict:
    return next(yaml.safe_load_all(COMPILED.read_text()))


def test_pipeline_defaults_come_from_params_yaml():
    spec = _spec()
    default = spec["root"]["inputDefinitions"]["parameters"]["params"]["defaultValue"]
    # Kubeflow parameter values cannot be null: a null in params.yaml is left out, and the
    # parsed defaults are the same
    assert default == without_nulls(yaml.safe_load((ROOT / "params.yaml").read_text()))
    assert validate_tree(default) == load(ROOT / "params.yaml")


def test_train_requests_a_gpu():
    spec = _spec()
    resources = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert (
        resources["accelerator"]["resourceCount"] == "1" or resources["accelerator"]["count"] == "1"
    )


def _platform():
    docs = list(yaml.safe_load_all(COMPILED.read_text()))
    return docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


def test_gpu_tasks_get_the_pool_and_every_task_the_secrets():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["kfp"]
    spec = _spec()
    platform = _platform()
    gpu_tasks = ["exec-train", "exec-train-2", "exec-selfsup"]
    for gpu_task in [*gpu_tasks, "exec-finetune", "exec-finetune-2", "exec-finetune-3"]:
        cfg = platform[gpu_task]
        assert cfg["nodeSelector"]["labels"] == params["gpu_pool"]["node_selector"]
        assert cfg["tolerations"][0]["key"] == "nvidia.com/gpu"
        res = spec["deploymentSpec"]["executors"][gpu_task]["container"]["resources"]
        assert res["accelerator"]["resourceType"] == "nvidia.com/gpu"
    for name, cfg in platform.items():
        secrets = {s["secretName"] for s in cfg["secretAsEnv"]}
        assert secrets == set(params["secrets"]), name
    for name, ex in spec["deploymentSpec"]["executors"].items():
        if name.startswith("exec-importer"):
            continue
        assert ex["container"]["resources"]["resourceCpuRequest"], name


@pytest.mark.faults  # fault case, listed with tests/faults/
def test_changed_data_changes_the_validate_cache_key():
    """data_version is an input of validate: KFP's cache key covers it."""
    spec = _spec()
    task = spec["root"]["dag"]["tasks"]["validate"]
    src = task["inputs"]["parameters"]["data_version"]
    assert src["componentInputParameter"] == "data_version"
    branch = spec["components"]["comp-condition-2"]["dag"]["tasks"]["validate-2"]
    assert branch["inputs"]["parameters"]["data_version"]["componentInputParameter"] == (
        "pipelinechannel--data_version"
    )


def test_stage_equals_subcommand_equals_component_equals_section():
    from kfp.dsl.base_component import BaseComponent

    from components import gbmseg_components
    from gbmseg.cli.app import COMMANDS

    stages = set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    sections = set(yaml.safe_load((ROOT / "params.yaml").read_text()))
    components = {n for n, v in vars(gbmseg_components).items() if isinstance(v, BaseComponent)}
    expected = {"validate", "augment", "pack", "train", "selfsup", "resolve", "finetune"}
    expected |= {"evaluate"}
    assert stages == expected | {"register"}
    # suggest ends a scheduled run; under DVC it is the command the lab runs between two
    # `dvc repro`s (its drafts are edited by hand, not a tracked output)
    assert components == stages | {"suggest"}
    assert components <= set(COMMANDS) and components <= sections
