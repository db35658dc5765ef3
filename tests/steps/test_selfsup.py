"""selfsup: a U-Net pretrained on images without masks, never on a target test image, that
finetune starts from with a fresh head."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gbmseg import stages
from gbmseg.cli.app import main
from gbmseg.config import ConfigError
from gbmseg.data.io import DataError, read_image
from gbmseg.data.table import pixels_sha256
from gbmseg.engine import checkpoint
from gbmseg.steps import finetune, selfsup
from tests.conftest import TINY, path_overrides, prepared, tiny

SMALL = ["selfsup.steps=30", "selfsup.batch_size=4", "selfsup.tile=64"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A packed tiny target and a folder of its images without masks, one of them a copy of
    a target test image."""
    root = tmp_path_factory.mktemp("selfsup")
    unlabelled = root / "unlabelled"
    p = prepared(tiny(root, *SMALL, f"selfsup.unlabelled={{lab: {unlabelled}}}"))
    unlabelled.mkdir()
    for img in sorted((Path(p.target.raw) / "images").iterdir()):
        shutil.copy(img, unlabelled / img.name)
    test_image = sorted((Path(p.target.raw) / "test" / "images").iterdir())[0]
    shutil.copy(test_image, unlabelled / "copy_of_a_test_image.png")
    res = stages.selfsup(p, "lab")
    return root, p, res, test_image


def test_pretrains_and_publishes_a_model_that_saw_no_test_image(lab):
    _, p, res, test_image = lab
    model_dir, metrics, history = p.selfsup_paths("lab")
    assert res["images"] == 5 and res["left_out_test_images"] == 1
    assert json.loads(metrics.read_text()) == {k: v for k, v in res.items() if k != "out"}
    seen = json.loads((model_dir / "trained_on.json").read_text())
    assert seen["labelled"] is False and seen["images"] == 5
    assert pixels_sha256(read_image(test_image)) not in seen["pixels_sha256"]
    losses = np.loadtxt(history, delimiter=",", skiprows=1)
    assert losses.shape == (10, 2) and losses[-1, 1] < losses[0, 1]  # it learnt something
    model = checkpoint.load_model(model_dir)
    assert model.source_histogram() is not None  # auto's similarity rule has a reference


def test_finetune_starts_from_it_with_a_fresh_head_and_the_self_supervised_strategy(lab):
    root, p, _, _ = lab
    model_dir = p.selfsup_paths("lab")[0]
    tp = p.finetune_train_params().model_copy(
        update={"out": str(root / "ft"), "metrics": str(root / "ft.json"),
                "history": str(root / "ft.csv"), "checkpoints": str(root / "ft.ckpt")}
    )  # fmt: skip
    torch.manual_seed(0)
    res = finetune.run(p.finetune, tp, model_dir, p.paths("target").packed)
    assert res["strategy"] == p.finetune.auto.self_supervised == "full"
    report = json.loads((root / "ft" / "transfer_report.json").read_text())
    assert report["quadrant"] == "self-supervised"
    before = checkpoint.load(model_dir / "model.pt")["model"]
    after = checkpoint.load(root / "ft" / "model.pt")["model"]
    assert not torch.equal(before["head.weight"], after["head.weight"])
    seen = json.loads((root / "ft" / "trained_on.json").read_text())
    unlabelled = json.loads((model_dir / "trained_on.json").read_text())["pixels_sha256"]
    assert set(unlabelled) <= set(seen["pixels_sha256"])  # never a comparison test image


def test_a_folder_of_test_images_only_is_refused_and_nothing_is_written(lab, tmp_path):
    _, p, _, test_image = lab
    folder = tmp_path / "only_test"
    folder.mkdir()
    shutil.copy(test_image, folder / "x.png")
    exclude = {pixels_sha256(read_image(test_image))}
    paths = (tmp_path / "m", tmp_path / "m.json", tmp_path / "m.csv")
    with pytest.raises(DataError, match="no unlabelled image is left"):
        out, metrics, history = paths
        selfsup.run(
            p.selfsup, p.train.model, folder, out, metrics=metrics, history=history, exclude=exclude
        )
    assert not any(q.exists() for q in paths)


def test_an_unreadable_image_is_named(lab, tmp_path):
    _, p, _, _ = lab
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken\.png"):
        selfsup.run(
            p.selfsup,
            p.train.model,
            tmp_path,
            tmp_path / "m",
            metrics=tmp_path / "m.json",
            history=tmp_path / "m.csv",
        )
    assert not (tmp_path / "m").exists()


def test_names_and_crop_sizes_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="also name labelled sets"):
        tiny(tmp_path, "selfsup.unlabelled={target: x}")
    with pytest.raises(ConfigError, match=r"multiple of selfsup\.patch"):
        tiny(tmp_path, "selfsup.tile=72")
    with pytest.raises(ConfigError, match=r"'lab' is not named under selfsup\.unlabelled"):
        tiny(tmp_path).selfsup_paths("lab")


def test_the_command_runs_the_stage_and_names_the_next_step(lab, tmp_path, capsys):
    _, p, _, _ = lab
    unlabelled = p.selfsup.unlabelled["lab"]
    args = [*TINY, *SMALL, *path_overrides(p), f"train.out={tmp_path}/train"]
    args += [f"selfsup.unlabelled={{lab: {unlabelled}}}", f"selfsup.metrics={tmp_path}/m"]
    args += [f"selfsup.history={tmp_path}/h", f"pack.out={p.pack.out}"]
    assert main(["selfsup", "lab", *[a for kv in args for a in ("-S", kv)], "--no-track"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 5 and (tmp_path / "train" / "lab" / "model.pt").is_file()
    assert out["next"].startswith("set finetune.pretrained:")
