"""pack: fixed-size uint8 tiles in memory-mappable .npy arrays, split by source image.

The training split is also kept whole (``train_whole_*.npy``: every image and augmented copy
flattened end to end, with their shapes), so that training can draw random crops from whole
images (``train.steps_per_epoch`` > 0) rather than sweep the fixed tiles."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from gbmseg.config import PackParams
from gbmseg.data import resample, splits
from gbmseg.data.atomic import atomic_dir, meta, sha256_file, write_array, write_json
from gbmseg.data.io import DataError, list_images, read_image, read_raw, starts
from gbmseg.runlog import RunLog

log = logging.getLogger(__name__)


def at_least_a_tile(arr: np.ndarray, tile: int) -> np.ndarray:
    """``arr`` reflect-padded at the bottom and right to at least tile x tile."""
    h, w = arr.shape
    if h >= tile and w >= tile:
        return arr
    return np.pad(arr, ((0, max(0, tile - h)), (0, max(0, tile - w))), mode="reflect")


def tiles(arr: np.ndarray, tile: int, stride: int) -> list[np.ndarray]:
    """Cut a 2-D array into tile x tile pieces (reflect-padded when smaller than a tile)."""
    arr = at_least_a_tile(arr, tile)
    h, w = arr.shape
    return [
        arr[y : y + tile, x : x + tile]
        for y in starts(h, tile, stride)
        for x in starts(w, tile, stride)
    ]


Item = tuple[Path, str, float | None]  # folder, image name, its pixel size (nm)


def at_scale(img: np.ndarray, msk: np.ndarray, nm: float | None, p: PackParams, where: Path):
    """The image and mask resampled to ``p.scale_nm`` (unchanged when it is null)."""
    if p.scale_nm is None:
        return img, msk
    if nm is None:
        raise DataError(
            f"{where}: no pixel size, so it cannot be brought to pack.scale_nm = {p.scale_nm:g}; "
            "give the set's pixel_size_nm, use calibrated files, or set pack.scale_nm: null"
        )
    if not resample.needed(nm, p.scale_nm):
        return img, msk
    shape = resample.shape_at(img.shape, nm, p.scale_nm)
    return resample.image(img, shape), resample.mask(msk, shape)


def _collect(items: list[Item], p: PackParams, originals: int) -> dict:
    """Tiles of every image and mask (at pack.scale_nm), the whole images flattened with
    their shapes, and the pixel and structure-pixel counts of the first ``originals`` images
    (the labelled originals, augmented copies not counted)."""
    imgs: list[np.ndarray] = []
    msks: list[np.ndarray] = []
    whole: list[tuple[np.ndarray, np.ndarray]] = []
    pixels = structure = 0
    for i, (folder, name, nm) in enumerate(items):
        img, msk = read_image(folder / "images" / name), read_raw(folder / "masks" / name)
        img, msk = at_scale(img, msk.astype(np.uint8), nm, p, folder / "images" / name)
        if i < originals:
            pixels, structure = pixels + img.size, structure + int(np.count_nonzero(msk))
        imgs += tiles(img, p.tile, p.stride)
        msks += tiles(msk, p.tile, p.stride)
        whole.append((at_least_a_tile(img, p.tile), at_least_a_tile(msk, p.tile)))
    empty = np.zeros((0, p.tile, p.tile), np.uint8)
    flat = np.zeros(0, np.uint8)
    return {
        "images": np.stack(imgs) if imgs else empty,
        "masks": np.stack(msks) if msks else empty,
        "whole_images": np.concatenate([a.ravel() for a, _ in whole]) if whole else flat,
        "whole_masks": np.concatenate([b.ravel() for _, b in whole]) if whole else flat,
        "whole_shapes": np.array([a.shape for a, _ in whole], np.int64).reshape(-1, 2),
        "pixels": pixels,
        "structure": structure,
    }


def set_pixel_size(identity: dict, p: PackParams) -> float | None:
    """The one pixel size of the packed tiles: pack.scale_nm, else the images' own when
    they all agree (within 1%), else None (unknown or mixed)."""
    if p.scale_nm is not None:
        return p.scale_nm
    sizes = [e.get("pixel_size_nm") for e in identity.values()]
    if not sizes or any(v is None for v in sizes):
        return None
    lo, hi = min(sizes), max(sizes)
    return round(float(np.median(sizes)), 6) if hi <= lo * 1.01 else None


def split_table(validated: Path, split_file: Path, p: PackParams) -> dict[str, list[str]]:
    """Read the set's split file, add the images seen for the first time, write it back;
    return the current images by split."""
    manifest = json.loads((validated / "manifest.json").read_text())
    names = [q.name for q in list_images(validated / "images")]
    if not names:
        raise DataError(f"{validated}/images: no images to pack; run `gbmseg validate` first")
    test_only = {n for n in names if manifest[Path(n).stem]["test_only"]}
    known = splits.read(split_file)
    table = splits.assign(known, names, test_only, p.val_fraction, p.test_fraction)
    if table != known:
        splits.write(split_file, table)
        log.info("pack: %d new image(s) given a split in %s", len(table) - len(known), split_file)
    by_split = splits.splits_of(table, names)
    if not by_split["train"]:
        raise DataError(
            f"{split_file}: no training image among {len(names)}; add labelled images or "
            "set a row's split to train"
        )
    return by_split


def run(
    p: PackParams,
    validated: str | Path,
    augmented: str | Path | None,
    out: str | Path,
    *,
    split_file: str | Path,
    run_log: RunLog | None = None,
) -> dict:
    """Give new images of ``validated`` a split in ``split_file``, then pack every split."""
    by_split = split_table(Path(validated), Path(split_file), p)
    return write(p, validated, by_split, out, augmented=augmented, run_log=run_log)


def write(
    p: PackParams,
    validated: str | Path,
    by_split: dict[str, list[str]],
    out: str | Path,
    *,
    augmented: str | Path | None = None,
    run_log: RunLog | None = None,
) -> dict:
    """Pack the named images of the validated set ``validated`` into ``out``: a train, val
    and test array pair and ``manifest.json`` (a split left out of ``by_split`` is empty).
    ``run`` calls it with the split file's choice; studies with their own."""
    validated, out = Path(validated), Path(out)
    by_split = {s: list(by_split.get(s, [])) for s in splits.SPLITS}
    identity = json.loads((validated / "manifest.json").read_text())
    unknown = sorted({n for v in by_split.values() for n in v if Path(n).stem not in identity})
    if unknown:
        raise DataError(f"{validated}: no validated image named {', '.join(unknown[:3])}")
    aug_names: list[str] = []
    if augmented is not None and (Path(augmented) / "manifest.json").is_file():
        copies = json.loads((Path(augmented) / "manifest.json").read_text())
        train = set(by_split["train"])
        aug_names = sorted(k for k, src in copies.items() if src in train)
    nm = set_pixel_size({Path(n).stem: identity[Path(n).stem] for v in by_split.values()
                         for n in v} or identity, p)  # fmt: skip
    manifest: dict = {"tile": p.tile, "stride": p.stride, "pixel_size_nm": nm, "splits": {}}
    if nm is None:
        log.warning("pack: %s has no single pixel size (unknown or mixed); models trained on "
                    "it record none (set pack.scale_nm)", validated)  # fmt: skip

    def own(name: str) -> float | None:
        return identity[Path(name).stem].get("pixel_size_nm")

    with atomic_dir(out) as tmp:
        for split in splits.SPLITS:
            items: list[Item] = [(validated, n, own(n)) for n in by_split[split]]
            if split == "train" and aug_names:
                items += [(Path(augmented), n, own(copies[n])) for n in aug_names]
            got = _collect(items, p, len(by_split[split]))
            x, y = got["images"], got["masks"]
            write_array(tmp / f"{split}_images.npy", x)
            write_array(tmp / f"{split}_masks.npy", y)
            if split == "train":
                for part in ("images", "masks", "shapes"):
                    write_array(tmp / f"train_whole_{part}.npy", got[f"whole_{part}"])
            manifest["splits"][split] = {
                "sources": by_split[split],
                "pixels_sha256": [identity[Path(n).stem]["pixels_sha256"] for n in by_split[split]],
                "pixel_size_nm": [own(n) for n in by_split[split]],
                "source_pixels": got["pixels"],
                "structure_pixels": got["structure"],
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
    counts = {f"{s}_tiles": manifest["splits"][s]["tiles"] for s in splits.SPLITS}
    counts |= {f"{s}_images": len(by_split[s]) for s in splits.SPLITS}
    log.info("pack: %s -> %s", counts, out)
    if run_log:
        run_log.metrics(counts)
        run_log.artifact(out / "manifest.json", "pack")
    return manifest
