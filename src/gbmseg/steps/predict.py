"""predict: segment images of any size with a registered or local model.

Tiles are streamed (see ``gbmseg.inference``) and the output TIFFs are written row by row,
so memory is bounded by the tile batch, not the image.  Outputs per image:
``NAME.mask.tif`` (structure in the configured polarity, with the input's pixel size in its
resolution tags) and, on request,
``NAME.prob.tif`` (probability x 255) and ``NAME.json`` (labelme polygons, holes as
``hole`` polygons: open it in labelme, correct it, and it is a label `gbmseg validate`
accepts).  Each file is written to a fresh temporary name and renamed into place, so runs
writing into one folder at once never leave a mixed or truncated file. An image whose pixel
size differs from the model's is brought to the model's scale and the probabilities back to
the image's grid (``predict.resample``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile
from tqdm import tqdm

from gbmseg.config import PredictParams, is_registry_ref
from gbmseg.data import labelme, resample, scale
from gbmseg.data.atomic import write_json
from gbmseg.data.io import collect_images, pixel_size_of, read_raw, to_uint8
from gbmseg.data.scale import PixelSize
from gbmseg.engine.amp import choose_precision
from gbmseg.engine.checkpoint import load_model
from gbmseg.inference import iter_bands, model_pixel_size, predict_at_scale, threshold_for

log = logging.getLogger(__name__)


class TiffRows:
    """Rows of an uncompressed 8-bit TIFF read on demand, one band at a time, so a huge
    image never sits in memory (a memory map would keep every page it touched resident)."""

    def __init__(self, path: Path, offset: int, shape: tuple[int, int]):
        self.path, self.offset, self.shape = path, offset, shape
        self.dtype = np.dtype(np.uint8)
        self._band: tuple[int, int, np.ndarray] | None = None

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, cols = key
        y0, y1 = rows.start or 0, min(rows.stop or self.shape[0], self.shape[0])
        if self._band is None or not (self._band[0] <= y0 and y1 <= self._band[1]):
            w = self.shape[1]
            data = np.fromfile(
                self.path, np.uint8, count=(y1 - y0) * w, offset=self.offset + y0 * w
            )
            self._band = (y0, y1, data.reshape(y1 - y0, w))
        b0, _, band = self._band
        return band[y0 - b0 : y1 - b0, cols]


def open_image(path: Path):
    """8-bit image; an uncompressed 8-bit TIFF is streamed band by band instead of read."""
    if path.suffix.lower() in (".tif", ".tiff"):
        with contextlib.suppress(ValueError, OSError, IndexError), tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            plain = page.is_contiguous and page.compression == 1 and not page.is_tiled
            if plain and page.dtype == np.uint8 and len(page.shape) == 2:
                return TiffRows(path, int(page.dataoffsets[0]), page.shape)
    return to_uint8(read_raw(path))


TIFF_TILE = 256


def _tiles(rows: Iterator[np.ndarray], width: int) -> Iterator[np.ndarray]:
    """Regroup rows into TIFF_TILE x TIFF_TILE tiles in row-major order (zero-padded)."""
    band: list[np.ndarray] = []

    def flush() -> Iterator[np.ndarray]:
        block = np.zeros((TIFF_TILE, -(-width // TIFF_TILE) * TIFF_TILE), np.uint8)
        block[: len(band), :width] = np.stack(band)
        band.clear()
        for x in range(0, block.shape[1], TIFF_TILE):
            yield block[:, x : x + TIFF_TILE]

    for row in rows:
        band.append(row)
        if len(band) == TIFF_TILE:
            yield from flush()
    if band:
        yield from flush()


def _write(
    path: Path, rows: Iterator[np.ndarray], h: int, w: int, pixel_size: PixelSize | None
) -> None:
    """A tiled TIFF; with ``pixel_size``, its resolution tags (cm) and where it came from."""
    tifffile.imwrite(
        path,
        _tiles(rows, w),
        shape=(h, w),
        dtype=np.uint8,
        tile=(TIFF_TILE, TIFF_TILE),
        compression="zlib",
        photometric="minisblack",
        **(scale.tiff_metadata(pixel_size) if pixel_size is not None else {}),
    )


def _tee_rows(
    bands: Iterator[np.ndarray],
    threshold: float,
    positive: str,
    prob_rows: queue.Queue | None,
    bar: tqdm,
) -> Iterator[np.ndarray]:
    """Mask rows for the mask writer; probability rows go to a second writer's queue."""
    on, off = (0, 255) if positive == "black" else (255, 0)
    try:
        for band in bands:
            bar.update(band.shape[0])
            for row in band:
                if prob_rows is not None:
                    prob_rows.put(np.rint(row * 255).astype(np.uint8))
                yield np.where(row > threshold, on, off).astype(np.uint8)
    finally:
        if prob_rows is not None:
            prob_rows.put(None)


