"""GPU training benchmark (run where a CUDA device exists): images/second of the project's
training loop for the classic U-Net at 512x512 in fp32 and bf16 autocast (+channels_last),
model FLOP utilisation from torch.utils.flop_counter, and peak GPU memory.

"fp32" rows run their convolutions in TF32 when cuDNN allows it (PyTorch's default on
Ampere and newer GPUs); the row is labelled ``tf32`` then.  With ``--compile`` the warm-up
repeats until a step's time is stable, so compilation never lands inside the timing.

    python -m benchmarks.gpu_train [--batch 16] [--steps 20] [--peak-tflops 989] [--compile]
    python -m benchmarks.gpu_train --from-json results/gpu_train.json   # re-render the table
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import ROOT, table, write
from gbmseg.config import load
from gbmseg.engine.amp import choose_precision
from gbmseg.engine.data import Batches
from gbmseg.engine.objective import seg_loss
from gbmseg.engine.trainer import Trainer
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
    prec = choose_precision("cuda", amp)
    torch.manual_seed(0)
    model = build(CLASSIC).cuda().to(memory_format=torch.channels_last)
    net = torch.compile(model) if compile_ else model
    tr = Trainer(net, p, prec, ROOT / "benchmarks" / "out" / "_scratch")
    tr.schedule(1 << 20)  # long enough for any timed run; speed does not depend on the rate
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, ((steps + 3) * batch, size, size), dtype=np.uint8)
    y = (rng.random(x.shape) > 0.9).astype(np.uint8)
    warm = Batches(x[: 3 * batch], y[: 3 * batch], batch, train=True)
    last = float("inf")
    for _ in range(10 if compile_ else 1):  # compiled: until a warm-up epoch's time settles
        t0 = time.perf_counter()
        tr.train_epoch(0, warm)
        torch.cuda.synchronize()
        took, last = time.perf_counter() - t0, last
        if compile_ and abs(took - last) < 0.05 * took:
            break
        last = took
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    tr.train_epoch(0, Batches(x[3 * batch :], y[3 * batch :], batch, train=True))
    torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    return {
        "precision": f"{amp}{' +compile' if compile_ else ''}",
        "cudnn_tf32": bool(torch.backends.cudnn.allow_tf32),
        "compile_warmup": "until stable" if compile_ else "",
        "img_per_s": steps * batch / secs,
        "peak_mem_gb": torch.cuda.max_memory_allocated() / 1e9,
    }


def label(row: dict) -> str | None:
    """What a row measured: 'fp32' convolutions ran in TF32 unless cuDNN was told not to
    (PyTorch's default allows it; earlier JSONs did not record it).  A compiled row measured
    without a settled warm-up is not a valid measurement: None."""
    if "+compile" in row["precision"] and not row.get("compile_warmup"):
        return None
    tf32 = row.get("cudnn_tf32", True)
    return row["precision"].replace("fp32", "tf32") if tf32 else row["precision"]


def markdown(result: dict) -> str:
    rows = [{**r, "precision": label(r)} for r in result["rows"] if label(r)]
    dropped = [r["precision"] for r in result["rows"] if not label(r)]
    note = (
        f"\nLeft out (timed while torch.compile was still compiling): {', '.join(dropped)}\n"
        if dropped
        else ""
    )
    return (
        f"{result['gpu']}, classic U-Net (BN), {result['size']}x{result['size']}, batch "
        f"{result['batch']}, {result['flops_per_image'] / 1e9:.1f} GFLOP per image (fwd+bwd)\n\n"
        + table(rows, ["precision", "img_per_s", "tflops", "mfu", "peak_mem_gb"])
        + f"\nbf16 autocast vs {label(result['rows'][0])}: {result['amp_speedup']:.2f}x\n"
        + note
    )


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
    ap.add_argument("--from-json", type=Path, help="re-render the table of an earlier run")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    if args.from_json:
        result = json.loads(args.from_json.read_text())  # keeps the machine it ran on
        write(args.out, "gpu_train", result, markdown(result))
        return
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
    write(args.out, "gpu_train", result, markdown(result))


if __name__ == "__main__":
    main()
