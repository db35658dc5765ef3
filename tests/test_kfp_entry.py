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


def test_a_suggest_task_ranks_the_imported_images_with_the_runs_model(tmp_path):
    from gbmseg import stages
    from gbmseg.data.io import write_png
    from tests.models import dark_model, membrane_image, save

    p = tiny(tmp_path, "suggest.tile=64", "suggest.top=2")
    stages.synth(p)
    for step in (stages.validate, stages.augment, stages.pack):
        step(p, "target")
    pool = tmp_path / "imported"
    for i in range(3):
        write_png(pool / f"u{i}.png", membrane_image(64, width=6.0 + 3 * i, seed=i)[0])
    artifacts = {"model": str(save(dark_model(), tmp_path / "model")), "packed": p.pack.out,
                 "unlabelled": str(pool), "drafts": str(tmp_path / "drafts")}  # fmt: skip
    paths = kfp_entry.artifact_paths("suggest", None, **artifacts)
    tree = p.model_dump(mode="json", by_alias=True)
    res = kfp_entry.run("suggest", tree, "group", paths, track=False)
    assert res["ranked"] == 3 and len(res["drafts"]) == 2
    assert sorted(f.name for f in (tmp_path / "drafts").glob("*.json")) == sorted(
        d.replace(".png", ".json") for d in res["drafts"]
    )
