"""The command line: thin callers that turn bad input into one clear line and exit 2."""

import json

import pytest

from gbmseg.cli.app import build_parser, main
from gbmseg.cli.base import overrides
from tests.conftest import TINY, path_overrides, tiny


def _args(tmp_path, *extra):
    p = tiny(tmp_path)  # every path inside tmp_path
    paths = path_overrides(p)
    sets = [a for kv in [*TINY, *paths, *extra] for a in ("-S", kv)]
    return [*sets, "--no-track"]


def test_help_lists_every_step_in_pipeline_order(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    steps = ["synth", "validate", "augment", "pack", "train", "selfsup", "resolve", "finetune"]
    steps += ["evaluate"]
    at = [out.index(f"    {s} ") for s in [*steps, "register", "predict", "measure"]]
    assert at == sorted(at)


def test_flags_become_overrides_beside_dash_s():
    args = build_parser().parse_args(
        ["validate", "source", "--raw", "/data/isbi", "-S", "validate.min_images=2"]
    )
    assert overrides(args) == ["validate.min_images=2", "sets.source.raw=/data/isbi"]
    args = build_parser().parse_args(["predict", "x.png", "--tta", "--tile", "256"])
    assert overrides(args) == ["predict.tta=true", "predict.tile=256"]


def test_missing_data_folder_says_what_to_do(tmp_path, caplog):
    assert main(["validate", *_args(tmp_path)]) == 2
    assert f"{tmp_path}/raw/target: data folder not found" in caplog.text
    assert "gbmseg synth" in caplog.text and "dvc pull" in caplog.text
    assert not (tmp_path / "validated").exists()


def test_mask_without_image_is_named(tmp_path, caplog):
    assert main(["synth", *_args(tmp_path)]) == 0
    first = sorted((tmp_path / "raw" / "target" / "images").iterdir())[0]
    first.unlink()
    assert main(["validate", "target", *_args(tmp_path)]) == 2
    text = f"target/masks/{first.name}: expect_column_values_to_be_in_set(has_image)"
    assert text in caplog.text
    assert not (tmp_path / "validated").exists()


def test_unknown_override_key_is_rejected(tmp_path, caplog):
    assert main(["pack", *_args(tmp_path, "pack.tiel=3")]) == 2
    assert "unknown key 'pack.tiel'" in caplog.text


def test_an_unknown_set_is_named(tmp_path, caplog):
    assert main(["train", "lab", *_args(tmp_path)]) == 2
    assert "no set 'lab'" in caplog.text


def test_evaluate_without_a_model(tmp_path, caplog):
    assert main(["synth", *_args(tmp_path)]) == 0
    for step in ("validate", "augment", "pack"):
        assert main([step, "target", *_args(tmp_path)]) == 0
    assert main(["evaluate", *_args(tmp_path)]) == 2
    assert "no such checkpoint" in caplog.text and "gbmseg train" in caplog.text


def test_the_loop_chains_through_the_cli(tmp_path, capsys):
    """source -> pretrain -> resolve -> finetune on the target -> evaluate beside scratch."""
    assert main(["synth", *_args(tmp_path)]) == 0
    for name in ("source", "target"):
        for step in ("validate", "augment", "pack", "train"):
            assert main([step, name, *_args(tmp_path)]) == 0, (step, name)
    for step in ("resolve", "finetune", "evaluate"):
        assert main([step, *_args(tmp_path)]) == 0, step
    metrics = json.loads((tmp_path / "metrics" / "evaluate.json").read_text())
    assert 0 <= metrics["dice"] <= 1 and 0 <= metrics["baseline_dice"] <= 1
    assert metrics["n_images"] == 3  # the target's test/ folder
    assert (tmp_path / "models" / "finetune" / "model.pt").is_file()
    resolved = json.loads((tmp_path / "models" / "pretrained" / "pretrained.json").read_text())
    assert resolved["reference"].endswith("models/train/source") and resolved["images_seen"] > 0
