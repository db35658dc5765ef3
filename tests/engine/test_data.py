"""Training batches: shuffled, flipped, augmented on the fly, oversampling structure."""

import numpy as np
import pytest
import torch

from gbmseg.engine.data import Batches
from tests.conftest import params
from tests.engine.common import data


def test_online_augmentation_uses_the_augment_definition():
    from gbmseg.engine.lifecycle import online_transform

    x, y = data(n=4, size=64)
    tf = online_transform(params().augment, 64, seed=0)
    plain = next(iter(Batches(x, y, 4, train=True, seed=0)))
    aug = next(iter(Batches(x, y, 4, train=True, seed=0, transform=tf)))
    assert aug[0].shape == plain[0].shape == (4, 1, 64, 64)
    assert set(torch.unique(aug[1]).tolist()) <= {0.0, 1.0}
    assert not torch.equal(aug[0], plain[0])
    # the structure stays the dark ribbon: masks still aligned with their images
    assert aug[0][aug[1] == 1].mean() < aug[0][aug[1] == 0].mean() - 0.1


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


def test_a_step_budget_fixes_the_epoch_length_whatever_the_set_size():
    x = np.repeat(np.arange(40, dtype=np.uint8), 64).reshape(40, 8, 8)
    y = np.zeros((40, 8, 8), np.uint8)
    y[:4, 2:4] = 1
    for tiles in (5, 40):
        b = Batches(x[:tiles], y[:tiles], 8, train=True, seed=0, steps=3)
        batches = list(b)
        assert len(b) == 3 and len(batches) == 3 and all(len(xb) == 8 for xb, _ in batches)
    again = [xb for xb, _ in Batches(x, y, 8, train=True, seed=0, steps=3)]
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            again, [xb for xb, _ in Batches(x, y, 8, train=True, seed=0, steps=3)], strict=True
        )
    )
    weighted = Batches(x, y, 8, train=True, seed=1, steps=10, foreground=9.0)
    drawn = [round(float(v) * 255) for _ in range(20) for xb, _ in weighted for v in xb[:, 0, 0, 0]]
    assert np.mean(np.asarray(drawn) < 4) == pytest.approx(0.5, abs=0.08)  # weights kept
    val = Batches(x, y, 8, train=False, steps=3)
    assert len(val) == 5  # validation always sees every tile once
