"""The training lifecycle around the trainer: what a model saw, its scale, its published
folder and the curves it reports."""

import json

import numpy as np

from gbmseg.engine import lifecycle
from gbmseg.engine.checkpoint import load_model
from tests.engine.common import data
from tests.models import dark_model


def manifest(folder, nm, train, val=(), test=()):
    folder.mkdir(parents=True)
    splits = {
        s: {"pixels_sha256": list(h)} for s, h in (("train", train), ("val", val), ("test", test))
    }
    (folder / "manifest.json").write_text(json.dumps({"pixel_size_nm": nm, "splits": splits}))
    return folder


def test_seen_images_are_train_and_val_never_test(tmp_path):
    a = manifest(tmp_path / "a", 20.0, ["t1"], ["v1"], ["x1"])
    b = manifest(tmp_path / "b", 20.0, ["t2", "t1"])
    assert lifecycle.seen_images([a, b]) == ["t1", "t2", "v1"]
    assert lifecycle.packed_pixel_size([a, b]) == 20.0
    c = manifest(tmp_path / "c", 10.0, ["t3"])
    assert lifecycle.packed_pixel_size([a, c]) is None  # two scales: none recorded


def test_the_published_folder_says_what_the_model_saw(tmp_path):
    out = tmp_path / "model"
    lifecycle.write_model_folder(out, dark_model(12.5), "selfsup", {}, ["h1"], labelled=False)
    assert lifecycle.read_trained_on(out) == ["h1"]
    assert not lifecycle.learnt_from_labels(out)
    assert json.loads((out / "trained_on.json").read_text())["pixel_size_nm"] == 12.5
    assert load_model(out).pixel_size_nm() == 12.5
    assert lifecycle.learnt_from_labels(tmp_path / "no_such_model")  # unknown: labelled


def test_curves_and_history(tmp_path):
    hist = [{"epoch": i + 1, "loss": 1.0 / (i + 1), "val_dice": 0.5 + i / 10} for i in range(3)]
    csv = lifecycle.history_csv(hist)
    assert csv.splitlines()[0].split(",")[:3] == ["epoch", "loss", "val_dice"]
    assert len(csv.splitlines()) == 4
    assert lifecycle.curves_png(hist)[:4] == b"\x89PNG"


def test_the_online_transform_keeps_masks_binary_and_aligned():
    x, y = data(n=2, size=64)
    tf = lifecycle.online_transform(__import__("tests.conftest").conftest.params().augment, 64, 0)
    img, msk = tf(x[0], y[0])
    assert img.shape == msk.shape == (64, 64) and set(np.unique(msk)) <= {0, 1}
