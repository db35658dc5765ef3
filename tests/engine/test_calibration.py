"""Thickness on validation tiles and the threshold chosen with a model: widths measured as
`measure` measures them, a threshold whose membrane is as thick as the label's (within the Dice
tolerance), strips held out of few labelled images, the threshold kept in model.pt."""

import json

import numpy as np
import pytest
from scipy import ndimage

from benchmarks.phantoms import ribbon
from gbmseg import stages
from gbmseg.engine import calibration, checkpoint, crops
from gbmseg.engine.checkpoint import load_model
from gbmseg.inference import threshold_for
from gbmseg.model.unet import UNet, UNetConfig
from tests.conftest import prepared, tiny


@pytest.mark.parametrize("w", [5, 8, 13])
def test_the_width_of_a_ribbon_is_its_width_in_pixels(w):
    assert calibration.width_px(ribbon(w, 128, 20.0).astype(bool)) == pytest.approx(w, abs=0.5)
    assert np.isnan(calibration.width_px(np.zeros((64, 64), bool)))


def _blurred(widths, rim: float = 2.0):
    """Labels of ribbons and probabilities wide at the edges: above 0.5 the ribbon reads
    ``rim`` px too wide on each side; the label's own edge sits near 0.8."""
    labels, probs = [], []
    for i, w in enumerate(widths):
        label = ribbon(w, 128, 10.0 * i).astype(bool)
        d_out = ndimage.distance_transform_edt(~label)
        p = np.where(label, 0.97, 0.8 * np.exp(-((d_out / (2 * rim)) ** 2) * 0.6))
        p = np.where(d_out <= rim, np.maximum(p, 0.55), p)
        labels.append(label)
        probs.append(p.astype(np.float16))
    return np.stack(probs), np.stack(labels)


def test_the_threshold_chosen_draws_the_membrane_as_thick_as_the_label():
    probs, labels = _blurred([6, 8, 10, 12])
    rows = calibration.sweep(probs, labels)
    at_half = next(r for r in rows if r["threshold"] == 0.5)
    assert at_half["thickness_bias"] > 0.3  # a rim of 2 px each side: 6-px ribbons read ~10
    chosen = calibration.choose(rows, dice_tolerance=0.5, min_membrane_px=100)
    assert chosen["threshold"] > 0.55
    assert abs(chosen["val_thickness_bias"]) < 0.1
    assert chosen["val_thickness_err"] < at_half["thickness_err"]
    assert chosen["at_0.5"]["thickness_bias"] == pytest.approx(at_half["thickness_bias"], abs=1e-4)
    scarce = calibration.choose(rows, dice_tolerance=0.5, min_membrane_px=10**6)
    assert scarce["threshold"] == 0.5 and "0.5 kept" in scarce["rule"]  # too little to tell


def test_the_dice_tolerance_bounds_what_thickness_may_cost():
    probs, labels = _blurred([6, 8, 10, 12])
    rows = calibration.sweep(probs, labels)
    strict = calibration.choose(rows, dice_tolerance=0.0, min_membrane_px=0)
    assert strict["val_dice"] == pytest.approx(max(r["dice"] for r in rows), abs=1e-5)
    empty = calibration.choose(calibration.sweep(probs * 0, labels * False), 0.01, 0)
    assert empty["threshold"] == 0.5 and "0 px of labelled mid-line" in empty["rule"]


def test_a_missed_membrane_counts_as_entirely_too_thin():
    label = ribbon(8, 96, 0.0).astype(bool)[None]
    err = calibration.Widths.of(label).error(np.zeros_like(label))
    assert err["thickness_err"] == 1.0 and err["thickness_bias"] == -1.0 and err["tiles"] == 1


