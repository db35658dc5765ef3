"""Fuzzing `gbmseg validate`: Hypothesis builds folders of broken files (random bytes,
truncated PNG/TIFF, odd dtypes and shapes, odd sizes, empty files, garbage labelme JSON)
beside good ones.  Every file is described (decoded, measured) without an exception, in
GBMSEG_FUZZ_EXAMPLES folders (default 300); and through the whole command (the Great
Expectations suite takes seconds per folder: GBMSEG_FUZZ_CLI_EXAMPLES, default 40),
validate exits 0 or 2 with one line per bad file and never a traceback."""

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gbmseg.cli.app import main
from gbmseg.data.table import build_table

pytestmark = pytest.mark.faults
EXAMPLES = int(os.environ.get("GBMSEG_FUZZ_EXAMPLES", "300"))
CLI_EXAMPLES = int(os.environ.get("GBMSEG_FUZZ_CLI_EXAMPLES", "40"))


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _tif(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr)
    return buf.getvalue()


GOOD = np.random.default_rng(0).integers(0, 255, (32, 40), dtype=np.uint8)
MASK = np.where(np.arange(32 * 40).reshape(32, 40) % 40 < 6, 0, 255).astype(np.uint8)
IMAGES = {
    "good": lambda d: (".png", _png(GOOD)),
    "empty": lambda d: (".png", b""),
    "random": lambda d: (".png", d.draw(st.binary(min_size=1, max_size=400))),
    "truncated_png": lambda d: (".png", _png(GOOD)[: d.draw(st.integers(8, 200))]),
    "truncated_tif": lambda d: (".tif", _tif(GOOD)[: d.draw(st.integers(8, 300))]),
    "float_tif": lambda d: (".tif", _tif(d.draw(st.sampled_from([np.nan, 1e30, -3.0])) * GOOD)),
    "int32_tif": lambda d: (".tif", _tif((GOOD.astype(np.int32) - 128) * 1000)),
    "stack_tif": lambda d: (".tif", _tif(np.stack([GOOD] * d.draw(st.integers(2, 3))))),
    "one_pixel": lambda d: (".png", _png(np.zeros((1, d.draw(st.integers(1, 5))), np.uint8))),
    "rgba": lambda d: (".png", _png(np.dstack([GOOD] * 4))),
    "jpeg": lambda d: (".jpg", _png(GOOD)),
}
MASKS = {
    "good": lambda d: (".png", _png(MASK)),
    "grey": lambda d: (".png", _png(GOOD)),
    "random": lambda d: (".png", d.draw(st.binary(min_size=0, max_size=300))),
    "wrong_size": lambda d: (".png", _png(MASK[: d.draw(st.integers(1, 31))])),
    "all_black": lambda d: (".png", _png(np.zeros_like(MASK))),
    "sixteen_bit": lambda d: (".png", _png(MASK.astype(np.uint16) * 257)),
}
JSONS = {
    "garbage": lambda d: d.draw(st.binary(max_size=200)),
    "not_labelme": lambda d: json.dumps(d.draw(st.lists(st.integers(), max_size=3))).encode(),
    "bad_points": lambda d: json.dumps(
        {
            "imagePath": "x.png",
            "imageHeight": d.draw(st.sampled_from([32, 0, -5, "32"])),
            "imageWidth": 40,
            "shapes": [
                {
                    "label": d.draw(st.sampled_from(["gbm", "hole", "cell", None, 3])),
                    "shape_type": d.draw(st.sampled_from(["polygon", "rectangle", "circle"])),
                    "points": d.draw(
                        st.lists(
                            st.lists(
                                st.one_of(st.floats(allow_nan=True), st.text(max_size=2)),
                                max_size=3,
                            ),
                            max_size=5,
                        )
                    ),
                }
            ],
        },
        default=str,
    ).encode(),
}


@st.composite
def folders(draw):
    pairs = []
    for i in range(draw(st.integers(1, 3))):
        image = draw(st.sampled_from(sorted(IMAGES)))
        if draw(st.booleans()):
            mask = ("json", draw(st.sampled_from(sorted(JSONS))))
        else:
            mask = ("raster", draw(st.sampled_from(sorted(MASKS))))
        pairs.append((f"p{i}", image, mask))
    return pairs, draw(st.data())


def _write(root: Path, pairs, data) -> None:
    for name, image, (kind, mask) in pairs:
        suffix, body = IMAGES[image](data)
        (root / "images" / f"{name}{suffix}").write_bytes(body)
        if kind == "json":
            (root / "images" / f"{name}.json").write_bytes(JSONS[mask](data))
        else:
            suffix, body = MASKS[mask](data)
            (root / "masks" / f"{name}{suffix}").write_bytes(body)


@contextlib.contextmanager
def _folder(pairs, data):
    root = Path(tempfile.mkdtemp(prefix="gbmseg-fuzz-"))
    try:
        for sub in ("images", "masks"):
            (root / sub).mkdir()
        _write(root, pairs, data)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


FUZZ = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    "database": None,
}


@settings(max_examples=EXAMPLES, **FUZZ)
@given(folders())
def test_every_file_is_described_without_an_exception(case):
    pairs, data = case
    with _folder(pairs, data) as root:
        rows = build_table(root, "black", ["gbm"])
    assert len(rows) >= len(pairs)
    for row in rows:
        if not (row.has_image and row.has_mask and row.decodes and row.mask_binary):
            assert row.error or not (row.has_image and row.has_mask)  # says what is wrong
        else:
            assert row.positive_fraction is not None or not row.size_match


@settings(max_examples=CLI_EXAMPLES, **FUZZ)
@given(folders())
def test_validate_names_every_bad_file_and_never_crashes(caplog, case):
    pairs, data = case
    with _folder(pairs, data) as root:
        caplog.clear()
        code = main(
            [
                "validate",
                "target",
                "--raw",
                str(root),
                "--out",
                str(root / "out"),
                "--no-track",
                "-S",
                "validate.min_images=1",
            ]
        )
        assert code in (0, 2)
        errors = [
            r.getMessage()
            for r in caplog.records
            if r.levelname == "ERROR" and r.name.startswith("gbmseg")
        ]
        if code == 0:
            assert errors == [] and (root / "out" / "target" / "manifest.json").is_file()
            return
        assert len(errors) == 1 and not (root / "out").exists()
        lines = errors[0].splitlines()
        if "problem(s) found" in lines[0]:
            count = int(lines[0].split(": ")[-1].split(" problem")[0])
            assert len(lines) == 1 + count
            assert all(str(root) in ln or "(dataset)" in ln for ln in lines[1:])
        else:  # a folder-level problem: one line naming the folder
            assert len(lines) == 1 and str(root) in lines[0]
