"""Self-supervised pretraining: masked denoising learns, seeded, from crops of any size."""

import numpy as np
import torch

from gbmseg.engine import ssl
from gbmseg.engine.amp import choose_precision
from gbmseg.model.unet import build
from tests.engine.common import data


def test_crops_are_seeded_and_pad_small_images():
    small, big = np.full((20, 30), 7, np.uint8), np.arange(64 * 64).reshape(64, 64) % 251
    a = ssl.crops([small, big.astype(np.uint8)], 32, 6, np.random.default_rng(1))
    b = ssl.crops([small, big.astype(np.uint8)], 32, 6, np.random.default_rng(1))
    assert a.shape == (6, 32, 32) and np.array_equal(a, b)


def test_corrupt_hides_about_the_asked_share_of_patches():
    x = torch.rand(4, 1, 64, 64)
    out, hidden = ssl.corrupt(x, 0.5, 8, 0.0, torch.Generator().manual_seed(0))
    assert 0.3 < hidden.float().mean() < 0.7
    assert torch.equal(out[~hidden], x[~hidden])  # no noise asked: the rest unchanged


def test_pretraining_lowers_the_reconstruction_loss():
    x, _ = data(n=6, size=64)
    torch.manual_seed(0)
    model = build({"depth": 2, "base": 4})
    prec = choose_precision("cpu", "fp32")
    losses = ssl.pretrain(model, list(x), prec, 60, batch=4, tile=32, lr=3e-3, every=20)
    assert len(losses) == 3 and losses[-1] < losses[0]
