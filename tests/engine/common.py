"""Small synthetic tiles and train sections for the engine's tests."""

import numpy as np

from gbmseg.config import TrainParams
from gbmseg.steps import synth
from tests.conftest import params


def data(n: int = 8, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic image/mask tiles of ``size`` px."""
    p = params(f"synth.size={size}").synth
    pairs = [synth.render(np.random.default_rng(seed + i), p)[:2] for i in range(n)]
    return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])


def train_params(**kw) -> TrainParams:
    """A 3-epoch fp32 train section of a depth-2, base-4 U-Net; ``kw``: train.* overrides."""
    base = [
        "train.epochs=3",
        "train.batch_size=4",
        "train.max_minutes=0",
        "train.amp=fp32",
        "train.model.depth=2",
        "train.model.base=4",
    ]
    return params(*base, *[f"train.{k}={v}" for k, v in kw.items()]).train
