"""GPU training benchmark (run where a CUDA device exists): images/second of the project's
training loop for the classic U-Net at 512x512 in fp32 and bf16 autocast (+channels_last),
model FLOP utilisation from torch.utils.flop_counter, and peak GPU memory.

    python -m benchmarks.gpu_train [--batch 16] [--steps 20] [--peak-tflops 989] [--compile]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import ROOT, table, write
from gbmseg.config import load
from gbmseg.engine.amp import resolve
from gbmseg.engine.data import Batches
from gbmseg.engine.trainer import Trainer, seg_loss
from gbmseg.model.unet import build

CLASSIC = {"depth": 4, "base": 64, "norm": "batch", "up": "transpose"}


def flops_per_image(size: int, params) -> float:
    """Forward + backward FLOPs of one training step, per image."""
    model = build(CLASSIC).cuda()
    x = torch.rand(2, 1, size, size, device="cuda")
    y = (torch.rand_like(x) > 0.9).float()
    with FlopCounterMode(display=False) as counter:
        seg_loss(model(x), y, params).backward()
    return counter.get_total_flops() / 2


def run(amp: str, size: int, batch: int, steps: int, compile_: bool) -> dict:
    p = load(
        ROOT / "params.yaml",
        [
            f"train.amp={amp}",
            "train.device=cuda",
            f"train.batch_size={batch}",
            "train.epochs=1",
            f"train.compile={str(compile_).lower()}",
        ],
    ).train
    prec = resolve("cuda", amp)
    torch.manual_seed(0)
    model = build(CLASSIC).cuda().to(memory_format=torch.channels_last)
    net = torch.compile(model) if compile_ else model
    tr = Trainer(net, p, prec, ROOT / "benchmarks" / "out" / "_scratch")
    tr.sched = torch.optim.lr_scheduler.LambdaLR(tr.opt, lambda s: 1.0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, ((steps + 3) * batch, size, size), dtype=np.uint8)
    y = (rng.random(x.shape) > 0.9).astype(np.uint8)
    tr._train_epoch(0, Batches(x[: 3 * batch], y[: 3 * batch], batch, train=True))  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    tr._train_epoch(0, Batches(x[3 * batch :], y[3 * batch :], batch, train=True))
    torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    return {
        "precision": f"{amp}{' +compile' if compile_ else ''}",
        "img_per_s": steps * batch / secs,
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 1e9,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument(
        "--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H100 SXM: 989)"
    )
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run this on a GPU machine")
    p = load(ROOT / "params.yaml").train
    per_img = flops_per_image(args.size, p)
    rows = [
        run("fp32", args.size, args.batch, args.steps, False),
        run("bf16", args.size, args.batch, args.steps, False),
    ]
    if args.compile:
        rows.append(run("bf16", args.size, args.batch, args.steps, True))
    for r in rows:
        r["tflops"] = r["img_per_s"] * per_img / 1e12
        r["mfu"] = r["tflops"] / args.peak_tflops
    result = {
        "gpu": torch.cuda.get_device_name(0),
        "size": args.size,
        "batch": args.batch,
        "flops_per_image": per_img,
        "amp_speedup": rows[1]["img_per_s"] / rows[0]["img_per_s"],
        "rows": rows,
    }
    md = (
        f"{result['gpu']}, classic U-Net (BN), {args.size}x{args.size}, batch {args.batch}, "
        f"{per_img / 1e9:.1f} GFLOP per image (fwd+bwd)\n\n"
        + table(rows, ["precision", "img_per_s", "tflops", "mfu", "peak_mem_gb"])
        + f"\nAMP (bf16) vs fp32 speed-up: {result['amp_speedup']:.2f}x\n"
    )
    write(args.out, "gpu_train", result, md)


if __name__ == "__main__":
    main()
