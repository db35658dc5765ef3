"""In-memory batches of packed tiles, with cheap on-the-fly flips for training."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from gbmseg.data.io import DataError
from gbmseg.engine.crops import Crops


def load_split(packed: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    packed = Path(packed)
    img, msk = packed / f"{split}_images.npy", packed / f"{split}_masks.npy"
    if not img.is_file() or not msk.is_file():
        raise DataError(f"{packed}: no '{split}' arrays; run `gbmseg pack` (or `dvc repro pack`)")
    x, y = np.load(img, mmap_mode="r"), np.load(msk, mmap_mode="r")
    if x.shape != y.shape:
        raise DataError(f"{packed}: {split} images {x.shape} and masks {y.shape} differ")
    return x, y


def load_splits(packed: list[Path] | Path | str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split of one or more packed sets (several: concatenated in memory)."""
    folders = [packed] if isinstance(packed, str | Path) else list(packed)
    pairs = [load_split(f, split) for f in folders]
    if len(pairs) == 1:
        return pairs[0]
    tiles = {x.shape[1:] for x, _ in pairs}
    if len(tiles) > 1:
        raise DataError(f"{folders}: packed with different tile sizes {sorted(tiles)}; re-pack")
    return np.concatenate([x for x, _ in pairs]), np.concatenate([y for _, y in pairs])


class Batches:
    """Iterate (image, mask) float batches; shuffled and flipped when ``train``, and passed
    through ``transform`` (e.g. the recipe's augmentations, on the fly) when given.

    ``foreground`` > 0 samples training tiles that show some structure ``1 + foreground``
    times as often as empty ones (with replacement, an epoch still ``len(tiles)`` long):
    thin structures leave most tiles empty.  ``steps`` > 0 makes a training epoch that many
    batches of tiles drawn at random (with replacement, weighted the same way), however many
    tiles there are: the budget follows the optimiser, not the size of the set.  With
    ``crops`` (and ``steps`` > 0) those batches are random crops from whole images instead of
    packed tiles (see ``gbmseg.engine.crops``)."""

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        transform: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
        foreground: float = 0.0,
        steps: int = 0,
        crops: Crops | None = None,
    ):
        self.images, self.masks = images, masks
        self.crops = crops if train and steps else None
        self.steps = steps if train else 0
        self.batch_size, self.train = batch_size, train
        self.generator = torch.Generator().manual_seed(seed)
        self.rank, self.world = rank, world
        self.transform = transform
        self.weights = None
        if train and foreground > 0 and len(masks):
            shows = np.asarray(masks).reshape(len(masks), -1).max(axis=1) > 0
            self.weights = torch.from_numpy(1.0 + foreground * shows.astype(np.float64))

    def _order(self, n: int) -> torch.Tensor:
        if not self.train:
            return torch.arange(n)
        if self.steps:  # a fixed number of batches of tiles drawn at random, on every rank
            draws = self.steps * self.batch_size * self.world
            weights = torch.ones(n, dtype=torch.float64) if self.weights is None else self.weights
            return torch.multinomial(weights, draws, replacement=True, generator=self.generator)
        if self.weights is None:
            return torch.randperm(n, generator=self.generator)
        return torch.multinomial(self.weights, n, replacement=True, generator=self.generator)

    def __len__(self) -> int:
        if self.steps:
            return self.steps
        n = len(self.images)
        mine = -(-n // self.world) if self.train else len(range(self.rank, n, self.world))
        return -(-mine // self.batch_size)

    def _arrays(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """This rank's batches of uint8 (image, mask) arrays, before any transform."""
        if self.crops is not None:  # every rank draws the same crops and keeps its share
            # the epoch's crops follow from the batch generator, which a checkpoint keeps: a
            # resumed run (mid-epoch too) replays the same crops
            self.crops.reseed(int(torch.randint(1 << 62, (1,), generator=self.generator)))
            for _ in range(self.steps):
                xs, ys = self.crops.batch(self.batch_size * self.world)
                mine = slice(self.rank, None, self.world)
                yield np.ascontiguousarray(xs[mine]), np.ascontiguousarray(ys[mine])
            return
        n = len(self.images)
        order = self._order(n)
        if self.train and self.world > 1 and not self.steps:  # equal batch counts on every
            # rank, or DDP hangs
            per_rank = -(-n // self.world)
            order = torch.cat([order, order[: per_rank * self.world - n]])
        order = order[self.rank :: self.world]
        for start in range(0, len(order), self.batch_size):
            idx = np.sort(order[start : start + self.batch_size].numpy())
            yield np.ascontiguousarray(self.images[idx]), np.ascontiguousarray(self.masks[idx])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for xs, ys in self._arrays():
            if self.train and self.transform is not None:
                pairs = [self.transform(a, b) for a, b in zip(xs, ys, strict=True)]
                xs, ys = np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])
            x = torch.from_numpy(xs).unsqueeze(1)
            y = torch.from_numpy(ys).unsqueeze(1)
            if self.train:
                x, y = self._flip(x, y)
            yield x.float().div_(255), y.float()

    def _flip(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = int(torch.randint(4, (1,), generator=self.generator))
        if k:
            x, y = torch.rot90(x, k, (2, 3)), torch.rot90(y, k, (2, 3))
        if torch.rand(1, generator=self.generator) < 0.5:
            x, y = x.flip(3), y.flip(3)
        return x, y
