"""Image/mask folders (``images/NAME.png`` + ``masks/NAME.png``) for the quality benchmarks,
taken through the product as a user's set is: the validate step once per folder, the pack
step's ``write`` for the chosen images, the train and finetune steps, and whole images scored
with the product's tiled inference (``gbmseg.inference.predict_proba`` + ``gbmseg.metrics``).

Nothing here re-implements a step; what a study chooses (which images are labelled, which
are scored) it says with names.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import numpy as np
import torch

from gbmseg import metrics as M
from gbmseg.config import load
from gbmseg.data.io import list_images, read_image, read_mask, read_raw, write_png
from gbmseg.engine.amp import choose_precision
from gbmseg.inference import predict_proba
from gbmseg.steps import pack as pack_step
from gbmseg.steps import validate as validate_step

log = logging.getLogger("benchmarks.folders")
SCORE_KEYS = ("dice", "iou", "pixel_error", "adapted_rand_error")
ROOT = Path(__file__).resolve().parents[1]


def natural(name: str) -> list:
    """Sort key: ``2.png`` before ``10.png``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def names(folder: Path) -> list[str]:
    """Image names that have a mask, in natural order."""
    found = [q.name for q in list_images(Path(folder) / "images")]
    return sorted((n for n in found if (Path(folder) / "masks" / n).is_file()), key=natural)


def validated(folder: Path, positive: str, work: Path, overrides: list[str] = ()) -> Path:
    """The validate step's output for ``folder`` (run once; cached in ``work``);
    ``overrides``: ``-S`` style changes to the validate section."""
    listing = "\n".join([str(Path(folder).resolve()), positive, *overrides, *names(folder)])
    key = hashlib.sha256(listing.encode()).hexdigest()[:12]
    out = work / "validated" / f"{Path(folder).name}-{key}"
    if not (out / "manifest.json").is_file():
        p = load(ROOT / "params.yaml", list(overrides)).validate_
        validate_step.run(p, folder, out, positive)
    return out


def pack(valid: Path, by_split: dict[str, list[str]], tile: int, stride: int, out: Path) -> dict:
    """The pack step's ``write`` of the named images of the validated set ``valid``; returns
    the manifest's train entry (sources, source_pixels, structure_pixels, tiles)."""
    p = load(ROOT / "params.yaml", [f"pack.tile={tile}", f"pack.stride={stride}"]).pack
    return pack_step.write(p, valid, by_split, out)["splits"]["train"]


def crops(folder: Path, windows: dict[str, tuple[int, int, int]], out: Path) -> Path:
    """A folder of the labelled squares ``windows`` (name -> top, left, side) as image and
    mask files (mask values as they come): what a lab that labelled only that square of each
    image would have."""
    if not (out / "images").is_dir():
        tmp = out.with_name(out.name + ".tmp")
        for name, (top, left, side) in windows.items():
            for kind, read in (("images", read_image), ("masks", read_raw)):
                arr = read(folder / kind / name)[top : top + side, left : left + side]
                (tmp / kind).mkdir(parents=True, exist_ok=True)
                write_png(tmp / kind / name, np.ascontiguousarray(arr, dtype=np.uint8))
        tmp.rename(out)
    return out


def step_paths(out: Path) -> list[str]:
    """``-S`` overrides sending the train and finetune steps' outputs under ``out``."""
    return [
        f"{section}.{key}={out}{suffix}"
        for section in ("train", "finetune")
        for key, suffix in (("out", ""), ("metrics", ".metrics.json"), ("history", ".history.csv"))
    ] + [f"train.checkpoints={out}.ckpt"]


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
    prec = choose_precision(device, "fp32")
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
