"""What a Kubeflow component body runs: the same checks as the command line."""

import tempfile

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


def test_every_stage_maps_its_artifacts_onto_real_params_keys(tmp_path):
    """Each stage's artifact roles land on keys params.yaml has, in the per-set layout."""
    p = tiny(tmp_path)
    tree = p.model_dump(mode="json", by_alias=True)
    assert set(kfp_entry.ARTIFACTS) == set(kfp_entry.STAGES)
    for step, mapping in kfp_entry.ARTIFACTS.items():
        roles = {r.split("}")[0] for v in mapping.values() for r in v.split("{")[1:]}
        artifacts = {r: str(tmp_path / r) for r in roles - {"item", "scratch"}}
        artifacts |= {"pretrained_item": "source"} if "pretrained_item" in roles else {}
        item = "kidney" if step == "selfsup" else "target"  # selfsup: an unlabelled folder
        paths = kfp_entry.artifact_paths(step, item, **artifacts)
        parsed = kfp_entry.validate_tree(kfp_entry.with_paths(tree, paths), step)
        assert paths, step
        if step == "evaluate":
            assert paths["evaluate.baseline"] == str(tmp_path / "baseline" / "target")
            assert parsed.evaluate.metrics == str(tmp_path / "report" / "metrics.json")
        if step == "finetune":
            assert parsed.resolve.out == str(tmp_path / "pretrained" / "source")
            assert parsed.train.checkpoints.startswith(tempfile.gettempdir())


def test_an_unknown_artifact_role_names_the_stage():
    with pytest.raises(KeyError, match="packed"):
        kfp_entry.artifact_paths("pack", "target", validated="/v", augmented="/a")
