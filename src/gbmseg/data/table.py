"""Pair images with masks and describe every pair as one row of a table."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from gbmseg.data import labelme, scale
from gbmseg.data.io import DataError, list_images, mask_to_binary, read, read_raw, to_uint8


@dataclass(frozen=True)
class Folder:
    """One labelled folder of a set: its name prefix, polarity, and whether it is test-only."""

    path: Path
    prefix: str
    positive: str
    test_only: bool


@dataclass
class PairRow:
    name: str
    image: str
    mask: str
    folder: str = ""
    positive: str = "black"
    test_only: bool = False
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
    pixels_sha256: str | None = None  # of the decoded pixels: the same image in any format
    mean: float = 0.0
    std: float = 0.0
    pixel_size_nm: float | None = None  # None: neither the file nor the set carries one
    pixel_size_source: str = ""
    error: str = ""


def _annotations(root: Path) -> dict[str, Path]:
    """labelme JSON files beside the images, in labels/ or in masks/ (stem -> path)."""
    found: dict[str, Path] = {}
    for sub in ("images", "labels", "masks"):
        folder = root / sub
        if folder.is_dir():
            found.update({p.stem: p for p in sorted(folder.glob("*.json"))})
    return found


def find_pairs(root: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Images and masks of a dataset folder keyed by file stem; DataError if the layout is off.

    A mask is a PNG/TIFF in ``masks/`` or a labelme JSON (beside the image, in ``labels/`` or
    in ``masks/``); where both exist the raster mask wins.
    """
    if not root.is_dir():
        raise DataError(
            f"{root}: data folder not found; generate demo data with `gbmseg synth`, "
            "fetch tracked data with `dvc pull`, or point data.raw at your own folder"
        )
    img_dir, mask_dir = root / "images", root / "masks"
    if not img_dir.is_dir():
        raise DataError(f"{root}: no images/ folder (expected images/NAME.png and masks/NAME.png)")
    images = {p.stem: p for p in list_images(img_dir)}
    masks = {
        **_annotations(root),
        **({p.stem: p for p in list_images(mask_dir)} if mask_dir.is_dir() else {}),
    }
    if not images and not masks:
        raise DataError(f"{root}: images/ is empty; add image/mask pairs or run `gbmseg synth`")
    return images, masks


def load_structure(
    mask: Path, positive: str, labels: list[str], shape: tuple[int, int] | None = None
):
    """0/1 structure map from a raster mask (in its polarity) or a labelme JSON file."""
    if mask.suffix.lower() == ".json":
        return labelme.rasterise(mask, labels, shape)
    return mask_to_binary(read_raw(mask), positive, mask)


def describe(
    name: str,
    image: Path | None,
    mask: Path | None,
    positive: str,
    labels: list[str],
    *,
    pixel_size_nm: float | None = None,
    set_key: str = "sets.<set>.pixel_size_nm",
) -> PairRow:
    """Decode one pair and fill a row; problems become fields, never exceptions. The pixel
    size is ``pixel_size_nm`` (the set's, named ``set_key``) when given, else the file's."""
    row = PairRow(name=name, image=str(image or ""), mask=str(mask or ""))
    row.has_image, row.has_mask = image is not None, mask is not None
    img = None
    if image is not None:
        try:
            pic = read(image)
            img = to_uint8(pic.pixels)
            size = scale.choose(pic.pixel_size, pixel_size_nm, set_key, image)
        except (DataError, scale.CalibrationError) as exc:
            row.decodes, row.error = False, str(exc)
        else:
            if size is not None:
                row.pixel_size_nm, row.pixel_size_source = size.nm, size.source
            row.height, row.width = img.shape
            row.sha256 = hashlib.sha256(image.read_bytes()).hexdigest()
            row.pixels_sha256 = pixels_sha256(img)
            row.mean, row.std = float(img.mean()), float(img.std())
    if mask is None:
        return row
    try:
        if mask.suffix.lower() == ".json":
            structure = labelme.rasterise(mask, labels, None if img is None else img.shape)
            row.mask_values = 2
        else:
            raw = read_raw(mask)
            row.mask_values = len(np.unique(raw))
            row.mask_height, row.mask_width = raw.shape
            structure = mask_to_binary(raw, positive, mask)
    except DataError as exc:
        row.mask_binary = False
        row.error = f"{row.error}; {exc}" if row.error else str(exc)
        return row
    row.mask_height, row.mask_width = structure.shape
    if img is not None:
        row.size_match = img.shape == structure.shape
    if row.size_match:
        row.positive_fraction = float(structure.mean())
    return row


def pixels_sha256(img: np.ndarray) -> str:
    """Identity of an image by its pixels, whatever the file format."""
    h = hashlib.sha256(f"{img.shape}:{img.dtype}:".encode())
    h.update(np.ascontiguousarray(img).tobytes())
    return h.hexdigest()


def folders(raw: Path, positive: str | dict[str, str]) -> list[Folder]:
    """The labelled folders of a set: ``raw`` itself (images/ + masks/), or each sub-folder
    holding images/ (several sets pretrained on together, names prefixed ``SUB__``); each
    with its ``test/`` sub-folder, if any, as test-only images."""
    if not raw.is_dir():
        raise DataError(
            f"{raw}: data folder not found; generate demo data with `gbmseg synth`, "
            "fetch tracked data with `dvc pull`, or point sets.<name>.raw at your own folder"
        )
    if (raw / "images").is_dir():
        bases = [(raw, "")]
    else:
        bases = [(q, f"{q.name}__") for q in sorted(raw.iterdir()) if (q / "images").is_dir()]
        if not bases:
            raise DataError(
                f"{raw}: no images/ folder (expected images/NAME.png and masks/NAME.png, "
                "or sub-folders that each hold them)"
            )
    out = []
    for path, prefix in bases:
        if isinstance(positive, str):
            colour = positive
        elif path.name in positive:
            colour = positive[path.name]
        else:
            raise DataError(
                f"{raw}: no polarity for sub-folder {path.name!r}; add it to the set's "
                f"positive mapping (has {sorted(positive)})"
            )
        out.append(Folder(path, prefix, colour, False))
        if (path / "test" / "images").is_dir():
            out.append(Folder(path / "test", prefix, colour, True))
    return out


def build_table(
    raw: Path,
    positive: str | dict[str, str],
    labels: list[str],
    pixel_size_nm: float | None = None,
    set_key: str = "sets.<set>.pixel_size_nm",
) -> list[PairRow]:
    """One row per image/mask pair of every folder of the set."""
    rows: list[PairRow] = []
    for f in folders(raw, positive):
        images, masks = find_pairs(f.path)
        for n in sorted(set(images) | set(masks)):
            row = describe(
                f.prefix + n,
                images.get(n),
                masks.get(n),
                f.positive,
                labels,
                pixel_size_nm=pixel_size_nm,
                set_key=set_key,
            )
            row.folder = str(f.path.relative_to(raw)) if f.path != raw else ""
            row.positive, row.test_only = f.positive, f.test_only
            rows.append(row)
    return rows


def as_records(rows: list[PairRow]) -> list[dict]:
    return [asdict(r) for r in rows]
