"""Device and mixed-precision choice: bf16 autocast where the hardware makes it pay."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    device: torch.device
    dtype: torch.dtype | None  # None: full fp32

    @property
    def scaler_needed(self) -> bool:
        return self.dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def describe(self) -> str:
        return (
            f"{self.device.type}/{'fp32' if self.dtype is None else str(self.dtype).split('.')[-1]}"
        )


def cpu_has_amx() -> bool:
    """AMX tiles make bf16 convolutions several times faster than fp32 on the CPU; with
    AVX512-BF16 alone, bf16 training measured slower than fp32 here (benchmarks/), so
    ``amp: auto`` picks bf16 on a CPU only when AMX is present."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


def choose_precision(device: str, amp: str) -> Precision:
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "train.device=cuda but no CUDA device is visible; use device: auto or cpu"
        )
    dev = torch.device(
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else ("cpu" if device == "auto" else device)
    )
    if amp == "fp32":
        return Precision(dev, None)
    if amp == "fp16":
        return Precision(dev, torch.float16)
    if amp == "bf16":
        return Precision(dev, torch.bfloat16)
    if dev.type == "cuda":
        return Precision(dev, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    return Precision(dev, torch.bfloat16 if cpu_has_amx() else None)
