"""augment: N augmented copies of every validated pair, plus a preview grid."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gbmseg.config import AugmentParams
from gbmseg.data import augmentations
from gbmseg.data.atomic import atomic_dir, meta, write_json
from gbmseg.data.io import list_images, read_image, read_raw, write_png
from gbmseg.data.preview import overlay_grid
from gbmseg.runlog import RunLog, numbers

log = logging.getLogger(__name__)


def trainable(validated: Path) -> list[str]:
    """The validated images that may be trained on (those of the test/ folder never are)."""
    manifest = json.loads((validated / "manifest.json").read_text())
    return sorted(
        q.name for q in list_images(validated / "images") if not manifest[q.stem]["test_only"]
    )


def run(
    p: AugmentParams, validated: str | Path, out: str | Path, run_log: RunLog | None = None
) -> dict:
    """Write images/, masks/ (0/1), manifest.json (copy -> source) and preview.png."""
    validated, out = Path(validated), Path(out)
    names = trainable(validated)
    sources: dict[str, str] = {}
    previews: list[tuple[np.ndarray, np.ndarray]] = []
    pipelines: dict[tuple[int, int], object] = {}
    with atomic_dir(out) as tmp:
        for idx, name in enumerate(tqdm(names, desc="augment", unit="img", disable=None)):
            img = read_image(validated / "images" / name)
            msk = read_raw(validated / "masks" / name)
            shape = img.shape[:2]
            pipe = pipelines.setdefault(shape, augmentations.build(p, shape))
            stem = Path(name).stem
            for k in range(p.copies):
                pipe.set_random_seed(p.seed * 1_000_003 + idx * 1009 + k)
                res = pipe(image=img, mask=msk)
                out_name = f"{stem}__aug{k:02d}.png"
                write_png(tmp / "images" / out_name, res["image"])
                write_png(tmp / "masks" / out_name, res["mask"].astype(np.uint8))
                sources[out_name] = name
                if len(previews) < 16:
                    previews.append((res["image"], res["mask"]))
        if previews:
            write_png(tmp / "preview.png", overlay_grid(previews))
        any_shape = next(iter(pipelines), (256, 256))
        write_json(tmp / "pipeline.json", augmentations.to_dict(augmentations.build(p, any_shape)))
        write_json(tmp / "manifest.json", sources)
        write_json(
            tmp / "_meta.json",
            meta("augment", p.model_dump(mode="json"), {"validated": str(validated)}),
        )
    log.info("augment: %d copies of %d images -> %s", len(sources), len(names), out)
    result = {"images": len(names), "copies": len(sources)}
    if run_log:
        run_log.metrics(numbers(result))
        run_log.artifact(out / "preview.png", "augment")
    return result
