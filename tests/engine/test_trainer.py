import pickle

import numpy as np
import pytest
import torch

from gbmseg.engine import checkpoint
from gbmseg.engine.amp import choose_precision
from gbmseg.engine.data import Batches
from gbmseg.engine.objective import lr_lambda, seg_loss
from gbmseg.engine.trainer import Trainer, TrainingDiverged
from gbmseg.model.unet import build
from gbmseg.steps import synth
from tests.conftest import params


def _data(n=8, size=32, seed=0):
    p = params(f"synth.size={size}").synth
    pairs = [synth.render(np.random.default_rng(seed + i), p)[:2] for i in range(n)]
    return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])


def _train_params(**kw):
    base = [
        "train.epochs=3",
        "train.batch_size=4",
        "train.max_minutes=0",
        "train.amp=fp32",
        "train.model.depth=2",
        "train.model.base=4",
    ]
    return params(*base, *[f"train.{k}={v}" for k, v in kw.items()]).train


def _fit(tmp_path, p, x, y, resume=None, on_metrics=None):
    torch.manual_seed(0)
    model = build(p.model.model_dump())
    tr = Trainer(model, p, choose_precision("cpu", p.amp), tmp_path, on_metrics=on_metrics)
    train = Batches(x, y, p.batch_size, train=True, seed=0)
    val = Batches(x[:4], y[:4], p.batch_size, train=False)
    return model, tr.fit(train, val, resume_from=resume)


def test_loss_is_bce_plus_soft_dice():
    t = torch.zeros(1, 1, 8, 8)
    t[..., :4] = 1
    good, bad = (t * 20 - 10), -(t * 20 - 10)
    p = _train_params()
    assert seg_loss(good, t, p) < 0.01 < 1.5 < seg_loss(bad, t, p)


def test_warmup_then_cosine():
    f = lr_lambda(100, 10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5, abs=0.02) and f(100) == pytest.approx(0.0, abs=1e-6)


def test_training_improves_and_writes_atomic_checkpoints(tmp_path):
    x, y = _data()
    _, res = _fit(tmp_path, _train_params(epochs=6, lr=0.01), x, y)
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < losses[0]
    assert res.best_val_dice > 0.2
    last = checkpoint.load(tmp_path / "last.pt")
    assert set(last) >= {"model", "optimizer", "scheduler", "scaler", "rng", "epoch", "history"}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_time_spent_in_the_tracking_hook_is_measured(tmp_path):
    """The trainer reports what logging costs as a share of training time."""
    import time

    calls = []

    def slow_hook(values, step):
        calls.append(step)
        time.sleep(0.05)

    x, y = _data()
    _, res = _fit(tmp_path, _train_params(epochs=2), x, y, on_metrics=slow_hook)
    assert calls == [1, 2]
    assert 0.1 <= res.logging_s < 1.0
    assert res.train_s == pytest.approx(sum(h["epoch_s"] for h in res.history))
    assert res.logging_fraction == pytest.approx(res.logging_s / res.train_s)


def test_resume_continues_where_it_stopped(tmp_path):
    x, y = _data()
    p = _train_params(epochs=4)
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
    x, y = _data()
    _fit(tmp_path, _train_params(epochs=1), x, y)
    good = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        _fit(tmp_path, _train_params(epochs=3, lr=1e30), x, y)
    assert (tmp_path / "last.pt").read_bytes() == good


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"model": _Evil()}))
    with pytest.raises(checkpoint.CheckpointError, match="weights_only"):
        checkpoint.load(path)


def test_bf16_autocast_is_chosen_on_cpus_with_amx():
    prec = choose_precision("cpu", "auto")
    from gbmseg.engine.amp import cpu_has_amx

    assert (prec.dtype == torch.bfloat16) == cpu_has_amx()
    assert choose_precision("cpu", "bf16").dtype == torch.bfloat16
    assert choose_precision("cpu", "fp32").dtype is None


def test_online_augmentation_uses_the_augment_definition():
    from gbmseg.engine.lifecycle import online_transform

    x, y = _data(n=4, size=64)
    tf = online_transform(params().augment, 64, seed=0)
    plain = next(iter(Batches(x, y, 4, train=True, seed=0)))
    aug = next(iter(Batches(x, y, 4, train=True, seed=0, transform=tf)))
    assert aug[0].shape == plain[0].shape == (4, 1, 64, 64)
    assert set(torch.unique(aug[1]).tolist()) <= {0.0, 1.0}
    assert not torch.equal(aug[0], plain[0])
    # the structure stays the dark ribbon: masks still aligned with their images
    assert aug[0][aug[1] == 1].mean() < aug[0][aug[1] == 0].mean() - 0.1


def test_poly_schedule_and_sgd_train_too(tmp_path):
    f = lr_lambda(100, 10, "poly")
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.5**0.9, rel=1e-6)
    x, y = _data()
    _, res = _fit(
        tmp_path, _train_params(epochs=5, lr=0.05, optimizer="sgd", schedule="poly"), x, y
    )
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < losses[0]


def test_pos_weight_makes_missed_structure_cost_more():
    t = torch.zeros(1, 1, 8, 8)
    t[..., :2] = 1
    missed = torch.full_like(t, -3.0)  # predicts background everywhere
    plain = seg_loss(missed, t, _train_params())
    weighted = seg_loss(missed, t, _train_params(pos_weight=5.0))
    assert weighted > plain + 1.0
    # a correct prediction is barely touched by the weight
    good = t * 20 - 10
    assert seg_loss(good, t, _train_params(pos_weight=5.0)) < 0.05


def test_foreground_oversampling_draws_tiles_with_structure_more_often():
    n = 40
    x = np.repeat(np.arange(n, dtype=np.uint8), 64).reshape(n, 8, 8)  # tile i is all i
    y = np.zeros((n, 8, 8), np.uint8)
    y[:4, 2:4] = 1  # 4 of 40 tiles show structure

    def shown(foreground: float) -> float:
        b = Batches(x, y, 8, train=True, seed=0, foreground=foreground)
        drawn = [round(float(v) * 255) for _ in range(25) for xb, _ in b for v in xb[:, 0, 0, 0]]
        assert len(drawn) == 25 * n  # an epoch is still len(tiles) long
        return float(np.mean(np.asarray(drawn) < 4))

    assert shown(0.0) == pytest.approx(0.1)
    assert shown(9.0) == pytest.approx(0.5, abs=0.06)  # 4*10 / (4*10 + 36)
    # validation order is untouched
    val = Batches(x, y, 8, train=False, foreground=9.0)
    assert [round(float(v) * 255) for xb, _ in val for v in xb[:, 0, 0, 0]] == list(range(n))
