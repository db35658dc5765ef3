"""pack: fixed-size uint8 tiles in memory-mappable .npy arrays, split by source image."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from gbmseg.config import PackParams
from gbmseg.data.atomic import atomic_dir, meta, sha256_file, write_json
from gbmseg.data.io import DataError, list_images, read_image, read_raw, starts

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def split_sources(names: list[str], p: PackParams) -> dict[str, list[str]]:
    """Deterministic split of source image names (same names + seed -> same split)."""
    order = sorted(names)
    perm = np.random.default_rng(p.seed).permutation(len(order))
    shuffled = [order[i] for i in perm]
    n = len(shuffled)
    n_test = max(1, round(p.test_fraction * n)) if p.test_fraction > 0 else 0
    n_val = max(1, round(p.val_fraction * n)) if p.val_fraction > 0 else 0
    if n - n_test - n_val < 1:
        raise DataError(
            f"{n} image(s) cannot fill train/val/test splits; add images or lower "
            "pack.val_fraction / pack.test_fraction"
        )
    return {
        "test": sorted(shuffled[:n_test]),
        "val": sorted(shuffled[n_test : n_test + n_val]),
        "train": sorted(shuffled[n_test + n_val :]),
    }


def tiles(arr: np.ndarray, tile: int, stride: int) -> list[np.ndarray]:
    """Cut a 2-D array into tile x tile pieces (reflect-padded when smaller than a tile)."""
    h, w = arr.shape
    if h < tile or w < tile:
        arr = np.pad(arr, ((0, max(0, tile - h)), (0, max(0, tile - w))), mode="reflect")
        h, w = arr.shape
    return [
        arr[y : y + tile, x : x + tile]
        for y in starts(h, tile, stride)
        for x in starts(w, tile, stride)
    ]


def _collect(
    folders: list[tuple[Path, list[str]]], p: PackParams
) -> tuple[np.ndarray, np.ndarray, int]:
    """Tiles of every image and mask, and the pixel count of the first folder's images
    (the labelled originals, augmented copies not counted)."""
    imgs: list[np.ndarray] = []
    msks: list[np.ndarray] = []
    pixels = 0
    for i, (folder, names) in enumerate(folders):
        for name in names:
            img, msk = read_image(folder / "images" / name), read_raw(folder / "masks" / name)
            pixels += img.size if i == 0 else 0
            imgs += tiles(img, p.tile, p.stride)
            msks += tiles(msk.astype(np.uint8), p.tile, p.stride)
    empty = np.zeros((0, p.tile, p.tile), np.uint8)
    return (np.stack(imgs) if imgs else empty), (np.stack(msks) if msks else empty), pixels


def run(
    p: PackParams, validated: str | Path, augmented: str | Path | None, out: str | Path
) -> dict:
    validated, out = Path(validated), Path(out)
    names = [q.name for q in list_images(validated / "images")]
    if not names:
        raise DataError(f"{validated}/images: no images to pack; run `gbmseg validate` first")
    splits = split_sources(names, p)
    aug_names: list[str] = []
    if augmented is not None and (Path(augmented) / "manifest.json").is_file():
        copies = json.loads((Path(augmented) / "manifest.json").read_text())
        train = set(splits["train"])
        aug_names = sorted(k for k, src in copies.items() if src in train)
    manifest: dict = {"tile": p.tile, "stride": p.stride, "splits": {}}
    with atomic_dir(out) as tmp:
        for split in SPLITS:
            folders = [(validated, splits[split])]
            if split == "train" and aug_names:
                folders.append((Path(augmented), aug_names))
            x, y, pixels = _collect(folders, p)
            np.save(tmp / f"{split}_images.npy", x)
            np.save(tmp / f"{split}_masks.npy", y)
            manifest["splits"][split] = {
                "sources": splits[split],
                "source_pixels": pixels,
                "augmented_copies": len(aug_names) if split == "train" else 0,
                "tiles": int(x.shape[0]),
                "positive_fraction": round(float(y.mean()), 6) if y.size else 0.0,
                "sha256": {
                    "images": sha256_file(tmp / f"{split}_images.npy"),
                    "masks": sha256_file(tmp / f"{split}_masks.npy"),
                },
            }
        write_json(tmp / "manifest.json", manifest)
        write_json(
            tmp / "_meta.json",
            meta("pack", p.model_dump(mode="json"), {"validated": str(validated)}),
        )
    counts = {s: manifest["splits"][s]["tiles"] for s in SPLITS}
    log.info("pack: tiles per split %s -> %s", counts, out)
    return manifest
