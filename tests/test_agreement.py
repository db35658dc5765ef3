"""Thickness on a prediction vs on its label: relative errors, bias and limits in nm only
where a pixel size exists, and the Bland-Altman plot."""

import numpy as np
import pandas as pd
import pytest

from benchmarks.phantoms import ribbon
from gbmseg import agreement
from tests.conftest import params


def test_a_ribbon_two_pixels_too_wide_reads_its_excess():
    p = params().measure
    label = agreement.measure(ribbon(20, 300, 10.0), p, 10.0)
    pred = agreement.measure(ribbon(22, 300, 10.0), p, 10.0)
    r = agreement.row("a.png", pred, label)
    assert r["medial_median_nm_label"] == pytest.approx(200, rel=0.02)
    assert r["medial_median_nm_rel_diff"] == pytest.approx(0.1, abs=0.02)


def test_bias_and_limits_come_from_calibrated_images_only():
    table = pd.DataFrame(
        {
            "medial_median_nm_pred": [220.0, 310.0, 50.0],
            "medial_median_nm_label": [200.0, 300.0, 40.0],
            "medial_median_nm_rel_diff": [0.1, 0.0333, 0.25],
            "intercept_harmonic_nm_pred": [210.0, 300.0, np.nan],
            "intercept_harmonic_nm_label": [200.0, 300.0, 40.0],
            "intercept_harmonic_nm_rel_diff": [0.05, 0.0, np.nan],
            "pixel_size_nm": [10.0, 10.0, None],  # the third: relative figures only
        }
    )
    s = agreement.summary(table)
    assert s["medial_median_mean_abs_rel_diff"] == pytest.approx(
        (0.1 + 0.0333 + 0.25) / 3, abs=1e-4
    )
    assert s["medial_median_bias_nm"] == pytest.approx(15.0)
    assert s["medial_median_limits_nm"] == pytest.approx(1.96 * np.std([20, 10], ddof=1), abs=0.01)
    assert s["intercept_harmonic_bias_nm"] == pytest.approx(5.0)
    assert agreement.bland_altman(table)[:4] == b"\x89PNG"
    uncalibrated = agreement.summary(table.assign(pixel_size_nm=None))
    assert uncalibrated["medial_median_bias_nm"] is None  # no number in nm without a scale
    assert uncalibrated["medial_median_limits_nm"] is None


def test_the_slope_shows_thin_membranes_reading_normal():
    label = np.array([150.0, 200, 250, 300, 350, 400, 450])
    noise = np.array([3.0, -2, 1, -3, 2, 0, -1])
    follows = agreement.slope(label, label + 20 + noise)
    assert follows["slope"] == pytest.approx(1.0, abs=0.03)
    assert follows["slope_ci_low"] < 1.0 < follows["slope_ci_high"]
    flattened = agreement.slope(label, 0.35 * label + 200 + noise)  # thin ones read thicker
    assert flattened["slope"] == pytest.approx(0.35, abs=0.03)
    assert flattened["slope_ci_high"] < 0.5
    assert agreement.slope(label[:2], label[:2]) == {}  # too few images for a slope
    table = pd.DataFrame(
        {
            "medial_median_nm_label": label,
            "medial_median_nm_pred": 0.35 * label + 200 + noise,
            "medial_median_nm_rel_diff": (0.35 * label + 200 + noise) / label - 1,
            "intercept_harmonic_nm_label": label,
            "intercept_harmonic_nm_pred": label + noise,
            "intercept_harmonic_nm_rel_diff": noise / label,
        }
    )
    s = agreement.summary(table)
    assert s["medial_median_slope"] == flattened["slope"]
    assert s["intercept_harmonic_slope"] == pytest.approx(1.0, abs=0.03)
