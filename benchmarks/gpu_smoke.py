"""The demo training run on a CUDA device: the train step's code unchanged (bf16 autocast,
channels_last), on synthetic data packed in memory; reports Dice and img/s.

    python -m benchmarks.gpu_smoke [--out benchmarks/out]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, table, write
from gbmseg.config import load
from gbmseg.steps import pack, synth, train


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        p = load(
            ROOT / "params.yaml",
            [
                f"train.out={tmp}/model",
                f"train.metrics={tmp}/m.json",
                f"train.history={tmp}/h.csv",
                f"train.checkpoints={tmp}/ckpt",
                "train.device=cuda",
                "train.max_minutes=0",
            ],
        )
        rng = np.random.default_rng(p.synth.seed)
        pairs = [synth.render(rng, p.synth)[:2] for _ in range(p.synth.source_images)]
        tiles = [
            (pack.tiles(a, p.pack.tile, p.pack.stride), pack.tiles(b, p.pack.tile, p.pack.stride))
            for a, b in pairs
        ]
        cut = len(tiles) * 3 // 4
        for split, chunk in (("train", tiles[:cut]), ("val", tiles[cut:])):
            np.save(tmp / f"{split}_images.npy", np.stack([t for a, _ in chunk for t in a]))
            np.save(tmp / f"{split}_masks.npy", np.stack([t for _, b in chunk for t in b]))
        metrics = train.run(p.train, tmp)
    rows = [{"what": k, "value": metrics[k]} for k in ("best_val_dice", "epochs_run", "img_per_s")]
    write(
        args.out,
        "gpu_smoke",
        {"metrics": metrics},
        "GPU demo training\n\n" + table(rows, ["what", "value"]),
    )


if __name__ == "__main__":
    main()
