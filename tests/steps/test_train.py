"""train: a model folder that records what it was trained on, its pixel size included."""

import json

from gbmseg import stages
from gbmseg.engine.checkpoint import load_model
from tests.conftest import prepared, tiny


def test_the_model_records_the_pixel_size_it_was_trained_at(tmp_path):
    p = prepared(tiny(tmp_path, "train.epochs=1"))
    stages.train(p, "target")
    folder = tmp_path / "models" / "train" / "target"
    seen = json.loads((folder / "trained_on.json").read_text())
    assert seen["pixel_size_nm"] == p.synth.pixel_size_nm
    assert seen["images"] == len(seen["pixels_sha256"]) > 0
    assert load_model(folder).pixel_size_nm() == p.synth.pixel_size_nm  # inside model.pt too
