"""Random crops from whole training images (nnU-Net style): the packed training split kept
whole (``train_whole_*.npy``), and a seeded draw of tile x tile crops from it.

An image is chosen with a probability proportional to its area (every pixel as likely to be
seen), then a position uniformly; with ``foreground`` > 0 a crop that shows no structure is
kept with probability ``1 / (1 + foreground)`` (redrawn otherwise, a few times at most), so
crops showing structure come ``1 + foreground`` times as often, as with packed tiles."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gbmseg.data.io import DataError

PARTS = ("images", "masks", "shapes")
MIN_SIDE = 64  # px: held-out validation tiles at least this big (see hold_out)
REDRAWS = 8  # at most this many redraws of an empty crop (a set with little structure)


@dataclass(frozen=True)
class Wholes:
    """Whole uint8 images and masks, flattened end to end; ``shapes`` (N, 2) says where."""

    images: np.ndarray
    masks: np.ndarray
    shapes: np.ndarray

    def __post_init__(self):
        sizes = self.shapes.prod(axis=1) if len(self.shapes) else np.zeros(0, np.int64)
        if self.shapes.ndim != 2 or self.shapes.shape[1] != 2 or (sizes <= 0).any():
            raise DataError(f"whole training images: malformed shapes {self.shapes.shape}")
        if int(sizes.sum()) != self.images.size or self.images.size != self.masks.size:
            raise DataError(
                "whole training images: shapes and pixel counts disagree; re-run `gbmseg pack`"
            )
        object.__setattr__(self, "offsets", np.concatenate([[0], np.cumsum(sizes)]))

    def __len__(self) -> int:
        return len(self.shapes)

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])  # type: ignore[attr-defined]
        h, w = (int(v) for v in self.shapes[i])
        return self.images[a:b].reshape(h, w), self.masks[a:b].reshape(h, w)


def load(packed: list[Path] | Path | str) -> Wholes:
    """The whole training images of one or more packed sets (several: concatenated)."""
    folders = [packed] if isinstance(packed, str | Path) else list(packed)
    found = []
    for f in folders:
        paths = [Path(f) / f"train_whole_{part}.npy" for part in PARTS]
        if not all(p.is_file() for p in paths):
            raise DataError(
                f"{f}: packed without whole training images (train.steps_per_epoch > 0 crops "
                "from them); re-run `gbmseg pack`, or set train.steps_per_epoch: 0"
            )
        found.append([np.load(p, mmap_mode="r", allow_pickle=False) for p in paths])
    if len(found) == 1:
        return Wholes(*found[0])
    return Wholes(*(np.concatenate([parts[k] for parts in found]) for k in range(3)))


def originals(packed: list[Path] | Path | str) -> np.ndarray:
    """A bool per whole training image of ``load(packed)``: a labelled original (True) or an
    augmented copy (pack writes the originals first; no manifest: all originals)."""
    folders = [packed] if isinstance(packed, str | Path) else list(packed)
    flags: list[bool] = []
    for f in folders:
        n = len(np.load(Path(f) / "train_whole_shapes.npy", mmap_mode="r", allow_pickle=False))
        manifest = Path(f) / "manifest.json"
        k = n
        if manifest.is_file():
            k = min(n, len(json.loads(manifest.read_text())["splits"]["train"]["sources"]))
        flags += [True] * k + [False] * (n - k)
    return np.array(flags, bool)


class Crops:
    """A seeded stream of (image, mask) tile x tile crops from ``wholes``."""

    def __init__(self, wholes: Wholes, tile: int, *, seed: int, foreground: float = 0.0):
        if not len(wholes):
            raise DataError("no whole training images to crop from; re-run `gbmseg pack`")
        if (wholes.shapes < tile).any():
            raise DataError(f"a whole training image is smaller than the {tile}-px tile; re-pack")
        self.wholes, self.tile, self.foreground = wholes, tile, foreground
        area = wholes.shapes.prod(axis=1).astype(np.float64)
        self.p = area / area.sum()
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def _one(self) -> tuple[np.ndarray, np.ndarray]:
        i = int(self.rng.choice(len(self.p), p=self.p))
        img, msk = self.wholes.pair(i)
        y = int(self.rng.integers(0, img.shape[0] - self.tile + 1))
        x = int(self.rng.integers(0, img.shape[1] - self.tile + 1))
        t = self.tile
        return img[y : y + t, x : x + t], msk[y : y + t, x : x + t]

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        img, msk = self._one()
        keep = 1.0 / (1.0 + self.foreground)
        for _ in range(REDRAWS if self.foreground > 0 else 0):
            if msk.any() or self.rng.random() < keep:
                break
            img, msk = self._one()
        return img, msk

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        pairs = [self.draw() for _ in range(n)]
        return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])


def of_pairs(pairs: list[tuple[np.ndarray, np.ndarray]]) -> Wholes:
    """Wholes of (image, mask) pairs."""
    shapes = np.array([a.shape for a, _ in pairs], np.int64).reshape(-1, 2)
    flat = np.zeros(0, np.uint8)
    return Wholes(
        np.concatenate([a.ravel() for a, _ in pairs]) if pairs else flat,
        np.concatenate([b.ravel() for _, b in pairs]) if pairs else flat,
        shapes,
    )


def hold_out(
    wholes: Wholes, originals: np.ndarray, fraction: float, tile: int, multiple: int = 16
) -> tuple[Wholes, np.ndarray, np.ndarray]:
    """Keep a strip along the bottom edge of every whole image out of training, ``fraction``
    of its height, and cut the strips of the labelled originals (``originals``: a bool per
    whole image; augmented copies lose their strips too, unvalidated) into square validation
    tiles: side = the shortest strip's height in ``multiple``s, ``MIN_SIDE`` (room to
    measure a membrane's width) to ``tile``; a strip is at least one side high.  An
    image too short to keep a training tile above its strip is left whole.  Returns the
    training wholes and the validation (images, masks), (N, side, side) uint8."""
    heights = wholes.shapes[:, 0] if len(wholes) else np.array([tile])
    side = int(min(heights)) * fraction // multiple * multiple
    side = int(min(tile, max(multiple, MIN_SIDE, side)))
    kept, val_x, val_y = [], [], []
    for i in range(len(wholes)):
        img, msk = wholes.pair(i)
        h, w = img.shape
        strip = max(side, round(h * fraction))
        if h - strip < tile:
            kept.append((img, msk))
            continue
        kept.append((img[: h - strip], msk[: h - strip]))
        if originals[i]:
            for y in range(h - side, h - strip - 1, -side):  # from the bottom edge up
                for x in range(0, w - side + 1, side):
                    val_x.append(img[y : y + side, x : x + side])
                    val_y.append(msk[y : y + side, x : x + side])
    empty = np.zeros((0, side, side), np.uint8)
    return (
        of_pairs(kept),
        np.stack(val_x) if val_x else empty,
        np.stack(val_y) if val_y else empty,
    )
