"""Resampling keeps a membrane's thickness: masks by the structure's share of each pixel."""

import numpy as np
import pytest

from benchmarks.phantoms import ribbon
from gbmseg import thickness
from gbmseg.data import resample


@pytest.mark.parametrize(("from_nm", "to_nm"), [(10, 20), (10, 40), (20, 10), (7, 20)])
def test_a_resampled_mask_keeps_the_ribbons_thickness_in_nm(from_nm, to_nm):
    width_nm = 300.0
    m = ribbon(width_nm / from_nm, 400, 23.0, True)
    shape = resample.shape_at(m.shape, from_nm, to_nm)
    out = resample.mask(m, shape)
    assert out.shape == shape and set(np.unique(out)) <= {0, 1}
    s = thickness.summary(thickness.profile(out, 500 / to_nm), to_nm)
    assert s["medial_median_nm"] == pytest.approx(width_nm, rel=0.04), s


def test_images_and_probabilities_keep_their_range_and_equal_sizes_are_left_alone():
    img = np.random.default_rng(0).integers(0, 256, (90, 70), dtype=np.uint8)
    assert resample.image(img, img.shape) is img
    small = resample.image(img, (45, 35))
    assert small.dtype == np.uint8 and small.shape == (45, 35)
    prob = resample.probabilities(np.random.default_rng(1).random((45, 35)), (90, 70))
    assert prob.shape == (90, 70) and prob.min() >= 0 and prob.max() <= 1
    assert resample.needed(10.0, 20.0) and not resample.needed(20.0, 20.01)
    assert not resample.needed(None, 20.0) and not resample.needed(10.0, None)
