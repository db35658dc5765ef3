"""dvc.yaml as DVC reads it: the from-scratch baseline is a choice (`evaluate.baseline: ''`
takes its training out of the DAG), and a registry start with no baseline trains nothing from
scratch, yet `resolve` and `evaluate` still find the folder they depend on."""

import shutil

import pytest

from tests.models import dark_model, save
from tests.project import edit_params, run, synth_and_commit

FULL = ["validate@source", "validate@target", "augment@source", "augment@target"]
FULL += ["pack@source", "pack@target", "train@source", "train@target", "resolve"]
FULL += ["finetune", "evaluate", "register"]
OFF = [s for s in FULL if s != "train@target"]
TARGET_ONLY = [s for s in OFF if not s.endswith("@source")]
REGISTRY = ["finetune.pretrained=models:/gbmseg-unet@champion", "synth.source_images=0"]


def stage_names(proj) -> list[str]:
    """The stages of dvc.yaml as DVC expands it with the project's params."""
    out = run(proj, "dvc", "stage", "list", "--names-only").stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


@pytest.fixture
def proj(project_files, tmp_path):
    proj = shutil.copytree(project_files, tmp_path / "proj")
    run(proj, "git", "init", "-q")
    return proj


@pytest.mark.parametrize(
    ("overrides", "drop_source", "stages"),
    [
        ([], False, FULL),
        (["evaluate.baseline=''", "train.sets=[source]"], False, OFF),
        (["evaluate.baseline=''", "train.sets=[]", *REGISTRY], True, TARGET_ONLY),
    ],
    ids=["with-baseline", "baseline-off", "registry-start-no-baseline"],
)
def test_dvc_plans_the_baseline_only_when_it_is_scored(proj, overrides, drop_source, stages):
    edit_params(proj, *overrides, drop_source=drop_source)
    run(proj, "git", "add", "-A")
    assert sorted(stage_names(proj)) == sorted(stages)


def test_a_start_from_elsewhere_with_no_baseline_finds_the_folder_resolve_depends_on(proj):
    """Nothing is trained from scratch, so no stage writes models/train: the folder is in
    every clone (its README), or `dvc repro` fails on resolve's missing dependency."""
    lab_model = save(dark_model(), proj.parent / "lab_model")  # a model made elsewhere
    start = [f"finetune.pretrained={lab_model}", "synth.source_images=0"]
    edit_params(proj, "evaluate.baseline=''", "train.sets=[]", *start, drop_source=True)
    synth_and_commit(proj)
    assert not any((proj / "models" / "train").glob("*/model.pt"))
    out = run(proj, "dvc", "repro", "--single-item", "resolve").stdout
    assert "Running stage 'resolve'" in out
    assert (proj / "models" / "pretrained" / "pretrained.json").is_file()
