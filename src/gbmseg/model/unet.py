"""A configurable U-Net (Ronneberger et al. 2015) for one-channel EM images.

Input: (N, 1, H, W) floats in [0, 1] with H, W divisible by 2**depth; each image is
standardised inside the network so callers never repeat the normalisation.
Output: (N, out_channels, H, W) logits.  Parts are named for transfer learning:
``encoders[i]``, ``bottleneck``, ``decoders[i]``, ``head``.  The model also carries the
intensity histogram of the images it was trained on (a buffer, saved with the weights),
which fine-tuning compares with the target's, the pixel size it was trained at and the
threshold chosen for it on validation data.

This file imports nothing from gbmseg: ``gbmseg export`` ships it as the architecture source
of the BioImage Model Zoo package (``build(cfg={...})`` rebuilds the network there).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

BINS = 32  # intensity histogram bins: gbmseg.data.stats.BINS (a test checks they agree)


@dataclass(frozen=True)
class UNetConfig:
    depth: int = 4
    base: int = 64
    norm: str = "batch"
    dropout: float = 0.0
    up: str = "transpose"
    in_channels: int = 1
    out_channels: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "group":
        return nn.GroupNorm(min(8, ch), ch)
    return nn.Identity()


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: str, dropout: float):
        bias = norm == "none"
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, 3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=bias),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class Up(nn.Module):
    def __init__(self, cin: int, cout: int, cfg: UNetConfig):
        super().__init__()
        if cfg.up == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(cin, cout, 1),
            )
        self.conv = DoubleConv(2 * cout, cout, cfg.norm, cfg.dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        widths = [cfg.base * 2**i for i in range(cfg.depth + 1)]
        self.encoders = nn.ModuleList()
        cin = cfg.in_channels
        for w in widths[:-1]:
            self.encoders.append(DoubleConv(cin, w, cfg.norm, cfg.dropout))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(widths[-2], widths[-1], cfg.norm, cfg.dropout)
        self.decoders = nn.ModuleList(
            Up(widths[i + 1], widths[i], cfg) for i in reversed(range(cfg.depth))
        )
        self.head = nn.Conv2d(widths[0], cfg.out_channels, 1)
        self.register_buffer("data_histogram", torch.zeros(BINS, dtype=torch.float64))
        # nm per pixel of the images it was trained on (0: unknown or mixed), saved with it
        self.register_buffer("data_pixel_size_nm", torch.zeros((), dtype=torch.float64))
        # the threshold on its probabilities chosen with it (0: none chosen), saved with it
        self.register_buffer("data_threshold", torch.zeros((), dtype=torch.float64))
        self.frozen: list[str] = []

    def source_histogram(self) -> np.ndarray | None:
        """The training images' intensity histogram, or None when it was never recorded."""
        h = self.data_histogram.detach().cpu().numpy()
        return h if h.sum() > 0 else None

    def set_source_histogram(self, hist: np.ndarray) -> None:
        self.data_histogram.copy_(torch.as_tensor(hist, dtype=torch.float64))

    def pixel_size_nm(self) -> float | None:
        """The scale it was trained at (predict and evaluate resample inputs to it)."""
        v = float(self.data_pixel_size_nm)
        return v if v > 0 else None

    def set_pixel_size_nm(self, nm: float | None) -> None:
        self.data_pixel_size_nm.fill_(nm or 0.0)

    def threshold(self) -> float | None:
        """The threshold chosen for it on validation data (None: none was)."""
        v = float(self.data_threshold)
        return v if 0 < v < 1 else None

    def set_threshold(self, value: float | None) -> None:
        self.data_threshold.fill_(value or 0.0)

    def reset_head(self) -> None:
        """A freshly initialised output convolution (after self-supervised pretraining, whose
        head regressed intensities, not structure)."""
        self.head.reset_parameters()

    def freeze(self, parts: list[str]) -> None:
        """Stop training the named sub-modules (e.g. ``encoders.0``, ``bottleneck``): no
        gradients, and their BatchNorm statistics stay fixed even in train mode."""
        for name in parts:
            for q in self.get_submodule(name).parameters():
                q.requires_grad_(False)
        self.frozen = sorted(set(self.frozen) | set(parts))
        self.train(self.training)

    def train(self, mode: bool = True) -> UNet:
        super().train(mode)
        for name in self.frozen:
            self.get_submodule(name).eval()
        return self

    @property
    def multiple(self) -> int:
        """Spatial sizes must be divisible by this."""
        return 2**self.cfg.depth

    def check_input(self, x: torch.Tensor) -> None:
        n = self.multiple
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels:
            raise ValueError(
                f"U-Net input must be (N, {self.cfg.in_channels}, H, W); got {tuple(x.shape)}"
            )
        if x.shape[2] % n or x.shape[3] % n:
            raise ValueError(
                f"U-Net of depth {self.cfg.depth} needs H and W divisible by {n}; got "
                f"{tuple(x.shape[2:])}: pad or crop the image, or predict in tiles "
                "(gbmseg.inference handles any size)"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
        x = (x - mean) / std
        skips = []
        for enc in self.encoders:
            x = enc(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for dec, skip in zip(self.decoders, reversed(skips), strict=True):
            x = dec(x, skip)
        return self.head(x)


def build(cfg: UNetConfig | dict) -> UNet:
    if isinstance(cfg, dict):
        cfg = UNetConfig(**cfg)
    return UNet(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
