"""labelme JSON <-> 0/1 structure masks.

Reading: polygons and rectangles are drawn in file order, those labelled with a structure
label (``validate.labels``) as 1, those labelled with a hole label (``validate.hole_labels``)
as 0, so a ring is an outer polygon followed by a hole polygon.  Writing (``gbmseg predict
--labelme``): every region of a mask becomes a polygon, largest first, holes as hole-labelled
polygons and islands inside holes after them, so reading it back gives the same mask.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from gbmseg.data.io import DataError

SUPPORTED = ("polygon", "rectangle")
HOLE = "hole"  # shapes with this label are holes (drawn as background)
TOLERANCE_PX = 1.0  # labelme snaps points to the border; allow that much overshoot


def _points(shape: object, path: Path, i: int) -> list[tuple[float, float]]:
    if not isinstance(shape, dict):
        raise DataError(f"{path}: shape {i} is not a labelme shape (an object with points)")
    raw = shape.get("points") or []
    kind = shape.get("shape_type") or "polygon"
    try:
        pts = [(float(x), float(y)) for x, y in raw]
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: shape {i} has points that are not [x, y] numbers") from exc
    if not all(np.isfinite(v) for p in pts for v in p):
        raise DataError(f"{path}: shape {i} has a point that is not a finite number")
    if kind == "rectangle" and len(pts) == 2:
        (x0, y0), (x1, y1) = pts
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if kind != "polygon" or len(pts) < 3:
        raise DataError(
            f"{path}: shape {i} ({kind!r}, {len(pts)} points) is not a polygon or rectangle"
        )
    return pts


def _size(doc: dict, path: Path, shape: tuple[int, int] | None) -> tuple[int, int]:
    """The canvas (height, width): from the file, else the image; refused when absurd."""
    from gbmseg.data.io import check_size

    dims = []
    for key, fallback in (
        ("imageHeight", shape[0] if shape else 0),
        ("imageWidth", shape[1] if shape else 0),
    ):
        value = doc.get(key) or fallback
        try:
            value = int(value)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: {key} {value!r} is not a whole number") from exc
        if value <= 0:
            raise DataError(
                f"{path}: no positive imageHeight/imageWidth and no image to take them from"
            )
        dims.append(value)
    check_size(path, tuple(dims))
    return dims[0], dims[1]


def read_json(path: str | Path) -> dict:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable labelme JSON file ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise DataError(f"{path}: no 'shapes' list; is this a labelme file?")
    if not doc.get("imagePath"):
        raise DataError(f"{path}: missing 'imagePath'; re-save the annotation in labelme")
    return doc


def rasterise(
    path: str | Path,
    labels: list[str],
    shape: tuple[int, int] | None = None,
    hole_labels: tuple[str, ...] | list[str] = (HOLE,),
) -> np.ndarray:
    """0/1 mask (1 = structure) from a labelme file; DataError names file, shape and problem."""
    path = Path(path)
    doc = read_json(path)
    h, w = _size(doc, path, shape)
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for i, s in enumerate(doc["shapes"]):
        label = s.get("label") if isinstance(s, dict) else None
        if not isinstance(label, str) or (label not in labels and label not in hole_labels):
            raise DataError(
                f"{path}: shape {i} has unknown label {label!r}; known: {labels} (holes: "
                f"{list(hole_labels)}; add it to validate.labels or rename it in labelme)"
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
        draw.polygon(pts, fill=0 if label in hole_labels else 1)
    return np.asarray(canvas, dtype=np.uint8)


def shapes(structure: np.ndarray, label: str, hole_label: str) -> list[dict]:
    """labelme polygons of a 0/1 mask: regions and holes, each drawn after what encloses it."""
    import cv2
    from scipy import ndimage

    m = structure.astype(bool)
    background, _ = ndimage.label(~m)  # 4-connected: the holes of 8-connected regions
    border = set(
        np.unique(
            np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
        )
    )
    holes = np.isin(background, [v for v in range(1, background.max() + 1) if v not in border])
    found = []
    for region, name in ((m, label), (holes, hole_label)):
        contours, tree = cv2.findContours(
            region.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE
        )
        outer = [
            c
            for c, h in zip(contours, tree[0] if tree is not None else [], strict=True)
            if h[3] < 0
        ]  # outer boundaries (islands too); holes come from `holes`
        for c in outer:
            area = cv2.contourArea(c) + len(c)  # + boundary: never 0 for a thin region
            found.append((area, name, c[:, 0, :].astype(float)))
    out = []
    for _, name, pts in sorted(found, key=lambda f: -f[0]):  # enclosing shapes first
        if len(pts) < 3:  # a lone pixel or a straight run: a flat triangle draws just those
            pts = np.array([pts[0], pts[-1], pts[-1]])
        shape = {"label": name, "points": pts.tolist(), "group_id": None}
        out.append(shape | {"shape_type": "polygon", "flags": {}})
    return out


def document(
    structure: np.ndarray, image_path: str, label: str, hole_label: str, pixel_size=None
) -> dict:
    """A labelme file for ``structure`` (``image_path`` relative to the JSON file); with
    ``pixel_size`` (a ``PixelSize``), its record too (labelme keeps keys it does not know)."""
    h, w = structure.shape
    return {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes(structure, label, hole_label),
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": int(h),
        "imageWidth": int(w),
        **(pixel_size.record() if pixel_size is not None else {}),
    }
