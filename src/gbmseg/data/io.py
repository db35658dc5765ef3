"""Image and mask I/O: PNG, TIFF (ImageJ, OME), DM3/DM4; 8/16-bit/float; the pixel size each
file carries (``gbmseg.data.scale``); mask polarity; atomic PNG writes that keep the pixel size."""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from gbmseg.data import scale
from gbmseg.data.atomic import write_bytes
from gbmseg.data.scale import PixelSize

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".dm3", ".dm4", ".jpg", ".jpeg")
DM_SUFFIXES = (".dm3", ".dm4")
MAX_PIXELS = 1 << 28  # 16384 x 16384: a bigger image is refused before it is decoded


class DataError(ValueError):
    """A data file or folder is missing, unreadable or inconsistent."""


def starts(length: int, tile: int, step: int) -> list[int]:
    """Tile origins covering ``length`` with ``step``; the last tile ends flush with the edge."""
    if length <= tile:
        return [0]
    s = list(range(0, length - tile + 1, step))
    if s[-1] != length - tile:
        s.append(length - tile)
    return s


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _to_gray(arr: np.ndarray, path: Path) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        rgb = arr[..., :3].astype(np.float64)
        if not (
            np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])
        ):
            log.warning("%s: colour image converted to grayscale (luma)", path)
        arr = rgb @ np.array([0.299, 0.587, 0.114])
        arr = np.rint(arr).astype(np.uint16 if arr.max() > 255 else np.uint8)
    if arr.ndim != 2:
        raise DataError(f"{path}: expected a 2-D grayscale image, got shape {arr.shape}")
    return arr


def check_size(path: Path, shape: tuple[int, ...]) -> None:
    """Refuse an image whose header announces more pixels than can sensibly be decoded
    whole (a decompression bomb, or a scan that needs tiling first)."""
    pixels = int(np.prod(shape, dtype=np.int64)) if shape else 0
    if pixels > MAX_PIXELS:
        dims = " x ".join(str(s) for s in shape)
        raise DataError(
            f"{path}: {dims} is {pixels / 1e6:.0f} megapixels, more than gbmseg decodes at "
            f"once ({MAX_PIXELS / 1e6:.0f}); crop or tile it, or save it as an uncompressed "
            "8-bit TIFF, which `gbmseg predict` streams"
        )


@dataclass(frozen=True)
class Picture:
    """A decoded image and its pixel size (None: the file carries no calibration)."""

    pixels: np.ndarray
    pixel_size: PixelSize | None


def _read_tiff(path: Path) -> Picture:
    with tifffile.TiffFile(path) as tif:
        check_size(path, tif.series[0].shape)
        return Picture(tif.asarray(), scale.from_tiff(tif, path))


def _dm_image(path: Path):
    """Gatan DigitalMicrograph 3/4 through rosettasciio (HyperSpy's reader): the first 2-D
    image of the file, not yet decoded (a dask array), and the calibration of its axes."""
    from rsciio.digitalmicrograph import file_reader

    try:
        found = file_reader(str(path), lazy=True)
    except (OSError, ValueError, KeyError, IndexError, NotImplementedError, struct.error) as exc:
        raise DataError(f"{path}: cannot read the DigitalMicrograph file ({exc})") from exc
    images = [d for d in found if d["data"].ndim == 2]
    if not images:
        shapes = [tuple(d["data"].shape) for d in found]
        raise DataError(f"{path}: no 2-D image in the file (found shapes {shapes})")
    d = images[0]
    check_size(path, tuple(d["data"].shape))
    axes = {a.get("name"): a for a in d["axes"]}
    size = None
    if {"x", "y"} <= set(axes) and all(axes[a].get("units") for a in "xy"):
        nm = [float(axes[a]["scale"]) * scale.unit_nm(axes[a]["units"], path) for a in "xy"]
        size = scale.checked(
            nm[0], nm[1], f"{path.suffix[1:].upper()} calibration of {path.name}", path
        )
    return d["data"], size


def _read_dm(path: Path) -> Picture:
    data, size = _dm_image(path)
    return Picture(np.asarray(data), size)


def _read_pillow(path: Path) -> Picture:
    with Image.open(path) as im:
        check_size(path, (im.height, im.width, len(im.getbands())))
        im.load()
        arr = np.asarray(im.convert("I;16") if im.mode.startswith("I;16") else im)
        if im.mode == "P":
            arr = np.asarray(im.convert("L"))
        fmt = im.format
    return Picture(arr, scale.from_png(path) if fmt == "PNG" else None)


