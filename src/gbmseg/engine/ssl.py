"""Self-supervised pretraining of the whole U-Net on unlabelled images: masked denoising.

Each training crop is corrupted (``mask_ratio`` of its ``patch`` x ``patch`` squares
replaced by the crop's mean, Gaussian noise everywhere) and the U-Net learns to give back
the clean crop (standardised, as the network sees it), scored on the hidden squares.  To
fill a hidden square the network has to know what EM texture and membranes look like, which
is what segmentation then builds on.  The head is a 1-channel regressor; fine-tuning
re-initialises it (``UNet.reset_head``).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from gbmseg.engine.amp import Precision

log = logging.getLogger(__name__)


def crops(images: list[np.ndarray], tile: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random ``tile`` x ``tile`` crops (uint8) from the images (reflect-padded when
    smaller than a tile)."""
    out = np.empty((n, tile, tile), np.uint8)
    for i in range(n):
        img = images[int(rng.integers(len(images)))]
        if img.shape[0] < tile or img.shape[1] < tile:
            pad = ((0, max(0, tile - img.shape[0])), (0, max(0, tile - img.shape[1])))
            img = np.pad(img, pad, mode="reflect")
        y = int(rng.integers(img.shape[0] - tile + 1))
        x = int(rng.integers(img.shape[1] - tile + 1))
        out[i] = img[y : y + tile, x : x + tile]
    return out


def corrupt(
    x: torch.Tensor, mask_ratio: float, patch: int, noise: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(corrupted input, hidden-pixel mask) for a batch (N, 1, H, W) in [0, 1]."""
    n, _, h, w = x.shape
    grid = torch.rand(n, 1, h // patch, w // patch, generator=g) < mask_ratio
    hidden = F.interpolate(grid.float(), size=(h, w), mode="nearest").bool()
    mean = x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x)
    out = torch.where(hidden, mean, x) + noise * torch.randn(x.shape, generator=g)
    return out, hidden


def standardise(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) / x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)


def pretrain(
    model: torch.nn.Module,
    images: list[np.ndarray],
    prec: Precision,
    steps: int,
    *,
    batch: int = 8,
    tile: int = 128,
    lr: float = 1e-3,
    mask_ratio: float = 0.5,
    patch: int = 16,
    noise: float = 0.05,
    seed: int = 0,
    every: int = 50,
) -> list[float]:
    """Masked denoising on crops of ``images``; returns the mean loss of every ``every``
    steps."""
    rng, g = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
    model.to(prec.device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * s / steps)),
    )
    history, running, t0 = [], 0.0, time.perf_counter()
    for step in tqdm(range(steps), desc="self-supervised", unit="step", disable=None):
        x = torch.from_numpy(crops(images, tile, batch, rng)).float().div_(255)[:, None]
        inp, hidden = corrupt(x, mask_ratio, patch, noise, g)
        inp, hidden, x = (t.to(prec.device) for t in (inp, hidden, x))
        with prec.autocast():
            out = model(inp).float()
        err = (out - standardise(x)) ** 2
        loss = err[hidden].mean() + 0.1 * err[~hidden].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running += loss.item()
        if (step + 1) % every == 0:
            history.append(running / every)
            log.info(
                "ssl step %d: loss %.4f (%.1f img/s)",
                step + 1,
                history[-1],
                (step + 1) * batch / (time.perf_counter() - t0),
            )
            running = 0.0
    return history
