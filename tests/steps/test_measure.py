import json

import numpy as np
import pytest
import tifffile

from gbmseg.data.io import DataError, binary_to_mask
from gbmseg.steps import measure, synth
from tests.conftest import params


def test_median_thickness_within_5_percent_of_synth_truth(tmp_path):
    """`gbmseg synth` knows every ribbon's true thickness; measure must recover it."""
    p = params("synth.size=256")
    synth.write_set(p.synth, tmp_path / "raw", "black", "target", 12)
    truth = json.loads((tmp_path / "raw" / "meta.json").read_text())["images"]
    table = measure.run(
        p.measure, [tmp_path / "raw" / "masks"], tmp_path / "m", "black", p.synth.pixel_size_nm
    )
    assert len(table) == 12
    for row in table.itertuples():
        rel = row.median_nm / truth[row.image]["thickness_nm"] - 1
        assert abs(rel) <= 0.05, (row.image, row.median_nm, truth[row.image]["thickness_nm"])
        assert row.p10_nm <= row.median_nm <= row.p90_nm and row.length_um > 3
    for name in ("thickness.csv", "histogram.png"):
        assert (tmp_path / "m" / name).is_file()
    assert len(list((tmp_path / "m" / "overlays").glob("*.png"))) == 12


def _ribbon(width: int, size: int = 120) -> np.ndarray:
    structure = np.zeros((size, size), np.uint8)
    structure[40 : 40 + width, :] = 1
    return structure


def test_pixel_size_from_tiff_tags(tmp_path):
    mask = binary_to_mask(_ribbon(10), "black")
    tifffile.imwrite(
        tmp_path / "ij.tif",
        mask,
        imagej=True,
        resolution=(1 / 0.005, 1 / 0.005),
        metadata={"unit": "micron"},
    )  # 5 nm per pixel
    tifffile.imwrite(tmp_path / "cm.tif", mask, resolution=(1e7 / 8, 1e7 / 8), resolutionunit=3)
    assert measure.tiff_pixel_size_nm(tmp_path / "ij.tif") == pytest.approx(5.0)
    assert measure.tiff_pixel_size_nm(tmp_path / "cm.tif") == pytest.approx(8.0)
    table = measure.run(params().measure, [tmp_path], tmp_path / "m", "black")
    by = table.set_index("image")
    assert by.loc["ij.tif", "median_nm"] == pytest.approx(50, rel=0.1)
    assert by.loc["cm.tif", "median_nm"] == pytest.approx(80, rel=0.1)


def test_specks_and_border_are_ignored(tmp_path):
    s = _ribbon(8)
    s[100:103, 10:13] = 1  # a speck far from the membrane
    tifffile.imwrite(tmp_path / "a.tif", binary_to_mask(s, "white"))
    table = measure.run(params().measure, [tmp_path / "a.tif"], tmp_path / "m", "white", 10.0)
    assert table.loc[0, "median_nm"] == pytest.approx(80, rel=0.1)
    assert table.loc[0, "p90_nm"] < 100


def test_missing_and_non_binary(tmp_path):
    with pytest.raises(DataError, match="no such mask"):
        measure.run(params().measure, [tmp_path / "x.png"], tmp_path / "m", "black")
    tifffile.imwrite(tmp_path / "g.tif", np.full((10, 10), 128, np.uint8))
    with pytest.raises(DataError, match="not binary"):
        measure.run(params().measure, [tmp_path / "g.tif"], tmp_path / "m", "black")
