"""Training throughput of the project's loop vs a plain PyTorch loop, side by side in one run:
same model (classic U-Net, depth 4, base 64, 31.0M parameters), batch, crop and in-memory data.

plain:   fp32, contiguous tensors, Adam, BCE, DataLoader over a TensorDataset, loss.item() per step
project: gbmseg.engine.trainer (bf16 autocast where the CPU/GPU has it, channels_last, BCE+Dice,
         AdamW, no host sync per step, numpy batches)
Also: the loader's own img/s with the recipe's augmentations on the fly, and bf16 vs fp32
validation Dice of a small U-Net trained identically on synthetic data.

    python -m benchmarks.train_throughput [--steps 6] [--crop 256] [--batch 2] [--device auto]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import ROOT, table, write
from gbmseg.config import load
from gbmseg.engine.amp import choose_precision
from gbmseg.engine.data import Batches
from gbmseg.engine.lifecycle import online_transform
from gbmseg.engine.trainer import Trainer
from gbmseg.model.unet import build
from gbmseg.steps import synth

CLASSIC = {"depth": 4, "base": 64, "norm": "none", "up": "transpose"}


def data(n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    p = load(ROOT / "params.yaml", [f"synth.size={size}"]).synth
    pairs = [synth.render(np.random.default_rng(i), p)[:2] for i in range(n)]
    return np.stack([a for a, _ in pairs]), np.stack([b for _, b in pairs])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain(x: np.ndarray, y: np.ndarray, batch: int, steps: int, device: torch.device) -> float:
    torch.manual_seed(0)
    model = build(CLASSIC).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    ds = torch.utils.data.TensorDataset(
        torch.from_numpy(x).float()[:, None] / 255, torch.from_numpy(y).float()[:, None]
    )
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True)
    done, t0 = 0, None
    while done < steps + 1:
        for xb, yb in loader:
            if done == 1:
                sync(device)
                t0 = time.perf_counter()  # first step is warm-up
            loss = F.binary_cross_entropy_with_logits(model(xb.to(device)), yb.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
            done += 1
            if done == steps + 1:
                break
    sync(device)
    return steps * batch / (time.perf_counter() - t0)


def project(
    x: np.ndarray, y: np.ndarray, batch: int, steps: int, device: str, model=None
) -> tuple[float, str]:
    """img/s of the project's training epoch on ``model`` (default: the classic U-Net)."""
    p = load(
        ROOT / "params.yaml",
        [f"train.batch_size={batch}", f"train.device={device}", "train.epochs=1"],
    ).train
    prec = choose_precision(p.device, p.amp)
    torch.manual_seed(0)
    model = (model or build(CLASSIC)).to(prec.device).to(memory_format=torch.channels_last)
    n = (steps + 1) * batch
    tr = Trainer(model, p, prec, ROOT / "benchmarks" / "out" / "_scratch")
    tr.schedule(1 << 20)  # long enough for any timed run; speed does not depend on the rate
    tr.train_epoch(0, Batches(x[:batch], y[:batch], batch, train=True))  # warm-up step
    sync(prec.device)
    t0 = time.perf_counter()
    tr.train_epoch(0, Batches(x[: n - batch], y[: n - batch], batch, train=True))
    sync(prec.device)
    return steps * batch / (time.perf_counter() - t0), prec.describe()


def loader_rate(x: np.ndarray, y: np.ndarray, batch: int) -> float:
    tf = online_transform(load(ROOT / "params.yaml").augment, x.shape[-1], seed=0)
    t0, count = time.perf_counter(), 0
    for xb, _ in Batches(x, y, batch, train=True, transform=tf):
        count += xb.shape[0]
    return count / (time.perf_counter() - t0)


def dice_check(device: str) -> dict:
    """Small U-Net, same seed and data: validation Dice with bf16 autocast vs fp32."""
    x, y = data(48, 128)
    out = {}
    for amp in ("fp32", "bf16"):
        p = load(
            ROOT / "params.yaml",
            [
                f"train.amp={amp}",
                f"train.device={device}",
                "train.epochs=6",
                "train.max_minutes=0",
                "train.model.base=8",
            ],
        ).train
        torch.manual_seed(0)
        model = build(p.model.model_dump())
        tr = Trainer(
            model.to(choose_precision(device, amp).device),
            p,
            choose_precision(device, amp),
            ROOT / "benchmarks" / "out" / "_scratch",
        )
        res = tr.fit(
            Batches(x[:40], y[:40], 8, train=True), Batches(x[40:], y[40:], 8, train=False)
        )
        out[amp] = round(res.best_val_dice, 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out"))
    args = ap.parse_args()
    device = choose_precision(args.device, "fp32").device
    x, y = data(max(16, (args.steps + 2) * args.batch), args.crop)
    rate_plain = plain(x, y, args.batch, args.steps, device)
    rate_proj, prec = project(x, y, args.batch, args.steps, args.device)
    rate_loader = loader_rate(x, y, args.batch)
    dice = dice_check(args.device)
    rows = [
        {"loop": "plain PyTorch (fp32)", "img_per_s": rate_plain},
        {"loop": f"gbmseg trainer ({prec}, channels_last)", "img_per_s": rate_proj},
        {"loop": "gbmseg loader + 7 augmentations (no model)", "img_per_s": rate_loader},
    ]
    result = {
        "model": CLASSIC,
        "parameters": sum(q.numel() for q in build(CLASSIC).parameters()),
        "crop": args.crop,
        "batch": args.batch,
        "steps": args.steps,
        "rows": rows,
        "speedup_vs_plain": rate_proj / rate_plain,
        "loader_vs_train": rate_loader / rate_proj,
        "val_dice_fp32_vs_bf16": dice,
    }
    md = (
        f"Classic U-Net ({result['parameters']:,} parameters), "
        f"{args.crop}x{args.crop}, batch {args.batch}\n\n"
        + table(rows, ["loop", "img_per_s"])
        + f"\nspeedup_vs_plain: {result['speedup_vs_plain']:.2f}x; loader / train: "
        f"{result['loader_vs_train']:.1f}x; "
        f"validation Dice fp32 {dice['fp32']} vs bf16 {dice['bf16']}\n"
    )
    write(Path(args.out), "train_throughput", result, md)


if __name__ == "__main__":
    main()
