"""Pair images with masks and describe every pair as one row of a table."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gbmseg.data.io import DataError, list_images, mask_to_binary, read_raw, to_uint8


@dataclass
class PairRow:
    name: str
    image: str
    mask: str
    has_image: bool = True
    has_mask: bool = True
    decodes: bool = True
    width: int = 0
    height: int = 0
    mask_width: int = 0
    mask_height: int = 0
    size_match: bool = True
    mask_values: int = 0
    mask_binary: bool = True
    positive_fraction: float | None = None  # None when the mask is absent or unusable
    sha256: str | None = None  # None when the image is absent or unreadable
    mean: float = 0.0
    std: float = 0.0
    error: str = ""


def find_pairs(root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Images and masks of a dataset folder keyed by file stem; DataError if the layout is off."""
    if not root.is_dir():
        raise DataError(
            f"{root}: data folder not found; generate demo data with `gbmseg synth`, "
            "fetch tracked data with `dvc pull`, or point data.raw at your own folder"
        )
    img_dir, mask_dir = root / "images", root / "masks"
    if not img_dir.is_dir():
        raise DataError(f"{root}: no images/ folder (expected images/NAME.png and masks/NAME.png)")
    images = {p.stem: p for p in list_images(img_dir)}
    masks = {p.stem: p for p in list_images(mask_dir)} if mask_dir.is_dir() else {}
    if not images and not masks:
        raise DataError(f"{root}: images/ is empty; add image/mask pairs or run `gbmseg synth`")
    return images, masks


def describe(name: str, image: Path | None, mask: Path | None, positive: str) -> PairRow:
    """Decode one pair and fill a row; problems become fields, never exceptions."""
    row = PairRow(name=name, image=str(image or ""), mask=str(mask or ""))
    row.has_image, row.has_mask = image is not None, mask is not None
    img = msk = None
    try:
        if image is not None:
            img = to_uint8(read_raw(image))
            row.height, row.width = img.shape
            row.sha256 = hashlib.sha256(image.read_bytes()).hexdigest()
            row.mean, row.std = float(img.mean()), float(img.std())
        if mask is not None:
            msk = read_raw(mask)
            row.mask_height, row.mask_width = msk.shape
            row.mask_values = len(np.unique(msk))
    except DataError as exc:
        row.decodes, row.error = False, str(exc)
        return row
    if img is not None and msk is not None:
        row.size_match = img.shape == msk.shape
    if msk is not None and row.size_match:
        try:
            row.positive_fraction = float(mask_to_binary(msk, positive, mask).mean())
        except DataError as exc:
            row.mask_binary, row.error = False, str(exc)
    return row


def build_table(root: Path, positive: str) -> list[PairRow]:
    images, masks = find_pairs(root)
    names = sorted(set(images) | set(masks))
    return [describe(n, images.get(n), masks.get(n), positive) for n in names]


def as_records(rows: list[PairRow]) -> list[dict]:
    return [asdict(r) for r in rows]
