"""The thin-structure and edge loss terms: skeleton recall sees a broken membrane, the
boundary term a rim of false positives, and both reach the training loss by their weights."""

import numpy as np
import pytest
import torch

from benchmarks.phantoms import ribbon
from gbmseg.engine import edges
from gbmseg.engine.objective import seg_loss
from tests.engine.common import train_params


def _label(w: int = 9) -> torch.Tensor:
    return torch.from_numpy(ribbon(w, 64, 30.0).astype(np.float32))[None, None]


def test_skeleton_recall_is_zero_on_the_label_and_sees_a_break_dice_barely_notices():
    label = _label()
    assert float(edges.skeleton_recall(label, label)) == pytest.approx(0.0, abs=1e-6)
    broken = label.clone()
    broken[..., 28:36, :] = 0  # a gap across the membrane
    lost = float(edges.skeleton_recall(broken, label))
    assert 0.05 < lost < 0.3
    tube = edges.tubed_skeletons(label)
    assert tube.sum() < 0.5 * label.sum() and bool((tube <= label).all())
    empty = torch.zeros_like(label)
    assert float(edges.skeleton_recall(torch.rand_like(label), empty)) == 0.0


def test_the_boundary_term_costs_a_rim_of_false_positives_in_proportion_to_its_width():
    label = _label(9)
    wide1 = torch.from_numpy(ribbon(13, 64, 30.0).astype(np.float32))[None, None]
    wide2 = torch.from_numpy(ribbon(17, 64, 30.0).astype(np.float32))[None, None]
    at = [float(edges.boundary(x, label)) for x in (label, wide1, wide2)]
    assert at[0] < at[1] < at[2]
    d = edges.signed_distances(label)
    assert float(d.min()) < 0 < float(d.max()) <= 1.0 and float(d.min()) >= -1.0
    assert float(edges.signed_distances(torch.zeros_like(label)).abs().sum()) == 0.0


def test_the_training_loss_adds_the_terms_by_their_weights():
    label = _label()
    logits = torch.randn_like(label)
    plain = float(seg_loss(logits, label, train_params()))
    prob = torch.sigmoid(logits)
    skel = float(seg_loss(logits, label, train_params(skeleton_recall_weight=2.0)))
    assert skel == pytest.approx(plain + 2.0 * float(edges.skeleton_recall(prob, label)), rel=1e-5)
    bound = float(seg_loss(logits, label, train_params(boundary_weight=0.5)))
    assert bound == pytest.approx(plain + 0.5 * float(edges.boundary(prob, label)), rel=1e-5)
