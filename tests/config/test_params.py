from pathlib import Path

import pytest
import yaml

from gbmseg.config import ConfigError, apply_override, load
from tests.conftest import ROOT


def _write(tmp_path: Path, tree: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def _tree() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_project_params_load_and_every_section_present():
    p = load(ROOT / "params.yaml")
    sections = ("sets", "synth", "validate", "augment", "pack", "train", "selfsup", "resolve")
    for name in (*sections, "register"):
        assert p.section(name) is not None
    assert p.train.model.depth >= 1


def test_unknown_key_is_rejected_with_its_name(tmp_path):
    tree = _tree()
    tree["train"]["epochz"] = 3
    with pytest.raises(ConfigError, match=r"unknown key 'train\.epochz'"):
        load(_write(tmp_path, tree))


def test_unknown_section_is_rejected(tmp_path):
    tree = _tree()
    tree["trian"] = {"epochs": 1}
    with pytest.raises(ConfigError, match="unknown key 'trian'"):
        load(_write(tmp_path, tree))


def test_missing_key_is_named(tmp_path):
    tree = _tree()
    del tree["pack"]["tile"]
    with pytest.raises(ConfigError, match=r"missing key 'pack\.tile'"):
        load(_write(tmp_path, tree))


def test_mistyped_value_is_named(tmp_path):
    tree = _tree()
    tree["train"]["epochs"] = "many"
    with pytest.raises(ConfigError, match=r"'train\.epochs'.*many"):
        load(_write(tmp_path, tree))


def test_override_like_dvc_exp_run():
    p = load(
        ROOT / "params.yaml",
        ["train.epochs=3", "augment.rotate.limit=5", "sets.target.positive=white"],
    )
    assert p.train.epochs == 3
    assert p.augment.rotate.limit == 5.0
    assert p.target_positive == "white"


def test_override_of_unknown_key_fails():
    with pytest.raises(ConfigError, match=r"unknown key 'train\.nope'"):
        load(ROOT / "params.yaml", ["train.nope=1"])


def test_malformed_override_fails():
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        apply_override({}, "train.epochs")


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="no such parameters file"):
        load(tmp_path / "params.yaml")


def test_split_fractions_must_leave_training_images():
    with pytest.raises(ConfigError, match="val_fraction"):
        load(ROOT / "params.yaml", ["pack.val_fraction=0.5", "pack.test_fraction=0.5"])


def test_digest_changes_with_params():
    a = load(ROOT / "params.yaml")
    b = load(ROOT / "params.yaml", ["train.lr=0.5"])
    assert a.digest() != b.digest()
    assert a.digest() == load(ROOT / "params.yaml").digest()


def test_every_set_gets_its_own_folders_and_the_baseline_its_own_budget():
    p = load(ROOT / "params.yaml", ["train.epochs=40", "train.baseline_epochs=7"])
    sp = p.paths("source")
    assert sp.validated.as_posix() == "data/validated/source"
    assert sp.packed.as_posix() == "data/packed/source"
    assert sp.split_file.as_posix() == "splits/source.csv"
    assert p.train_params("source").epochs == 40 and p.train_params("target").epochs == 7
    assert p.train_params("target").out == "models/train/target"
    assert p.finetune_train_params().lr == p.finetune.lr
    assert p.pretrained_set() == "source" and p.unused_sets() == []
    assert p.baseline_set() == "target"
    off = load(ROOT / "params.yaml", ["evaluate.baseline=''", "train.baseline_epochs=7"])
    assert off.baseline_set() is None and off.train_params("source").epochs == 40


def test_target_must_be_a_set():
    with pytest.raises(ConfigError, match=r"finetune\.target 'lab' is not one of sets"):
        load(ROOT / "params.yaml", ["finetune.target=lab"])


def test_a_set_nothing_uses_is_refused_by_the_train_command():
    from gbmseg import stages

    p = load(ROOT / "params.yaml", ["finetune.pretrained=models:/gbmseg-unet@champion"])
    assert p.pretrained_set() is None and p.unused_sets() == ["source"]
    with pytest.raises(ConfigError, match=r"sets \['source'\] are neither"):
        stages.check_sets(p)


def test_rooted_moves_every_output_path_and_only_those(tmp_path):
    from gbmseg.config.params import OUTPUT_PATHS

    p = load(ROOT / "params.yaml")
    r = p.rooted(tmp_path)
    for section, keys in OUTPUT_PATHS.items():
        for key in keys:
            before, after = getattr(p.section(section), key), getattr(r.section(section), key)
            assert after == (str(tmp_path / before) if before else before), (section, key)
    assert r.sets == p.sets  # inputs stay where they are ...
    assert r.paths("target").validated == tmp_path / p.paths("target").validated
    moved = p.rooted(tmp_path, raw=True)  # ... unless asked
    assert moved.target.raw == str(tmp_path / p.target.raw)
    registry = load(ROOT / "params.yaml", ["finetune.pretrained=models:/m@champion"])
    assert registry.rooted(tmp_path).finetune.pretrained == "models:/m@champion"
