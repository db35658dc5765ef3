"""Image/mask folders (``images/NAME.png`` + ``masks/NAME.png``) for the quality benchmarks:
packing chosen images into the train step's arrays, training with the project's own ``fit``,
and scoring whole images with the project's tiled inference.

Nothing here re-implements a step: packing uses ``gbmseg.steps.pack.tiles``, training
``gbmseg.engine.lifecycle.fit`` and scoring ``gbmseg.inference.predict_proba`` + ``gbmseg.metrics``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from gbmseg import metrics as M
from gbmseg.config import AugmentParams, TrainParams
from gbmseg.data.io import list_images, read_image, read_mask
from gbmseg.engine.amp import resolve
from gbmseg.engine.lifecycle import fit
from gbmseg.inference import predict_proba
from gbmseg.steps.pack import tiles

SCORE_KEYS = ("dice", "iou", "pixel_error", "adapted_rand_error")


def natural(name: str) -> list:
    """Sort key: ``2.png`` before ``10.png``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def names(folder: Path) -> list[str]:
    """Image names that have a mask, in natural order."""
    found = [q.name for q in list_images(Path(folder) / "images")]
    return sorted((n for n in found if (Path(folder) / "masks" / n).is_file()), key=natural)


def pack(
    folder: Path,
    chosen: list[str],
    positive: str,
    tile: int,
    stride: int,
    out: Path,
    split: str,
    windows: dict[str, tuple[int, int, int]] | None = None,
) -> int:
    """Write ``{split}_images.npy`` / ``{split}_masks.npy`` tiles of the chosen images and
    the split's entry (sources, labelled pixels, structure pixels, tiles) in
    ``manifest.json``, like pack.
    ``windows``: name -> (top, left, side), the square of that image that is labelled."""
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    pixels = structure = 0
    for name in chosen:
        img = read_image(folder / "images" / name)
        msk = read_mask(folder / "masks" / name, positive)
        if windows and name in windows:
            top, left, side = windows[name]
            img, msk = (
                img[top : top + side, left : left + side],
                msk[top : top + side, left : left + side],
            )
        pixels += img.size
        structure += int(np.count_nonzero(msk))
        xs += tiles(img, tile, stride)
        ys += tiles(msk, tile, stride)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / f"{split}_images.npy", np.stack(xs))
    np.save(out / f"{split}_masks.npy", np.stack(ys))
    path = out / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {"tile": tile, "splits": {}}
    manifest["splits"][split] = {
        "sources": chosen,
        "source_pixels": pixels,
        "structure_pixels": structure,
        "tiles": len(xs),
    }
    path.write_text(json.dumps(manifest, indent=2))
    return len(xs)


def train(model, p: TrainParams, packed: Path, out: Path, augment: AugmentParams | None, **kw):
    """The train step's own fit (checkpoints in ``out.ckpt``), best weights loaded back;
    ``kw``: fit's keywords (``lr_scales``)."""
    p = p.model_copy(update={"checkpoints": f"{out}.ckpt"})
    return fit(model, p, [Path(packed)], logger=None, augment=augment, **kw)


METRICS = {
    "dice": M.dice,
    "iou": M.iou,
    "pixel_error": lambda t, p: float(np.mean(t != p)),
    "adapted_rand_error": M.adapted_rand_error,
}


def score(
    model,
    folder: Path,
    chosen: list[str],
    positive: str,
    tile: int = 256,
    device: str = "auto",
    keys: tuple[str, ...] = SCORE_KEYS,
    tta: bool = False,
) -> list[dict]:
    """Per-image scores of whole images (any size) with tiled Gaussian-blended inference
    (``tta``: averaged over the four flips)."""
    prec = resolve(device, "fp32")
    model = model.to(prec.device).to(memory_format=torch.contiguous_format).eval()
    rows = []
    for name in chosen:
        img = read_image(folder / "images" / name)
        prob = predict_proba(model, img, prec, tile, 0.25, 8, tta)
        truth = read_mask(folder / "masks" / name, positive).astype(bool)
        rows.append({"image": name, **{k: round(METRICS[k](truth, prob > 0.5), 5) for k in keys}})
    return rows


def mean(rows: list[dict], keys: tuple[str, ...] = SCORE_KEYS) -> dict[str, float]:
    return {k: round(float(np.mean([r[k] for r in rows])), 5) for k in keys}
