"""The command line: thin callers that turn bad input into one clear line and exit 2."""

import json
import shutil

import pytest

from gbmseg.cli import main
from tests.conftest import TINY


def _args(tmp_path, *extra):
    paths = [
        f"data.raw={tmp_path}/raw",
        f"validate.out={tmp_path}/validated",
        f"augment.out={tmp_path}/augmented",
        f"pack.out={tmp_path}/packed",
        f"train.out={tmp_path}/model",
        f"train.metrics={tmp_path}/train.json",
        f"train.history={tmp_path}/history.csv",
        f"evaluate.out={tmp_path}/ev",
        f"evaluate.metrics={tmp_path}/evaluate.json",
    ]
    sets = [a for kv in [*TINY, *paths, *extra] for a in ("-S", kv)]
    return [*sets, "--no-track"]


def test_help_lists_every_step(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for step in ("synth", "validate", "augment", "pack", "train", "evaluate", "register"):
        assert step in out


def test_missing_data_folder_says_what_to_do(tmp_path, caplog):
    assert main(["validate", *_args(tmp_path)]) == 2
    assert f"{tmp_path}/raw: data folder not found" in caplog.text
    assert "gbmseg synth" in caplog.text and "dvc pull" in caplog.text
    assert not (tmp_path / "validated").exists()


def test_mask_without_image_is_named(tmp_path, caplog):
    assert main(["synth", *_args(tmp_path)]) == 0
    first = sorted((tmp_path / "raw" / "images").iterdir())[0]
    first.unlink()
    assert main(["validate", *_args(tmp_path)]) == 2
    assert f"raw/masks/{first.name}: expect_column_values_to_be_in_set(has_image)" in caplog.text
    assert not (tmp_path / "validated").exists()


def test_unknown_override_key_is_rejected(tmp_path, caplog):
    assert main(["pack", *_args(tmp_path, "pack.tiel=3")]) == 2
    assert "unknown key 'pack.tiel'" in caplog.text


def test_evaluate_without_a_model(tmp_path, caplog):
    assert main(["synth", *_args(tmp_path)]) == 0
    for step in ("validate", "augment", "pack"):
        assert main([step, *_args(tmp_path)]) == 0
    assert main(["evaluate", *_args(tmp_path)]) == 2
    assert "no such checkpoint" in caplog.text and "gbmseg train" in caplog.text


def test_steps_chain_through_the_cli(tmp_path, capsys):
    assert main(["synth", *_args(tmp_path)]) == 0
    for step in ("validate", "augment", "pack", "train", "evaluate"):
        assert main([step, *_args(tmp_path)]) == 0, step
    metrics = json.loads((tmp_path / "evaluate.json").read_text())
    assert 0 <= metrics["dice"] <= 1 and metrics["n_images"] == 2
    assert (tmp_path / "model" / "model.pt").is_file()
    shutil.rmtree(tmp_path / "model.ckpt")
