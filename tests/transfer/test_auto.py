"""strategy: auto: size x similarity measured, not guessed; its report; head surgery;
per-group learning rates."""

import json

import numpy as np
import pytest
import torch

from gbmseg.config import load
from gbmseg.data.stats import histogram
from gbmseg.engine import checkpoint
from gbmseg.engine.objective import param_groups
from gbmseg.model.unet import build
from gbmseg.transfer import auto, freezing
from tests.conftest import ROOT, prepared, tiny

AUTO = load(ROOT / "params.yaml").finetune.auto


def _textured(rng, n, size=64, stripes=False):
    x = rng.normal(150, 20, (n, size, size))
    if stripes:
        x += 60 * np.sin(np.arange(size) / 1.5)[None, None, :]
    return x.clip(0, 255).astype(np.uint8)


def test_histogram_distance_is_zero_for_same_and_one_for_disjoint():
    a = np.full((4, 8, 8), 10, np.uint8)
    b = np.full((4, 8, 8), 250, np.uint8)
    assert auto.js_distance(histogram(a), histogram(a)) == pytest.approx(0)
    assert auto.js_distance(histogram(a), histogram(b)) == pytest.approx(1)


def test_feature_distance_small_on_source_like_tiles_large_on_others():
    rng = np.random.default_rng(0)
    model = build({"depth": 2, "base": 4})
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average: running stats = the source's stats
    source = _textured(rng, 32)
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(source).float()[:, None] / 255)
    same = auto.feature_shift(model, _textured(rng, 16))
    other = auto.feature_shift(model, _textured(rng, 16, stripes=True))
    assert set(same) == set(other) and len(same) == 6  # 2 per encoder level + bottleneck
    assert np.mean(list(same.values())) < 0.05
    assert np.mean(list(other.values())) > 10 * np.mean(list(same.values()))


@pytest.mark.parametrize(
    ("pixels", "feat", "quadrant"),
    [
        (0.2e6, 0.0, "similar_small"),
        (0.2e6, 99.0, "different_small"),
        (9e6, 0.0, "similar_large"),
        (9e6, 99.0, "different_large"),
    ],
)
def test_the_four_quadrants(monkeypatch, pixels, feat, quadrant):
    monkeypatch.setattr(auto, "feature_shift", lambda m, x: {"encoders.0.x": feat})
    tiles = np.full((2, 8, 8), 100, np.uint8)
    d = auto.decide(None, tiles, 3, int(pixels), histogram(tiles), AUTO)
    assert d.quadrant == quadrant and d.strategy == getattr(AUTO, quadrant)
    assert d.histogram_distance == 0 and any("quadrant" in r for r in d.reasons)
    assert "Quadrant" in auto.report_md(d, "x") and json.loads(auto.report_json(d))["strategy"]


def test_finetune_auto_writes_its_report_and_uses_the_choice(tmp_path):
    from gbmseg import stages

    p = prepared(tiny(tmp_path), ("source", "target"))
    stages.train(p, "source")
    model = checkpoint.load_model(tmp_path / "models" / "train" / "source")
    assert model.source_histogram().shape == (32,)
    stages.resolve(p)
    res = stages.finetune(p)
    out = tmp_path / "models" / "finetune"
    report = json.loads((out / "transfer_report.json").read_text())
    assert res["strategy"] == report["strategy"] == getattr(AUTO, report["quadrant"])
    manifest = json.loads((p.paths("target").packed / "manifest.json").read_text())
    assert report["images"] == len(manifest["splits"]["train"]["sources"])
    assert report["feature_distance"] is not None and report["histogram_distance"] > 0
    assert (out / "transfer_report.md").read_text().startswith("# Transfer")


def test_encoder_learns_at_the_scaled_rate():
    model = build({"depth": 2, "base": 4})
    freezing.apply(model, "full")
    scales = freezing.lr_scales(model, encoder_lr_scale=0.1)
    groups = {g["lr"]: len(g["params"]) for g in param_groups(model, 1e-3, scales)}
    assert sorted(groups) == [1e-3 * 0.1, 1e-3]
    n_enc = sum(1 for n, _ in model.named_parameters() if n.startswith(("encoders", "bottleneck")))
    assert groups[1e-3 * 0.1] == n_enc
