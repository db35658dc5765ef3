"""suggest: which unlabelled images are worth the pathologist's next half hour.

Runs the current model over a folder of unlabelled images, scores how unsure it is on each,
and writes the ``top`` most uncertain as labelme drafts into ``out``: the image (copied as
it is, or as a PNG with its pixel size where labelme cannot open the format) and NAME.json
with the predicted membrane as polygons, ready to correct. ``ranked.csv`` lists every image
with its scores, ``contact_sheet.png`` shows the proposed ones with the prediction drawn in.

Scores (``suggest.score``), each read within ``band_px`` of the predicted membrane:
- ``disagreement``: 1 - the mean Dice between the four flip views' masks (the model's answer
  changes when the image is mirrored);
- ``entropy``: the mean binary entropy of the probabilities (bits);
- ``random``: a seeded draw, the baseline any ranking must beat.
Images whose pixels are already labelled or in a test set (``exclude``: pixel hashes, so the
same image under another name or format is caught) are never proposed.

Measured (``benchmarks/results/active_learning.*``, VNC membranes, 3 seeds): both scores rank
the crops the model gets most wrong first (Spearman with the true error 0.72-0.80 for
``disagreement``, 0.65-0.76 for ``entropy``), but labelling the top ones raised test Dice no
more than labelling at random. The step says so (``MEASURED``): take the drafts as a head
start, the order as a hint.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from tqdm import tqdm

from gbmseg.config import SuggestParams
from gbmseg.data import labelme
from gbmseg.data.atomic import atomic_dir, write_json
from gbmseg.data.io import DataError, collect_images, read, to_uint8, write_png
from gbmseg.data.table import pixels_sha256
from gbmseg.engine.amp import choose_precision
from gbmseg.inference import predict_at_scale, threshold_for

log = logging.getLogger(__name__)

LABELME_OPENS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MEASURED = (
    "ranked by uncertainty, which was no better than labelling at random for test Dice on VNC "
    "membranes (benchmarks/README.md, active learning): the order is a hint"
)
FLIPS = ((), (0,), (1,), (0, 1))


def flip_views(model, img: np.ndarray, nm: float | None, p: SuggestParams, prec) -> np.ndarray:
    """(4, H, W) probabilities of the image as it is and mirrored, each mapped back."""
    views = []
    for axes in FLIPS:
        view = np.flip(img, axes) if axes else img
        prob = predict_at_scale(model, np.ascontiguousarray(view), prec, nm, p.tile, p.overlap,
                                p.batch, False)  # fmt: skip
        views.append(np.flip(prob, axes) if axes else prob)
    return np.stack(views)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def scores(views: np.ndarray, threshold: float, band_px: int) -> dict:
    """The uncertainty figures of one image from its flip views."""
    prob = views.mean(axis=0)
    masks = views > threshold
    union = masks.any(axis=0)
    band = ndimage.binary_dilation(union, iterations=band_px) if band_px else union
    pairs = [_dice(masks[i] & band, masks[j] & band) for i in range(4) for j in range(i + 1, 4)]
    q = np.clip(prob[band], 1e-6, 1 - 1e-6)
    entropy = float(np.mean(-(q * np.log2(q) + (1 - q) * np.log2(1 - q)))) if q.size else 0.0
    return {
        "disagreement": round(1 - float(np.mean(pairs)), 6),
        "entropy": round(entropy, 6),
        "membrane_fraction": round(float((prob > threshold).mean()), 6),
    }


def draft_stem(stem: str, taken: set[str]) -> str:
    """``stem``, or ``stem_2``, ``stem_3``... where a labelled image already has that name
    (accepting the draft must never overwrite a label)."""
    name, i = stem, 1
    while name in taken:
        i += 1
        name = f"{stem}_{i}"
    taken.add(name)
    return name


def _draft(path: Path, img: np.ndarray, pic, structure: np.ndarray, out: Path, *, label: str,
           stem: str) -> str:  # fmt: skip
    """The image and its labelme JSON (the prediction as polygons, the pixel size kept)."""
    if path.suffix.lower() in LABELME_OPENS:
        image = out / f"{stem}{path.suffix}"
        shutil.copyfile(path, image)
    else:
        image = write_png(out / f"{stem}.png", img, pic.pixel_size)
    doc = labelme.document(structure, image.name, label, labelme.HOLE, pic.pixel_size)
    write_json(out / f"{stem}.json", doc)
    return image.name


def contact_sheet(rows: list[dict], overlays: list[np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows)
    cols = min(4, n)
    fig, axes = plt.subplots(-(-n // cols), cols, figsize=(3.2 * cols, 3.4 * -(-n // cols)),
                             squeeze=False)  # fmt: skip
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row, rgb in zip(axes.ravel(), rows, overlays, strict=False):
        ax.imshow(rgb)
        ax.set_title(f"#{row['rank']} {Path(row['image']).name}\n{row['score']:.3f}", fontsize=8)
    fig.suptitle("Proposed for labelling (prediction in red): correct them in labelme")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _overlay(img: np.ndarray, structure: np.ndarray, side: int = 256) -> np.ndarray:
    step = max(1, max(img.shape) // side)
    rgb = np.repeat(img[::step, ::step, None], 3, axis=2).copy()
    edge = structure[::step, ::step] & ~ndimage.binary_erosion(structure[::step, ::step])
    rgb[edge] = (230, 30, 30)
    return rgb


def run(
    p: SuggestParams, model, inputs: list[str | Path], out: str | Path, *,
    exclude: set[str], taken: set[str] = frozenset(), label: str = "gbm",
) -> list[dict]:  # fmt: skip
    """Rank the images of ``inputs`` (``exclude``: pixel hashes never proposed) and write the
    ``p.top`` most uncertain as drafts into ``out`` (renamed where a labelled image has the
    name: ``taken``, file stems); return every image's row, ranked."""
    prec = choose_precision(p.device, p.amp)
    model = model.to(prec.device).eval()
    threshold = threshold_for(model, "model")
    rng = np.random.default_rng(p.seed)
    rows, keep, seen = [], {}, set()
    for path in tqdm(collect_images(inputs, "unlabelled image"), desc="suggest", unit="img",
                     disable=None):  # fmt: skip
        pic = read(path)
        img = to_uint8(pic.pixels)
        digest = pixels_sha256(img)
        why = "labelled or test" if digest in exclude else "duplicate" if digest in seen else ""
        seen.add(digest)
        row = {"image": str(path), "pixels_sha256": digest, "skipped": why, "random": rng.random()}
        if not why:
            nm = pic.pixel_size.nm if pic.pixel_size else None
            views = flip_views(model, img, nm, p, prec)
            row |= scores(views, threshold, p.band_px)
            keep[str(path)] = (path, img, pic, views.mean(axis=0) > threshold)
        rows.append(row)
    ranked = sorted((r for r in rows if not r["skipped"]),
                    key=lambda r: (-r[p.score], r["random"]))  # fmt: skip
    if not ranked:
        raise DataError(f"{inputs}: every image is already labelled or a test image; "
                        "add unlabelled images to the folder")  # fmt: skip
    return _write(p, out, ranked, rows, keep, label=label, taken=set(taken))


def _write(p: SuggestParams, out, ranked: list[dict], rows: list[dict], keep: dict, *,
           label: str, taken: set[str]):  # fmt: skip
    with atomic_dir(out) as tmp:
        overlays = []
        for i, row in enumerate(ranked, 1):
            row |= {"rank": i, "score": row[p.score], "draft": ""}
            if i <= p.top:
                path, img, pic, structure = keep[row["image"]]
                stem = draft_stem(path.stem, taken)
                row["draft"] = _draft(path, img, pic, structure, tmp, label=label, stem=stem)
                overlays.append(_overlay(img, structure))
        contact_sheet(ranked[: p.top], overlays, tmp / "contact_sheet.png")
        table = pd.DataFrame(ranked + [r for r in rows if r["skipped"]])
        table["rank"] = table["rank"].astype("Int64")  # skipped images have none
        table.to_csv(tmp / "ranked.csv", index=False)
    skipped = sum(bool(r["skipped"]) for r in rows)
    log.info("suggest: %d of %d image(s) ranked by %s (%d skipped); top %d -> %s",
             len(ranked), len(rows), p.score, skipped, min(p.top, len(ranked)), out)  # fmt: skip
    if p.score != "random":
        log.info("suggest: %s", MEASURED)
    return ranked
