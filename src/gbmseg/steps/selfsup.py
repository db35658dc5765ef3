"""selfsup: pretrain a U-Net on images without masks (masked denoising, gbmseg.engine.ssl).

The lab has hundreds of unlabelled images of its own domain and labels a few.  This step
learns what that domain looks like from the unlabelled ones; ``finetune`` then starts from
the result (``finetune.pretrained: models/train/NAME``), re-initialising the reconstruction
head.  Images identical (by pixels) to a target test image are left out, so no test image
is ever trained on; every image used is listed in ``trained_on.json`` (with
``"labelled": false``), so the promotion comparison never scores a model on one of them.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path

import numpy as np

from gbmseg.config import ModelParams, SelfsupParams
from gbmseg.data.atomic import write_json, write_text
from gbmseg.data.io import DataError, collect_images, read_image
from gbmseg.data.stats import histogram
from gbmseg.data.table import pixels_sha256
from gbmseg.engine import ssl
from gbmseg.engine.amp import choose_precision
from gbmseg.engine.lifecycle import write_model_folder
from gbmseg.engine.seed import seed_everything
from gbmseg.model.unet import UNetConfig, build
from gbmseg.runlog import RunLog, numbers

log = logging.getLogger(__name__)


def load_unlabelled(
    folder: str | Path, exclude: set[str]
) -> tuple[list[np.ndarray], list[str], list[str]]:
    """(images, their pixel hashes, names left out because they are test images)."""
    images, hashes, left_out, known = [], [], [], set()
    for path in collect_images([folder], "unlabelled image"):
        img = read_image(path)
        digest = pixels_sha256(img)
        if digest in exclude:
            left_out.append(path.name)
        elif digest not in known:  # the same image twice counts once
            known.add(digest)
            images.append(img)
            hashes.append(digest)
    if left_out:
        log.warning(
            "selfsup: %d image(s) of %s are target test images and were left out: %s",
            len(left_out),
            folder,
            ", ".join(left_out[:10]) + (" ..." if len(left_out) > 10 else ""),
        )
    if not images:
        raise DataError(
            f"{folder}: no unlabelled image is left once the target's {len(left_out)} test "
            "image(s) are left out; add images the lab has not labelled for testing"
        )
    return images, hashes, left_out


def loss_csv(losses: list[float], every: int) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "loss"])
    w.writerows([(every * (i + 1), round(v, 6)) for i, v in enumerate(losses)])
    return buf.getvalue()


def run(
    p: SelfsupParams,
    model_p: ModelParams,
    folder: str | Path,
    out: str | Path,
    *,
    metrics: str | Path,
    history: str | Path,
    exclude: set[str] | frozenset[str] = frozenset(),
    device: str = "auto",
    amp: str = "auto",
    run_log: RunLog | None = None,
) -> dict:
    """Pretrain on the images of ``folder`` (those in ``exclude``, pixel hashes, left out);
    publish the model folder ``out``, ``metrics`` (JSON) and ``history`` (loss CSV)."""
    images, hashes, left_out = load_unlabelled(folder, set(exclude))
    seed_everything(p.seed)
    model = build(UNetConfig(**model_p.model_dump()))
    prec = choose_precision(device, amp)
    every = max(1, min(50, p.steps // 10))
    log.info("selfsup: %d unlabelled image(s) from %s, %d steps", len(images), folder, p.steps)
    if run_log:
        run_log.params({"selfsup": p.model_dump(mode="json"), "unlabelled": str(folder)})
    t0 = time.perf_counter()
    losses = ssl.pretrain(
        model, images, prec, p.steps, batch=p.batch_size, tile=p.tile, lr=p.lr,
        mask_ratio=p.mask_ratio, patch=p.patch, noise=p.noise, seed=p.seed, every=every,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    model = model.cpu()
    model.set_source_histogram(histogram(np.concatenate([i.ravel() for i in images])))
    result = {
        "images": len(images),
        "left_out_test_images": len(left_out),
        "steps": p.steps,
        "final_loss": round(losses[-1], 6) if losses else None,
        "seconds": round(seconds, 1),
        "crops_per_s": round(p.steps * p.batch_size / max(seconds, 1e-9), 1),
        "precision": prec.describe(),
    }
    inputs = {"unlabelled": str(folder)}
    params = p.model_dump(mode="json")
    write_model_folder(out, model, "selfsup", params, hashes, labelled=False, inputs=inputs)
    write_json(metrics, result)
    write_text(history, loss_csv(losses, every))
    if run_log:
        run_log.metrics(numbers(result))
        run_log.artifact(history, "curves")
    log.info("selfsup: final loss %s in %.0f s -> %s", result["final_loss"], seconds, out)
    return result
