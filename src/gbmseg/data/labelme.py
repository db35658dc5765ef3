"""Rasterise labelme JSON annotations (polygons, rectangles) into 0/1 structure masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gbmseg.data.io import DataError

SUPPORTED = ("polygon", "rectangle")
TOLERANCE_PX = 1.0  # labelme snaps points to the border; allow that much overshoot


def _points(shape: dict, path: Path, i: int) -> list[tuple[float, float]]:
    pts = shape.get("points") or []
    kind = shape.get("shape_type") or "polygon"
    if kind == "rectangle" and len(pts) == 2:
        (x0, y0), (x1, y1) = pts
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if kind != "polygon" or len(pts) < 3:
        raise DataError(
            f"{path}: shape {i} ({kind!r}, {len(pts)} points) is not a polygon or rectangle"
        )
    return [(float(x), float(y)) for x, y in pts]


def read_json(path: str | Path) -> dict:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable labelme JSON file ({exc})") from exc
    if not isinstance(doc, dict) or "shapes" not in doc:
        raise DataError(f"{path}: no 'shapes' list; is this a labelme file?")
    if not doc.get("imagePath"):
        raise DataError(f"{path}: missing 'imagePath'; re-save the annotation in labelme")
    return doc


def rasterise(
    path: str | Path, labels: list[str], shape: tuple[int, int] | None = None
) -> np.ndarray:
    """0/1 mask (1 = structure) from a labelme file; DataError names file, shape and problem."""
    path = Path(path)
    doc = read_json(path)
    h = int(doc.get("imageHeight") or (shape[0] if shape else 0))
    w = int(doc.get("imageWidth") or (shape[1] if shape else 0))
    if not h or not w:
        raise DataError(f"{path}: no imageHeight/imageWidth and no image to take them from")
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for i, s in enumerate(doc["shapes"]):
        label = s.get("label")
        if label not in labels:
            raise DataError(
                f"{path}: shape {i} has unknown label {label!r}; known: {labels} "
                "(add it to validate.labels or rename it in labelme)"
            )
        pts = _points(s, path, i)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        if (
            min(xs) < -TOLERANCE_PX
            or min(ys) < -TOLERANCE_PX
            or max(xs) > w + TOLERANCE_PX
            or max(ys) > h + TOLERANCE_PX
        ):
            raise DataError(
                f"{path}: shape {i} ({label!r}) lies outside the {w}x{h} image "
                f"(x {min(xs):.0f}..{max(xs):.0f}, y {min(ys):.0f}..{max(ys):.0f})"
            )
        draw.polygon(pts, fill=1)
    return np.asarray(canvas, dtype=np.uint8)
