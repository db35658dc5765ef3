import logging

import numpy as np
import pytest
import tifffile
from PIL import Image

from gbmseg.data.io import DataError, mask_to_binary, read_image, read_mask


def test_16bit_tiff_is_stretched_to_8bit(tmp_path):
    arr = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)  # 12-bit data
    tifffile.imwrite(tmp_path / "a.tif", arr)
    img = read_image(tmp_path / "a.tif")
    assert img.dtype == np.uint8 and img.min() == 0 and img.max() == 255


def test_16bit_png_mask(tmp_path):
    m = np.zeros((8, 8), np.uint16)
    m[:4] = 65535
    Image.fromarray(m).save(tmp_path / "m.png")
    assert read_mask(tmp_path / "m.png", "black")[:4].sum() == 0


def test_rgb_image_is_converted_with_a_warning(tmp_path, caplog):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "c.png")
    with caplog.at_level(logging.WARNING):
        img = read_image(tmp_path / "c.png")
    assert img.shape == (8, 8) and "converted to grayscale" in caplog.text


def test_truncated_png_names_the_file(tmp_path):
    Image.fromarray(np.zeros((64, 64), np.uint8) + 7).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"t\.png: cannot decode image"):
        read_image(tmp_path / "t.png")


def test_grey_values_in_a_mask(tmp_path):
    with pytest.raises(DataError, match=r"m\.png: mask is not binary \(3 distinct values"):
        mask_to_binary(np.array([[0, 128, 255]], np.uint8), "black", tmp_path / "m.png")


def test_polarity():
    m = np.array([[0, 255]], np.uint8)
    assert mask_to_binary(m, "black").tolist() == [[1, 0]]
    assert mask_to_binary(m, "white").tolist() == [[0, 1]]
