"""The pixel size of every format the lab's microscopes write, read by the one reader."""

import logging

import numpy as np
import pytest
import tifffile

from gbmseg.data import io, scale
from gbmseg.data.io import DataError
from tests.dmfile import write_dm

IMG = (np.arange(48 * 64).reshape(48, 64) % 251).astype(np.uint8)


def _nm(path):
    found = io.read(path).pixel_size
    assert io.pixel_size_of(path) == found  # the header alone says the same
    return found


def test_tiff_imagej_unit_and_centimetre_resolution(tmp_path):
    tifffile.imwrite(tmp_path / "ij.tif", IMG, imagej=True, resolution=(200, 200),
                     metadata={"unit": "micron"})  # fmt: skip
    tifffile.imwrite(tmp_path / "cm.tif", IMG, resolution=(1e7 / 8, 1e7 / 8), resolutionunit=3)
    tifffile.imwrite(tmp_path / "dpi.tif", IMG, resolution=(72, 72), resolutionunit=2)
    tifffile.imwrite(tmp_path / "none.tif", IMG)
    assert _nm(tmp_path / "ij.tif").nm == pytest.approx(5.0)
    assert "ImageJ" in _nm(tmp_path / "ij.tif").source
    assert _nm(tmp_path / "cm.tif").nm == pytest.approx(8.0)
    assert _nm(tmp_path / "dpi.tif") is None  # inches: a scanner's or screen's, no calibration
    assert _nm(tmp_path / "none.tif") is None


def test_ome_tiff_physical_size(tmp_path):
    meta = {"PhysicalSizeX": 0.0042, "PhysicalSizeY": 0.0042, "PhysicalSizeXUnit": "µm",
            "PhysicalSizeYUnit": "µm"}  # fmt: skip
    tifffile.imwrite(tmp_path / "a.ome.tif", IMG, metadata=meta)
    size = _nm(tmp_path / "a.ome.tif")
    assert size.nm == pytest.approx(4.2) and "OME-XML" in size.source


@pytest.mark.parametrize(("ext", "dtype", "scale_", "unit", "nm"), [
    (".dm3", "<f4", 0.0025, "µm", 2.5), (".dm4", "u1", 3.0, "nm", 3.0),
    (".dm4", "<u2", 12.5, "A", 1.25),
])  # fmt: skip
def test_digitalmicrograph_calibration(tmp_path, ext, dtype, scale_, unit, nm):
    pixels = IMG.astype(dtype)
    path = write_dm(tmp_path / f"a{ext}", pixels, (scale_, scale_), unit)
    pic = io.read(path)
    np.testing.assert_array_equal(pic.pixels, pixels)
    assert pic.pixel_size.nm == pytest.approx(nm, rel=1e-6)
    assert pic.pixel_size.source == f"{ext[1:].upper()} calibration of a{ext}"
    assert io.pixel_size_of(path) == pic.pixel_size


def test_png_carries_the_pixel_size_and_its_origin(tmp_path):
    origin = scale.given(4.0, "DM4 calibration of scan.dm4")
    io.write_png(tmp_path / "a.png", IMG, origin)
    io.write_png(tmp_path / "b.png", IMG)
    assert _nm(tmp_path / "a.png") == origin  # re-encoded, the origin is still named
    assert _nm(tmp_path / "b.png") is None


def test_a_slightly_anisotropic_pixel_is_warned_about_a_clearly_anisotropic_one_refused(
    tmp_path, caplog
):
    write_dm(tmp_path / "drift.dm4", IMG, (5.01, 5.0), "nm")  # 0.2%: a drift-corrected camera
    with caplog.at_level(logging.WARNING):
        assert io.read(tmp_path / "drift.dm4").pixel_size.nm == pytest.approx(5.005)
    assert "differ by 0.20%" in caplog.text
    write_dm(tmp_path / "skew.dm4", IMG, (5.2, 5.0), "nm")
    with pytest.raises(DataError, match=r"skew\.dm4: pixels are 5 x 5\.2 nm .* 4\.0% apart"):
        io.read(tmp_path / "skew.dm4")


def test_implausible_calibration_or_unknown_unit_is_refused(tmp_path):
    write_dm(tmp_path / "big.dm4", IMG, (2.0, 2.0), "mm")
    with pytest.raises(DataError, match=r"big\.dm4: pixel size 2e\+06 nm .* outside"):
        io.read(tmp_path / "big.dm4")
    write_dm(tmp_path / "odd.dm4", IMG, (2.0, 2.0), "furlong")
    with pytest.raises(DataError, match=r"odd\.dm4: unknown length unit 'furlong'"):
        io.read(tmp_path / "odd.dm4")


def test_a_given_pixel_size_wins_and_a_contradiction_is_warned(tmp_path, caplog):
    found = scale.given(5.0, "DM4 calibration of a.dm4")
    assert scale.choose(found, None, "measure.pixel_size_nm", "a") == found
    with caplog.at_level(logging.WARNING):
        chosen = scale.choose(found, 20.0, "measure.pixel_size_nm", "a")
    assert chosen.nm == 20.0 and chosen.source == "measure.pixel_size_nm (given)"
    assert "overrides the file's 5 nm/px" in caplog.text
    assert scale.choose(None, None, "x", "a") is None


def test_a_truncated_dm_file_is_one_clear_error(tmp_path):
    path = write_dm(tmp_path / "a.dm4", IMG, (3.0, 3.0))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match=r"a\.dm4: cannot read"):
        io.read(path)
