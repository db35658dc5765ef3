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


def test_hd95_is_the_shift_for_a_shifted_square():
    t = np.zeros((60, 60), bool)
    t[20:40, 20:40] = True
    assert M.hd95(t, t) == 0.0
    assert M.hd95(t, np.roll(t, 5, axis=1)) == pytest.approx(5.0)
    assert M.hd95(t, np.zeros_like(t)) == pytest.approx(np.hypot(60, 60))


def test_adapted_rand_error_counts_merged_regions():
    # a membrane splitting the image into two cells
    t = np.zeros((20, 20), bool)
    t[:, 10] = True
    assert M.adapted_rand_error(t, t) == pytest.approx(0.0)
    broken = t.copy()
    broken[5:8, 10] = False  # a gap merges the two cells
    assert M.adapted_rand_error(t, broken) > 0.2


def test_threshold_sweep_pools_pixels():
    from gbmseg.scoring import Sweep

    sweep = Sweep(np.array([0.3, 0.5, 0.7]))
    sweep.add(np.array([[1, 0]], bool), np.array([[0.9, 0.6]]))  # image by image, pooled
    sweep.add(np.array([[0, 1]], bool), np.array([[0.2, 0.4]]))
    rows = sweep.rows()
    assert [r["threshold"] for r in rows] == [0.3, 0.5, 0.7]
    assert rows[0]["recall"] == 1.0 and rows[0]["precision"] == pytest.approx(2 / 3)
    assert rows[1]["dice"] == pytest.approx(0.5) and rows[2]["precision"] == 1.0
