import pytest
import torch

from gbmseg.engine import checkpoint
from gbmseg.engine.amp import choose_precision
from gbmseg.engine.data import Batches
from gbmseg.engine.objective import lr_lambda, validation_dice
from gbmseg.engine.trainer import Trainer, TrainingDiverged
from gbmseg.model.unet import build
from tests.engine.common import data, train_params


def _fit(tmp_path, p, x, y, resume=None, on_metrics=None):
    torch.manual_seed(0)
    model = build(p.model.model_dump())
    tr = Trainer(model, p, choose_precision("cpu", p.amp), tmp_path, on_metrics=on_metrics)
    train = Batches(x, y, p.batch_size, train=True, seed=0)
    val = Batches(x[:4], y[:4], p.batch_size, train=False)
    return model, tr.fit(train, val, resume_from=resume)


def test_training_improves_and_writes_atomic_checkpoints(tmp_path):
    x, y = data()
    _, res = _fit(tmp_path, train_params(epochs=6, lr=0.01), x, y)
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < losses[0]
    assert res.best_val_dice > 0.2
    last = checkpoint.load(tmp_path / "last.pt")
    assert set(last) >= {"model", "optimizer", "scheduler", "scaler", "rng", "epoch", "history"}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_weights_kept_are_those_whose_validation_dice_is_reported(tmp_path):
    x, y = data()
    p = train_params(epochs=5, lr=0.01)
    model, res = _fit(tmp_path, p, x, y)
    best = checkpoint.load(tmp_path / "best.pt")
    model.load_state_dict(best["model"])
    val = Batches(x[:4], y[:4], p.batch_size, train=False)
    again = validation_dice(model, val, choose_precision("cpu", p.amp))["val_dice"]
    assert again == pytest.approx(res.best_val_dice, abs=1e-6)
    assert res.history[best["epoch"]]["val_dice"] == pytest.approx(again, abs=1e-6)
    last = checkpoint.load(tmp_path / "last.pt")
    model.load_state_dict(last["model"])  # the last epoch's row scores the last weights too
    final = validation_dice(model, val, choose_precision("cpu", p.amp))["val_dice"]
    assert res.history[-1]["val_dice"] == pytest.approx(final, abs=1e-6)


def test_time_spent_in_the_tracking_hook_is_measured(tmp_path):
    """The trainer reports what logging costs as a share of training time."""
    import time

    calls = []

    def slow_hook(values, step):
        calls.append(step)
        time.sleep(0.05)

    x, y = data()
    _, res = _fit(tmp_path, train_params(epochs=2), x, y, on_metrics=slow_hook)
    assert calls == [1, 2]
    assert 0.1 <= res.logging_s < 1.0
    assert res.train_s == pytest.approx(sum(h["epoch_s"] for h in res.history))
    assert res.logging_fraction == pytest.approx(res.logging_s / res.train_s)


def test_resume_continues_where_it_stopped(tmp_path):
    x, y = data()
    p = train_params(epochs=4)
    _, full = _fit(tmp_path / "a", p, x, y)

    def crash_after_epoch_2(metrics, epoch):
        if epoch == 2:
            raise KeyboardInterrupt  # the checkpoint of epoch 2 is already on disk

    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "b", p, x, y, on_metrics=crash_after_epoch_2)
    assert checkpoint.load(tmp_path / "b" / "last.pt")["epoch"] == 1  # 0-based
    _, resumed = _fit(tmp_path / "b", p, x, y, resume=tmp_path / "b" / "last.pt")
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[-1]["loss"] == pytest.approx(full.history[-1]["loss"], rel=1e-4)


@pytest.mark.faults  # fault case, listed with tests/faults/
def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    x, y = data()
    _fit(tmp_path, train_params(epochs=1), x, y)
    good = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        _fit(tmp_path, train_params(epochs=3, lr=1e30), x, y)
    assert (tmp_path / "last.pt").read_bytes() == good


def test_poly_schedule_and_sgd_train_too(tmp_path):
    f = lr_lambda(100, 10, "poly")
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.5**0.9, rel=1e-6)
    x, y = data()
    _, res = _fit(tmp_path, train_params(epochs=5, lr=0.05, optimizer="sgd", schedule="poly"), x, y)
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < losses[0]
