import numpy as np
import pytest

from gbmseg import metrics as M


def test_perfect_and_disjoint():
    t = np.zeros((20, 20), bool)
    t[5:10] = True
    assert M.scores(t, t)["dice"] == 1.0 and M.scores(t, t)["boundary_f1"] == 1.0
    s = M.scores(t, ~t)
    assert s["dice"] == 0.0 and s["iou"] == 0.0 and s["pixel_error"] == 1.0


def test_known_values():
    t = np.zeros((10, 10), bool)
    p = np.zeros((10, 10), bool)
    t[:, :4] = True  # 40
    p[:, 2:6] = True  # 40, overlap 20
    assert M.dice(t, p) == pytest.approx(0.5)
    assert M.iou(t, p) == pytest.approx(20 / 60)
    assert M.scores(t, p)["pixel_error"] == pytest.approx(0.4)


def test_boundary_f1_tolerates_small_shifts():
    t = np.zeros((40, 40), bool)
    t[10:30, 10:30] = True
    shifted = np.roll(t, 1, axis=1)
    assert M.boundary_f1(t, shifted, tolerance=2) == 1.0
    assert M.boundary_f1(t, np.roll(t, 6, axis=1), tolerance=2) < 0.7
