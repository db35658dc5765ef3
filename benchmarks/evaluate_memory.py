"""Evaluate's memory does not grow with the number of test images: peak RSS of `evaluate`
(tiled inference, per-image scores, overlays, the threshold sweep from running counts) on
10 and on 100 test images of 2048 x 2048, each in a fresh process.

    python -m benchmarks.evaluate_memory [--counts 10 100] [--size 2048]

Writes benchmarks/out/evaluate_memory.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, table, write
from benchmarks.phantoms import ribbon

CHILD = """
import json, sys
from pathlib import Path
from gbmseg.config import load
from gbmseg.steps import evaluate
work, root = Path(sys.argv[1]), sys.argv[2]
sets = [f"evaluate.out={work}/report", f"evaluate.metrics={work}/m.json", "evaluate.max_overlays=4"]
p = load(Path(root) / "params.yaml", sets).evaluate
evaluate.run(p, work / "model", work / "validated", work / "packed")
import resource
print(json.dumps({"peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def make_set(work: Path, n: int, size: int) -> None:
    """``n`` images with a ribbon and their masks, through the validate and pack steps as
    test images, and a small U-Net."""
    import torch

    from benchmarks import folders
    from gbmseg.data.io import write_png
    from gbmseg.engine import checkpoint
    from gbmseg.model.unet import build

    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        m = ribbon(rng.uniform(20, 40), size, rng.uniform(0, 180), True, rng.uniform(0, 1))
        img = np.where(m, 80, 180) + rng.normal(0, 15, m.shape)
        name = f"im{i:03d}.png"
        write_png(work / "raw" / "images" / name, img.clip(0, 255).astype(np.uint8))
        write_png(work / "raw" / "masks" / name, m.astype(np.uint8) * 255)
        names.append(name)
    valid = folders.validated(work / "raw", "white", work)
    (work / "validated").symlink_to(valid)
    folders.pack(valid, {"test": names}, size, size, work / "packed")
    torch.manual_seed(0)
    (work / "model").mkdir()
    checkpoint.save(
        work / "model" / "model.pt", checkpoint.model_state(build({"depth": 3, "base": 8}))
    )


def peak_rss_mb(work: Path) -> tuple[float, float]:
    """The evaluate process's own peak resident memory (it reports it as it ends)."""
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", CHILD, str(work), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    rss_kb = json.loads(res.stdout.strip().splitlines()[-1])["peak_rss_kb"]
    return rss_kb / 1024, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--counts", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    rows = []
    for n in sorted(args.counts):
        with tempfile.TemporaryDirectory() as tmp:
            make_set(Path(tmp), n, args.size)
            rss, secs = peak_rss_mb(Path(tmp))
        rows.append(
            {
                "test_images": n,
                "size": f"{args.size}x{args.size}",
                "peak_rss_mb": round(rss, 1),
                "seconds": round(secs, 1),
            }
        )
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    md = (
        "# evaluate: peak RSS against the number of test images (fresh process each)\n\n"
        + table(rows, list(rows[0]))
        + f"\nPeak RSS {rows[-1]['test_images']} / {rows[0]['test_images']} images: "
        f"{ratio:.3f} (1.0 = memory flat in the number of images)\n"
    )
    write(args.out, "evaluate_memory", {"rows": rows, "rss_ratio": round(ratio, 3)}, md)


if __name__ == "__main__":
    main()
