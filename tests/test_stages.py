"""The stages as the CLI, DVC and Kubeflow call them: the checks on the parameters as
written, and the keys that group and identify a pipeline run."""

from pathlib import Path

import pytest

from gbmseg import stages
from gbmseg.config import ConfigError
from tests.conftest import tiny
from tests.models import dark_model, save


def test_a_set_nothing_uses_is_refused_naming_the_fix(tmp_path):
    stages.check_sets(tiny(tmp_path))  # the source is finetune.pretrained's set: used
    p = tiny(tmp_path, "finetune.pretrained=models:/gbmseg-unet@champion")
    with pytest.raises(ConfigError, match=r"sets \['source'\] are neither finetune.target"):
        stages.check_sets(p)


def test_train_sets_must_train_the_pretraining_set_and_the_baseline_and_no_other(tmp_path):
    stages.check_sets(tiny(tmp_path))  # [source, target]: pretraining and baseline
    stages.check_sets(tiny(tmp_path, "evaluate.baseline=''", "train.sets=[source]"))
    cases = {
        "train.sets=[target]": r"does not train 'source': add it to train.sets",
        "train.sets=[source]": r"evaluate.baseline .* add its set to train.sets",
        "train.sets=[source, target, lab]": r"each must be a set in params.yaml `sets`",
        "train.sets=[source, source, target]": r"each must be a set .*, once",
    }
    for override, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            stages.check_sets(tiny(tmp_path, override))
    idle = tiny(tmp_path, "evaluate.baseline=''")  # the baseline switched off, still trained
    with pytest.raises(ConfigError, match=r"\['target'\] would be trained for nothing.*switched"):
        stages.check_sets(idle)


def test_a_set_outside_train_sets_is_not_trained_and_a_missing_baseline_is_named(tmp_path):
    p = tiny(tmp_path, "evaluate.baseline=''", "train.sets=[source]")
    with pytest.raises(ConfigError, match=r"'target' is not in train.sets \['source'\]"):
        stages.train(p, "target")
    p = tiny(tmp_path)
    save(dark_model(), Path(p.evaluate.model))  # the model scored is there, its baseline not
    with pytest.raises(ConfigError, match=r"evaluate.baseline .*: no model there; train it"):
        stages.evaluate(p)


def test_the_pipeline_group_follows_the_params_and_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GBMSEG_PIPELINE_RUN", raising=False)
    a, b = tiny(tmp_path), tiny(tmp_path, "train.lr=0.1")
    assert stages.pipeline_group(a) == stages.pipeline_group(tiny(tmp_path))
    assert stages.pipeline_group(a) != stages.pipeline_group(b)
    monkeypatch.setenv("GBMSEG_PIPELINE_RUN", "run-7")
    assert stages.pipeline_group(b) == "run-7"


def test_the_data_hash_is_the_dvc_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert stages.data_hash() == "untracked"
    (tmp_path / "data.dvc").write_text("outs:\n- md5: abc123.dir\n  path: data/raw\n")
    assert stages.data_hash() == "abc123.dir"
