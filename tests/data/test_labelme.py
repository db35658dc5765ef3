import json

import numpy as np
import pytest

from gbmseg.data.io import DataError
from gbmseg.data.labelme import rasterise


def _doc(tmp_path, shapes, **extra):
    doc = {
        "version": "5.4.1",
        "shapes": shapes,
        "imagePath": "a.png",
        "imageData": None,
        "imageHeight": 20,
        "imageWidth": 30,
        **extra,
    }
    path = tmp_path / "a.json"
    path.write_text(json.dumps(doc))
    return path


def _poly(label="gbm", pts=((2, 2), (12, 2), (12, 8), (2, 8))):
    return {"label": label, "points": [list(p) for p in pts], "shape_type": "polygon"}


def test_polygon_and_rectangle_are_filled(tmp_path):
    rect = {"label": "gbm", "points": [[20, 10], [25, 15]], "shape_type": "rectangle"}
    m = rasterise(_doc(tmp_path, [_poly(), rect]), ["gbm"])
    assert m.shape == (20, 30) and set(np.unique(m)) == {0, 1}
    assert m[5, 7] == 1 and m[12, 22] == 1 and m[0, 0] == 0 and m[15, 5] == 0
    assert m.sum() == 11 * 7 + 6 * 6


def test_unknown_label(tmp_path):
    with pytest.raises(DataError, match=r"a\.json: shape 0 has unknown label 'podocyte'"):
        rasterise(_doc(tmp_path, [_poly("podocyte")]), ["gbm"])


def test_polygon_outside_the_image(tmp_path):
    with pytest.raises(DataError, match=r"shape 0 \('gbm'\) lies outside the 30x20 image"):
        rasterise(_doc(tmp_path, [_poly(pts=((2, 2), (45, 2), (12, 8)))]), ["gbm"])


def test_missing_image_path(tmp_path):
    with pytest.raises(DataError, match="missing 'imagePath'"):
        rasterise(_doc(tmp_path, [_poly()], imagePath=""), ["gbm"])


def test_not_json(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="not a readable labelme JSON"):
        rasterise(path, ["gbm"])
