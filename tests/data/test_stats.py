"""The intensity histogram the auto rule compares domains with."""

import numpy as np

from gbmseg.data.stats import histogram


def test_a_normalised_histogram_of_the_grey_levels():
    h = histogram(np.array([[0, 0, 255, 128]], dtype=np.uint8))
    assert np.isclose(h.sum(), 1.0)
    assert h[0] == h.max() and h[0] > h[len(h) // 2] > 0
