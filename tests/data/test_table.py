"""The pair table validate checks: every problem a field of its row, never an exception."""

import numpy as np
from PIL import Image

from gbmseg.data.table import build_table, describe, pixels_sha256


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_rows_name_each_problem(tmp_path):
    img = np.full((32, 32), 120, np.uint8)
    mask = np.full((32, 32), 255, np.uint8)
    mask[10:14] = 0  # structure black
    _png(tmp_path / "images" / "ok.png", img)
    _png(tmp_path / "masks" / "ok.png", mask)
    _png(tmp_path / "images" / "small.png", img[:16])
    _png(tmp_path / "masks" / "small.png", mask)
    _png(tmp_path / "masks" / "orphan.png", mask)
    grey = mask.copy()
    grey[0, 0] = 128
    _png(tmp_path / "images" / "grey.png", img)
    _png(tmp_path / "masks" / "grey.png", grey)
    (tmp_path / "images" / "broken.png").write_bytes(b"not a png")
    _png(tmp_path / "masks" / "broken.png", mask)
    rows = {r.name: r for r in build_table(tmp_path, "black", ["gbm"])}
    assert rows["ok"].size_match and rows["ok"].positive_fraction == 4 / 32
    assert rows["ok"].pixels_sha256 == pixels_sha256(img)
    assert not rows["small"].size_match
    assert not rows["orphan"].has_image and rows["orphan"].has_mask
    assert not rows["grey"].mask_binary and "grey" in rows["grey"].error
    assert not rows["broken"].decodes and rows["broken"].error


def test_the_same_pixels_hash_alike_in_any_format(tmp_path):
    img = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    Image.fromarray(img).save(tmp_path / "a.png")
    Image.fromarray(img).save(tmp_path / "a.tif")
    a = describe("a", tmp_path / "a.png", None, "black", [])
    b = describe("b", tmp_path / "a.tif", None, "black", [])
    assert a.sha256 != b.sha256 and a.pixels_sha256 == b.pixels_sha256
