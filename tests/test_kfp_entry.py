"""What a Kubeflow component body runs: the same checks as the command line."""

import pytest

from gbmseg import kfp_entry
from gbmseg.config import ConfigError
from tests.conftest import tiny


def test_a_train_task_on_a_set_nothing_uses_is_refused_before_its_paths_go_in(tmp_path):
    p = tiny(tmp_path, "finetune.pretrained=models:/gbmseg-unet@champion")  # source unused
    tree = p.model_dump(mode="json", by_alias=True)
    paths = {"train.out": str(tmp_path / "artifact")}
    with pytest.raises(ConfigError, match=r"sets \['source'\] are neither finetune.target"):
        kfp_entry.run("train", tree, "group", paths, item="source", track=False)
    assert not (tmp_path / "artifact").exists()
