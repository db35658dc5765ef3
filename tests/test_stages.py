"""The stages as the CLI, DVC and Kubeflow call them: the checks on the parameters as
written, and the keys that group and identify a pipeline run."""

import pytest

from gbmseg import stages
from gbmseg.config import ConfigError
from tests.conftest import tiny


def test_a_set_nothing_uses_is_refused_naming_the_fix(tmp_path):
    stages.check_sets(tiny(tmp_path))  # the source is finetune.pretrained's set: used
    p = tiny(tmp_path, "finetune.pretrained=models:/gbmseg-unet@champion")
    with pytest.raises(ConfigError, match=r"sets \['source'\] are neither finetune.target"):
        stages.check_sets(p)


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