def _drain(q: queue.Queue) -> Iterator[np.ndarray]:
    while (row := q.get()) is not None:
        yield row


def temp_beside(path: Path) -> Path:
    """A fresh temporary name in ``path``'s folder: runs writing into the same folder at
    once never share one, and ``replace`` then swaps whole files in."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def write_labelme(
    mask_path: Path, image: Path, positive: str, label: str, pixel_size: PixelSize | None
) -> Path:
    """The predicted mask as labelme polygons (NAME.json, image path relative to it), with
    the pixel size (labelme keeps keys it does not know when it saves)."""
    on = 0 if positive == "black" else 255
    structure = tifffile.imread(mask_path) == on
    rel = os.path.relpath(image.resolve(), mask_path.parent.resolve())
    doc = labelme.document(structure, rel, label, labelme.HOLE, pixel_size)
    return write_json(mask_path.parent / f"{image.stem}.json", doc)


def bands_of(model, path: Path, p: PredictParams, prec, size: PixelSize | None):
    """(image shape, probability rows): streamed at the image's own scale, or the whole
    image through the model's scale when they differ (``predict.resample``)."""
    model_nm = model_pixel_size(model)
    if model_nm and size is None:
        log.warning("predict: %s carries no pixel size; segmented as it comes, not at the "
                    "model's %g nm/px", path, model_nm)  # fmt: skip
    if p.resample and size is not None and resample.needed(size.nm, model_nm):
        img = to_uint8(read_raw(path))
        prob = predict_at_scale(model, img, prec, size.nm, p.tile, p.overlap, p.batch, p.tta)
        return img.shape, iter([prob])
    img = open_image(path)
    return img.shape, iter_bands(model, img, prec, p.tile, p.overlap, p.batch, p.tta)


def predict_file(
    model, path: Path, out: Path, p: PredictParams, positive: str, prec, label: str = "gbm"
) -> dict:
    """Segment one image (the threshold: ``p.threshold``, or the model's own)."""
    threshold = threshold_for(model, p.threshold)
    size = pixel_size_of(path)
    (h, w), bands = bands_of(model, path, p, prec, size)
    out.mkdir(parents=True, exist_ok=True)
    mask_path, prob_path = out / f"{path.stem}.mask.tif", out / f"{path.stem}.prob.tif"
    tmp_mask, tmp_prob = temp_beside(mask_path), temp_beside(prob_path)
    q: queue.Queue | None = queue.Queue(maxsize=2 * p.tile) if p.probabilities else None
    writer = None
    if q is not None:
        writer = threading.Thread(
            target=_write, args=(tmp_prob, _drain(q), h, w, size), daemon=True
        )
        writer.start()
    try:
        with tqdm(total=h, desc=path.name, unit="row", disable=None, leave=False) as bar:
            _write(tmp_mask, _tee_rows(bands, threshold, positive, q, bar), h, w, size)
        if writer is not None:
            writer.join()
            tmp_prob.replace(prob_path)
        tmp_mask.replace(mask_path)
    finally:
        for tmp in (tmp_mask, tmp_prob):
            tmp.unlink(missing_ok=True)
    labels = write_labelme(mask_path, path, positive, label, size) if p.labelme else ""
    return {
        "image": str(path),
        "mask": str(mask_path),
        "height": h,
        "width": w,
        "probabilities": str(prob_path) if p.probabilities else "",
        "labelme": str(labels),
        "threshold": threshold,
        **(size.record() if size else {"pixel_size_nm": None, "pixel_size_source": ""}),
    }


def run(
    p: PredictParams,
    model_ref: str,
    inputs: list[str | Path],
    out: str | Path,
    *,
    positive: str,
    label: str = "gbm",
) -> list[dict]:
    """Segment every image; ``label`` names the structure in labelme files (--labelme)."""
    files = collect_images(inputs, "image")
    if is_registry_ref(model_ref):
        from gbmseg.tracking import load_model_ref

        model = load_model_ref(model_ref)
    else:
        model = load_model(model_ref)
    prec = choose_precision(p.device, p.amp)
    model.to(prec.device)
    log.info("predict: threshold %s (predict.threshold: %s)", threshold_for(model, p.threshold),
             p.threshold)  # fmt: skip
    results = [
        predict_file(model, f, Path(out), p, positive, prec, label)
        for f in tqdm(files, desc="predict", unit="img", disable=None)
    ]
    log.info("predict: %d image(s) -> %s", len(results), out)
    return results
