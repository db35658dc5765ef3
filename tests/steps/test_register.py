"""register: exactly the model evaluate scored, a fair comparison (only test images neither
model saw, enough of them), and a champion that cannot be loaded is kept."""

import json
import shutil

import pytest

from gbmseg import tracking
from gbmseg.data.io import DataError
from gbmseg.steps import register
from tests.registry_world import eval_params, register_model, target_of


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)  # the local artifact root lands here
    return tmp_path


def _reg(root, p, name, **update):
    q = p.model_copy(update={"register_": p.register_.model_copy(update=update)})
    return register_model(root, q, name)


def test_a_model_other_than_the_evaluated_one_is_refused(world, store):
    root, p = world
    other = store / "other"
    shutil.copytree(root / "bad" / "model", other)
    with (
        tracking.stage_run(p.tracking, "register", "g") as run,
        pytest.raises(DataError, match="is not the model evaluate scored"),
    ):
        register.run(
            p.register_,
            p.tracking,
            eval_params(root, p, "good"),
            target_of(p)[0],
            run_log=run,
            model_dir=other,
        )
    assert tracking.alias_version(p.tracking.model_name, "challenger") is None
    assert tracking.find_version(p.tracking.model_name, "x") is None


def test_too_few_unseen_test_images_keep_the_champion(world, store):
    root, p = world
    assert _reg(root, p, "bad")["alias"] == "champion"
    res = _reg(root, p, "good", min_test_images=6)
    assert not res["decision"]["promote"] and res["alias"] == "challenger"
    assert "fewer than register.min_test_images = 6" in res["decision"]["reason"]
    assert tracking.alias_version(p.tracking.model_name, "champion") == "1"
    assert _reg(root, p, "good", min_test_images=5)["decision"]["promote"]  # 5 test images


def test_an_unloadable_champion_is_kept_unless_replacing_it_is_asked_for(world, store):
    root, p = world
    assert _reg(root, p, "good")["alias"] == "champion"
    stored = [f for f in store.rglob("model.pt") if f.parent.name == "artifacts"]
    assert stored  # the champion's weights in the artifact store
    for f in stored:
        f.write_bytes(b"not a checkpoint any more")
    res = _reg(root, p, "bad")
    assert not res["decision"]["promote"]
    assert "cannot be loaded" in res["decision"]["reason"]
    assert "replace_broken_champion" in res["decision"]["reason"]
    assert tracking.alias_version(p.tracking.model_name, "champion") == "1"
    res = _reg(root, p, "bad", replace_broken_champion=True)
    assert res["decision"]["promote"] and res["alias"] == "champion"


def test_images_a_model_saw_never_count_as_test_images(world, store):
    root, p = world
    assert _reg(root, p, "bad")["alias"] == "champion"
    table = (root / "good" / "eval" / "per_image.csv").read_text().splitlines()
    seen_by_pretraining = table[1].split(",")[-1]  # a test image the start model trained on
    path = root / "good" / "model" / "trained_on.json"
    before = path.read_text()
    doc = json.loads(before)
    path.write_text(
        json.dumps({**doc, "pixels_sha256": [*doc["pixels_sha256"], seen_by_pretraining]})
    )
    try:
        res = _reg(root, p, "good")
    finally:
        path.write_text(before)
    assert res["decision"]["test_images_left_out"] == 1
    assert res["decision"]["images"] == len(table) - 2  # header, and the one seen image
