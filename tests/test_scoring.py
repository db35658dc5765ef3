"""Scoring on labelled images: the thickness agreement in nm at each image's own pixel size."""

import numpy as np
import pytest

from gbmseg.data import scale
from gbmseg.data.io import write_png
from gbmseg.scoring import score_images
from tests.conftest import params
from tests.models import dark_model, membrane_image


def test_thickness_agreement_uses_each_images_own_pixel_size(tmp_path):
    img, structure = membrane_image(size=256, width=14.0)
    for name, nm in (("a.png", 5.0), ("b.png", 9.0)):
        size = scale.given(nm, f"DM4 calibration of {name[0]}.dm4")
        write_png(tmp_path / "images" / name, img, size)
        write_png(tmp_path / "masks" / name, structure.astype(np.uint8), size)
    write_png(tmp_path / "images" / "c.png", img)  # no calibration anywhere
    write_png(tmp_path / "masks" / "c.png", structure.astype(np.uint8))
    p = params("evaluate.tile=256")
    rows = score_images(dark_model(), p.evaluate, tmp_path, ["a.png", "b.png", "c.png"],
                        thickness=p.measure)  # fmt: skip
    by = {r["image"]: r for r in rows}
    assert by["a.png"]["pixel_size_nm"] == 5.0 and by["b.png"]["pixel_size_nm"] == 9.0
    assert by["a.png"]["pixel_size_source"] == "DM4 calibration of a.dm4"
    for name, nm in (("a.png", 5.0), ("b.png", 9.0)):  # the label's ribbon is 14 px wide
        assert by[name]["medial_median_nm_label"] == pytest.approx(14 * nm, rel=0.03)
    assert by["c.png"]["pixel_size_nm"] is None  # no nm from a guessed pixel size ...
    assert by["c.png"]["medial_median_nm_label"] is None  # ... only the relative difference
    rel = [by[n]["medial_median_nm_rel_diff"] for n in ("a.png", "b.png", "c.png")]
    assert rel[0] == pytest.approx(rel[1], abs=1e-3) == pytest.approx(rel[2], abs=1e-3)
