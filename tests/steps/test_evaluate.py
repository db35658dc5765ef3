"""evaluate: the packed set's test images scored whole; a perfect and a useless model read
as such; the baseline, sweep, thickness agreement and report files are written."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gbmseg.engine import checkpoint
from gbmseg.model.unet import build
from gbmseg.steps import evaluate
from tests.conftest import prepared, tiny
from tests.models import dark_model, save


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    p = prepared(tiny(root, "synth.target_test_images=3"))
    save(dark_model(20.0), root / "dark")
    torch.manual_seed(0)
    blank = build({"depth": 1, "base": 1, "norm": "none"})
    with torch.no_grad():
        blank.head.bias.fill_(-20.0)  # says "no membrane" everywhere
    (root / "blank").mkdir()
    checkpoint.save(root / "blank" / "model.pt", checkpoint.model_state(blank))
    return root, p


def test_the_dark_structure_model_beats_one_that_finds_nothing(lab):
    root, p = lab
    sp = p.paths("target")
    res = evaluate.run(
        p.evaluate, root / "dark", sp.validated, sp.packed,
        baseline_dir=root / "blank", thickness=p.measure,
    )  # fmt: skip
    assert res["n_images"] == 3
    assert res["dice"] > 0.6 and res["baseline_dice"] == 0.0
    assert res["dice_gain_over_baseline"] == pytest.approx(res["dice"], abs=1e-5)
    assert "thickness_medial_median_mean_abs_rel_diff" in res
    out = Path(p.evaluate.out)
    table = pd.read_csv(out / "per_image.csv")
    assert len(table) == 3 and set(table["baseline_dice"]) == {0.0}
    sweep = pd.read_csv(out / "threshold_sweep.csv")
    assert sweep["threshold"].is_monotonic_increasing and len(sweep) > 3
    for name in ("thickness_agreement.png", "comparison.png", "threshold_sweep.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    scored = json.loads((out / "scored_model.json").read_text())
    assert scored["sha256"] == res["model_sha256"] and len(scored["test_images"]) == 3
    assert json.loads(Path(p.evaluate.metrics).read_text())["dice"] == res["dice"]
    assert res["threshold"] == 0.5  # the model records none: 0.5


def test_the_threshold_recorded_with_the_model_is_the_one_scored(lab, tmp_path):
    root, p = lab
    sp = p.paths("target")
    model = checkpoint.load_model(root / "dark")
    model.set_threshold(0.999999)  # all but certain: hardly anything is membrane
    save(model, tmp_path / "strict")
    e = p.evaluate.model_copy(
        update={"out": str(tmp_path / "e"), "metrics": str(tmp_path / "m.json")}
    )
    strict = evaluate.run(e, tmp_path / "strict", sp.validated, sp.packed)
    assert strict["threshold"] == pytest.approx(0.999999)
    assert (
        strict["dice"]
        < evaluate.run(
            e.model_copy(update={"threshold": 0.5}), tmp_path / "strict", sp.validated, sp.packed
        )["dice"]
    )


def test_the_test_images_are_those_the_pack_step_set_aside(lab):
    _, p = lab
    names, hashes = evaluate.test_images(p.paths("target").packed)
    manifest = json.loads((p.paths("target").packed / "manifest.json").read_text())
    assert names == manifest["splits"]["test"]["sources"] and len(hashes) == len(names)
    assert not set(names) & set(manifest["splits"]["train"]["sources"])
    assert np.all([len(h) == 64 for h in hashes])
