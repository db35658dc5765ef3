"""Device and mixed-precision choice: bf16 autocast where the hardware makes it pay.

On a CPU, ``amp: auto`` picks bf16 with AMX (several times faster), never without a native
bf16 instruction set (emulated: much slower), and in between, with AVX512-BF16 alone, where
this CPU measured it faster: one CPU's bf16 trains 1.6x as fast as fp32, another's slower
(benchmarks/README.md). That measurement (``bf16_speedup``: a few training steps of a small
convolution stack in each precision, about two seconds) runs once per CPU model, torch version
and thread count and is kept in ``$GBMSEG_CACHE`` (default ``~/.cache/gbmseg``)/amp.json."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

log = logging.getLogger(__name__)
FASTER = 1.1  # bf16 is chosen when it trains at least this many times as fast as fp32


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
    """AMX tiles make bf16 convolutions several times faster than fp32 on the CPU."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe and probe())


def cpu_info() -> tuple[str, set[str]]:
    """The CPU's model name and feature flags (Linux ``/proc/cpuinfo``), else what
    ``platform`` knows and no flags."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), set()
    lines = text.splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    return model or platform.machine(), set(flags)


def bf16_speedup(steps: int = 4, repeats: int = 2) -> float:
    """fp32 time / bf16 time of ``steps`` training steps (forward, backward) of a small
    convolution stack on 8 128x128 images, best of ``repeats`` in turn."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 1, 1),
    ).to(memory_format=torch.channels_last)  # fmt: skip
    x = torch.rand(8, 1, 128, 128).to(memory_format=torch.channels_last)

    def run(dtype: torch.dtype | None) -> float:
        ctx = Precision(torch.device("cpu"), dtype).autocast
        with ctx():  # warm-up
            net(x).float().mean().backward()
        t0 = time.perf_counter()
        for _ in range(steps):
            with ctx():
                net(x).float().mean().backward()
        return time.perf_counter() - t0

    best = {None: float("inf"), torch.bfloat16: float("inf")}
    for _ in range(repeats):
        for dtype in best:
            best[dtype] = min(best[dtype], run(dtype))
    return best[None] / best[torch.bfloat16]


def _cache_file() -> Path:
    return Path(os.environ.get("GBMSEG_CACHE") or Path.home() / ".cache" / "gbmseg") / "amp.json"


def cpu_bf16_pays() -> bool:
    """bf16 autocast on this CPU: AMX yes, no bf16 instructions no, AVX512-BF16 as measured
    (once; the figure is kept, see the module's docstring)."""
    if cpu_has_amx():
        return True
    model, flags = cpu_info()
    if "avx512_bf16" not in flags:
        return False
    key = f"{model} | torch {torch.__version__} | {torch.get_num_threads()} threads"
    path = _cache_file()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(key) if isinstance(known, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("bf16_speedup"), int | float):
        entry = {"bf16_speedup": round(bf16_speedup(), 3), "measured": time.strftime("%Y-%m-%d")}
        known = {**(known if isinstance(known, dict) else {}), key: entry}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known, indent=1))
            tmp.replace(path)
        except OSError as exc:
            log.debug("amp: could not keep the bf16 measurement in %s: %s", path, exc)
        log.info(
            "amp: bf16 trains at %.2fx fp32's speed on this CPU (%s): %s (kept in %s)",
            entry["bf16_speedup"], key, "bf16" if entry["bf16_speedup"] >= FASTER else "fp32", path,
        )  # fmt: skip
    return float(entry["bf16_speedup"]) >= FASTER


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
    return Precision(dev, torch.bfloat16 if cpu_bf16_pays() else None)
