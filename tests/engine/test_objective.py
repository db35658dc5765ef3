"""The training objective: the loss and the learning-rate schedules."""

import pytest
import torch

from gbmseg.engine.objective import lr_lambda, seg_loss
from tests.engine.common import train_params


def test_loss_is_bce_plus_soft_dice():
    t = torch.zeros(1, 1, 8, 8)
    t[..., :4] = 1
    good, bad = (t * 20 - 10), -(t * 20 - 10)
    p = train_params()
    assert seg_loss(good, t, p) < 0.01 < 1.5 < seg_loss(bad, t, p)


def test_warmup_then_cosine():
    f = lr_lambda(100, 10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5, abs=0.02) and f(100) == pytest.approx(0.0, abs=1e-6)


def test_pos_weight_makes_missed_structure_cost_more():
    t = torch.zeros(1, 1, 8, 8)
    t[..., :2] = 1
    missed = torch.full_like(t, -3.0)  # predicts background everywhere
    plain = seg_loss(missed, t, train_params())
    weighted = seg_loss(missed, t, train_params(pos_weight=5.0))
    assert weighted > plain + 1.0
    # a correct prediction is barely touched by the weight
    good = t * 20 - 10
    assert seg_loss(good, t, train_params(pos_weight=5.0)) < 0.05