def read(path: str | Path) -> Picture:
    """Decode a PNG/TIFF/DM3/DM4 into a 2-D array of its native dtype and its pixel size;
    DataError names the file. The size in the header is checked before any pixel is decoded."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            pic = _read_tiff(path)
        elif suffix in DM_SUFFIXES:
            pic = _read_dm(path)
        else:
            pic = _read_pillow(path)
    except DataError:
        raise
    except scale.CalibrationError as exc:
        raise DataError(str(exc)) from exc
    except (
        OSError,
        UnidentifiedImageError,
        ValueError,
        SyntaxError,
        IndexError,
        Image.DecompressionBombError,
    ) as exc:
        raise DataError(f"{path}: cannot decode image ({exc}); re-export the file") from exc
    return Picture(_to_gray(np.asarray(pic.pixels), path), pic.pixel_size)


def pixel_size_of(path: str | Path) -> PixelSize | None:
    """The calibration a file carries, read from its header without decoding the pixels."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tif:
                return scale.from_tiff(tif, path)
        if suffix in DM_SUFFIXES:
            return _dm_image(path)[1]
        return scale.from_png(path) if suffix == ".png" else None
    except scale.CalibrationError as exc:
        raise DataError(str(exc)) from exc
    except (OSError, ValueError, IndexError, struct.error) as exc:
        raise DataError(f"{path}: cannot read the file's header ({exc}); re-export it") from exc


def read_raw(path: str | Path) -> np.ndarray:
    """The pixels of ``read``, without the pixel size."""
    return read(path).pixels


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale any integer/float grayscale array to uint8 (16-bit and float: by the used range)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        # 16-bit EM often uses 12-14 bits: stretch the used range, not the dtype's
        lo, hi = int(arr.min()), int(arr.max())
        if hi == lo:
            return np.zeros(arr.shape, np.uint8)
        return ((arr.astype(np.uint32) - lo) * 255 // (hi - lo)).astype(np.uint8)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    a = arr.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    return (
        np.zeros(a.shape, np.uint8)
        if hi == lo
        else np.rint((a - lo) / (hi - lo) * 255).astype(np.uint8)
    )


def read_image(path: str | Path) -> np.ndarray:
    """Grayscale image as uint8."""
    return to_uint8(read_raw(path))


def mask_to_binary(arr: np.ndarray, positive: str, path: Path | str = "mask") -> np.ndarray:
    """Map a {0, max} mask to {0, 1} with 1 = structure; DataError on grey values."""
    values = np.unique(arr)
    hi = 65535 if arr.dtype == np.uint16 else 255 if arr.dtype == np.uint8 else 1
    if not set(values.tolist()) <= {0, hi} and not set(values.tolist()) <= {0, 1}:
        shown = ", ".join(str(v) for v in values[:6]) + (" ..." if len(values) > 6 else "")
        raise DataError(
            f"{path}: mask is not binary ({len(values)} distinct values: {shown}); "
            "save masks as lossless PNG with only black and white"
        )
    on = arr > 0
    return (~on if positive == "black" else on).astype(np.uint8)


def read_mask(path: str | Path, positive: str) -> np.ndarray:
    return mask_to_binary(read_raw(path), positive, path)


def png_bytes(arr: np.ndarray, pixel_size: PixelSize | None = None) -> bytes:
    """PNG bytes; with ``pixel_size``, a pHYs chunk (pixels per metre) and its source."""
    from PIL.PngImagePlugin import PngInfo

    buf = io.BytesIO()
    extra: dict = {}
    if pixel_size is not None:
        dpi, text = scale.png_metadata(pixel_size)
        info = PngInfo()
        for k, v in text.items():
            info.add_text(k, v)
        extra = {"dpi": dpi, "pnginfo": info}
    Image.fromarray(arr).save(buf, format="PNG", optimize=False, compress_level=6, **extra)
    return buf.getvalue()


def write_png(path: str | Path, arr: np.ndarray, pixel_size: PixelSize | None = None) -> Path:
    return write_bytes(path, png_bytes(arr, pixel_size))


def binary_to_mask(binary: np.ndarray, positive: str) -> np.ndarray:
    """{0,1} structure map -> uint8 {0,255} mask in the configured polarity."""
    on = binary.astype(bool)
    return np.where(on if positive == "white" else ~on, 255, 0).astype(np.uint8)


def collect_images(
    items: list[str | Path], what: str = "image", skip: tuple[str, ...] = ()
) -> list[Path]:
    """Files named directly plus the image files of named folders (names ending in ``skip``
    left out); DataError naming what is missing."""
    found: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found += [q for q in list_images(item) if not q.name.endswith(skip)]
        elif item.is_file():
            found.append(item)
        else:
            raise DataError(f"{item}: no such {what} or folder")
    if not found:
        raise DataError(f"{', '.join(map(str, items))}: no {what} files (PNG/TIFF/DM3/DM4) found")
    return found