def test_strips_are_held_out_of_training_and_the_originals_strips_validated_on():
    imgs = [np.full((400, 256), 10 * (i + 1), np.uint8) for i in range(3)]
    band = (np.arange(400)[:, None] // 7 % 2 + np.zeros((1, 256), int)).astype(np.uint8)
    msks = [band.copy() for _ in range(3)]
    wholes = crops.of_pairs(list(zip(imgs, msks, strict=True)))
    kept, vx, vy = crops.hold_out(wholes, np.array([True, True, False]), 0.2, 128, 16)
    assert kept.shapes.tolist() == [[320, 256]] * 3  # 20% of 400 rows held out of each
    assert vx.shape == vy.shape == (6, 80, 80)  # 2 originals x 3 tiles; the copy gives none
    assert set(np.unique(vx)) == {10, 20}
    assert (vy[0] == band[320:, :80]).all() and (vy[2] == band[320:, 160:240]).all()
    short = crops.of_pairs([(np.zeros((160, 64), np.uint8), np.zeros((160, 64), np.uint8))])
    kept, vx, _ = crops.hold_out(short, np.array([True]), 0.2, 128)
    assert kept.shapes.tolist() == [[160, 64]] and len(vx) == 0  # too short: left whole


def test_a_model_keeps_its_threshold_and_older_checkpoints_load_without_one(tmp_path):
    model = UNet(UNetConfig(depth=2, base=4))
    assert model.threshold() is None and threshold_for(model, "model") == 0.5
    model.set_threshold(0.7)
    checkpoint.save(tmp_path / "model.pt", checkpoint.model_state(model))
    loaded = load_model(tmp_path / "model.pt")
    assert loaded.threshold() == pytest.approx(0.7)
    assert threshold_for(loaded, "model") == pytest.approx(0.7)
    assert threshold_for(loaded, 0.4) == 0.4  # a number in params wins
    old = checkpoint.model_state(model)
    old["model"].pop("data_threshold")
    checkpoint.save(tmp_path / "old.pt", {**old, "format": 3})
    assert load_model(tmp_path / "old.pt").threshold() is None


def test_training_on_few_labels_validates_on_held_out_strips_and_records_a_threshold(tmp_path):
    p = prepared(tiny(tmp_path, "synth.size=128", "train.epochs=2", "train.select=dice_thickness",
                           "train.min_membrane_px=0"))  # fmt: skip
    stages.train(p, "target")
    folder = tmp_path / "models" / "train" / "target"
    chosen = json.loads((folder / "threshold.json").read_text())
    assert chosen["val_tiles"] > 0 and len(chosen["sweep"]) == len(calibration.CANDIDATES)
    assert load_model(folder).threshold() == pytest.approx(chosen["threshold"])
    metrics = json.loads((tmp_path / "metrics" / "train" / "target.json").read_text())
    assert metrics["threshold"] == chosen["threshold"]
    history = (tmp_path / "reports" / "train" / "target.csv").read_text().splitlines()
    assert "val_thickness_err" in history[0]
    fixed = prepared(tiny(tmp_path / "fixed", "train.epochs=1", "train.threshold=0.6"))
    stages.train(fixed, "target")
    assert load_model(tmp_path / "fixed" / "models" / "train" / "target").threshold() == 0.6


def test_strips_with_too_little_membrane_are_given_back_to_training(tmp_path):
    from gbmseg.engine.lifecycle import batches

    p = prepared(tiny(tmp_path, "synth.size=128"))
    packed = [p.paths("target").packed]
    few = p.train.model_copy(update={"min_membrane_px": 10**6})
    train, val, _ = batches(few, packed, None, rank=0, world=1, multiple=4)
    assert len(val.images) == 0  # not enough to tell: no validation, whole images trained on
    assert (train.crops.wholes.shapes[:, 0] == 128).all()
    enough = p.train.model_copy(update={"min_membrane_px": 0})
    train, val, _ = batches(enough, packed, None, rank=0, world=1, multiple=4)
    assert len(val.images) > 0 and (train.crops.wholes.shapes[:, 0] == 64).all()
