"""The recipe's augmentations: seeded, the mask moved with the image, and serialisable."""

import numpy as np

from gbmseg.config import load
from gbmseg.data import augmentations
from tests.conftest import ROOT


def sample() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:96, :96]
    mask = ((xx - 30) ** 2 + (yy - 50) ** 2 < 15**2).astype(np.uint8)
    img = np.where(mask, 60, 190).astype(np.uint8)
    return img, mask


def test_same_seed_same_result_and_the_mask_follows_the_image():
    p = load(ROOT / "params.yaml").augment
    img, mask = sample()
    a = augmentations.build(p, img.shape, seed=3)(image=img, mask=mask)
    b = augmentations.build(p, img.shape, seed=3)(image=img, mask=mask)
    assert np.array_equal(a["image"], b["image"]) and np.array_equal(a["mask"], b["mask"])
    assert set(np.unique(a["mask"])) <= {0, 1}
    dark = a["image"][a["mask"] == 1].mean()
    light = a["image"][a["mask"] == 0].mean()
    assert dark < light - 40  # the disc is still where the mask says


def test_the_pipeline_round_trips_through_its_dict():
    p = load(ROOT / "params.yaml").augment
    pipe = augmentations.build(p, (64, 64), seed=0)
    again = augmentations.from_dict(augmentations.to_dict(pipe))
    assert [type(t).__name__ for t in again.transforms] == [
        type(t).__name__ for t in pipe.transforms
    ]
    assert len(augmentations.transforms(p, (64, 64))) >= 7
