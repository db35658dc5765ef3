"""Prediction speed and memory on big images: megapixels/second and peak RSS for a 2048^2 and
an 8192^2 image, each predicted in a fresh process; the RSS ratio shows that memory is
bounded by the tile batch, not the image.

    python -m benchmarks.predict [--sizes 2048,8192] [--model models/train] [--out benchmarks/out]
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
import tifffile

from benchmarks.common import ROOT, table, write

CHILD = """
import json, resource, sys, time
from gbmseg.config import load
from gbmseg.steps import predict
p = load(sys.argv[1]).predict
t = time.perf_counter()
predict.run(p, sys.argv[2], [sys.argv[3]], sys.argv[4], positive="black")
secs = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": secs, "peak_rss_mb": rss}))
"""


def make_image(path: Path, size: int) -> None:
    """A big synthetic EM-like image, written as an uncompressed (memory-mappable) TIFF."""
    rng = np.random.default_rng(size)
    tile = rng.integers(90, 200, (512, 512), dtype=np.uint8)
    reps = -(-size // 512)
    tifffile.imwrite(path, np.tile(tile, (reps, reps))[:size, :size])


def ensure_model(model: str, tmp: Path) -> str:
    if Path(model).exists():
        return model
    import torch

    from gbmseg.config import load
    from gbmseg.engine import checkpoint
    from gbmseg.model.unet import build

    m = build(load(ROOT / "params.yaml").train.model.model_dump())
    torch.manual_seed(0)
    checkpoint.save(tmp / "model.pt", {"model": m.state_dict(), "model_config": m.cfg.to_dict()})
    return str(tmp / "model.pt")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="2048,8192")
    ap.add_argument("--model", default=str(ROOT / "models" / "train"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        model = ensure_model(args.model, tmp)
        for size in map(int, args.sizes.split(",")):
            img = tmp / f"big_{size}.tif"
            make_image(img, size)
            t0 = time.perf_counter()
            res = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    str(ROOT / "params.yaml"),
                    model,
                    str(img),
                    str(tmp / "pred"),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            stats = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(
                {
                    "image": f"{size}x{size}",
                    "megapixels": size * size / 1e6,
                    "mpix_per_s": size * size / 1e6 / stats["seconds"],
                    "peak_rss_mb": stats["peak_rss_mb"],
                    "wall_s": time.perf_counter() - t0,
                }
            )
            (tmp / "pred").exists() and [p.unlink() for p in (tmp / "pred").iterdir()]
            img.unlink()
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    md = (
        f"Prediction (predict section of params.yaml), model {args.model}\n\n"
        + table(rows, ["image", "megapixels", "mpix_per_s", "peak_rss_mb", "wall_s"])
        + f"\nPeak RSS ratio {rows[-1]['image']} / {rows[0]['image']}: {ratio:.3f} "
        "(1.0 = memory flat in the image size)\n"
    )
    write(args.out, "predict", {"rows": rows, "rss_ratio": ratio}, md)


if __name__ == "__main__":
    main()
