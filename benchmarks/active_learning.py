"""Does ``gbmseg suggest`` pay? Labels chosen by the model's uncertainty vs at random.

VNC membranes is the target: its 10 even-numbered images are the test set (``test/``, never
touched by any choice), its 10 odd ones are cut into 40 quarter images, the pool, whose masks
are hidden from every choice. ISBI-2012 (30 images) is the source a model is pretrained on
once. Per seed: 2 pool crops drawn at random are labelled (round 0); then, 3 times, the model
fine-tuned so far picks 2 more (``suggest``, the product's default score) or a seeded draw
picks them (``suggest.score=random``), their hidden masks are "the pathologist's correction",
and the model is fine-tuned again. Everything runs through the product's stages (validate,
augment, pack, resolve, finetune, evaluate, suggest) on the short step budget ``BUDGET``.

Decided before running: suggest beats random when its mean test Dice is ahead at rounds 2
and 3. The ranking is also checked directly on the round-0 models: the Spearman correlation
of each score with the true error (1 - Dice of the prediction on each pool crop, from the
hidden masks) says which score ranks the worst images first.

    python -m benchmarks.active_learning [--seeds 0 1 2] [--work DIR] [-S KEY=VALUE ...]

Cells are kept in ``DIR/cells.json`` as they finish (a rerun resumes). Writes
``--out``/active_learning.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np
from scipy import stats

from benchmarks import active_learning_report as report
from benchmarks import folders
from benchmarks.active_learning_report import ADD, ARMS, ROUNDS, SCORES, START
from benchmarks.common import ROOT, SHARED
from gbmseg import stages
from gbmseg.config import Params, load
from gbmseg.data import labelme
from gbmseg.data.io import read_image, read_mask, write_png

log = logging.getLogger("benchmarks.active_learning")
BUDGET = ["finetune.epochs=10", "train.steps_per_epoch=25", "train.epochs=20"]


def draw(work: Path) -> None:
    """Source, test and pool folders (masks black, as the sets ship)."""
    vnc, isbi = SHARED / "vnc_membranes", SHARED / "isbi2012"
    names = folders.names(vnc)
    for sub, src in (("source", isbi), ("test", vnc)):
        for name in folders.names(src) if sub == "source" else names[::2]:
            for kind in ("images", "masks"):
                (work / sub / kind).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / kind / name, work / sub / kind / name)
    for name in names[1::2]:
        img, mask = read_image(vnc / "images" / name), read_image(vnc / "masks" / name)
        h, w = img.shape[0] // 2, img.shape[1] // 2
        for k, (y, x) in enumerate(((0, 0), (0, w), (h, 0), (h, w))):
            stem = f"{Path(name).stem}_q{k}.png"
            write_png(work / "pool" / "images" / stem, img[y : y + h, x : x + w])
            write_png(work / "pool_masks" / stem, mask[y : y + h, x : x + w])


def project(work: Path, arm: str, overrides: list[str]) -> Params:
    """An arm's own project: its target folder, splits, models; the shared source model."""
    keys = [
        f"sets.source.raw={work / 'source'}", f"sets.target.raw={work / 'arms' / arm / 'target'}",
        "sets.source.positive=black", "sets.target.positive=black", "evaluate.baseline=''",
        f"finetune.pretrained={work / 'base' / 'models' / 'train' / 'source'}",
        f"suggest.images={work / 'pool' / 'images'}", "suggest.top=2", *BUDGET, *overrides,
    ]  # fmt: skip
    return load(ROOT / "params.yaml", keys).rooted(work / "arms" / arm)


def pretrain(work: Path, overrides: list[str]) -> None:
    p = load(ROOT / "params.yaml", [f"sets.source.raw={work / 'source'}",
             f"sets.target.raw={work / 'test'}", "train.sets=[source]", "evaluate.baseline=''",
             *BUDGET, *overrides]).rooted(work / "base")  # fmt: skip
    if not (Path(p.train.out) / "source" / "model.pt").is_file():
        stages.validate(p, "source")
        stages.augment(p, "source")
        stages.pack(p, "source")
        stages.train(p, "source")


def label(work: Path, arm: str, names: list[str]) -> None:
    """Move pool crops into the arm's target with their (hidden) masks: the corrected drafts."""
    target = work / "arms" / arm / "target"
    for name in names:
        for src, kind in ((work / "pool" / "images", "images"), (work / "pool_masks", "masks")):
            (target / kind).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, target / kind / name)
    test = target / "test"
    if not test.exists():
        test.symlink_to(work / "test", target_is_directory=True)


def fine_tune(p: Params) -> dict:
    for step in (stages.validate, stages.augment, stages.pack):
        step(p, "target")
    t0 = time.perf_counter()
    stages.resolve(p)
    stages.finetune(p)
    scores = stages.evaluate(p)
    return {"dice": scores["dice"], "finetune_s": round(time.perf_counter() - t0, 1),
            "thickness_slope": scores.get("thickness_medial_median_slope")}  # fmt: skip


def ranking(work: Path, arm: str, p: Params) -> dict:
    """Spearman of each score with the true error over the whole pool (round-0 model)."""
    q = p.model_copy(update={"suggest": p.suggest.model_copy(
        update={"top": 10**6, "out": str(work / "arms" / arm / "ranking")})})  # fmt: skip
    rows = stages.suggest(q, model=p.finetune.out)["rows"]
    err = []
    for r in rows:
        stem = Path(r["draft"]).stem
        doc = Path(q.suggest.out) / f"{stem}.json"
        pred = labelme.rasterise(doc, list(q.validate_.labels)) > 0
        truth = read_mask(work / "pool_masks" / f"{stem}.png", "black") > 0
        err.append(1 - 2 * (pred & truth).sum() / max(1, pred.sum() + truth.sum()))
    out = {"pool": len(rows), "mean_error": round(float(np.mean(err)), 4)}
    for s in SCORES:
        rho = stats.spearmanr([r[s] for r in rows], err).statistic
        top = np.argsort([-r[s] for r in rows], kind="stable")[:ADD]
        out |= {f"rho_{s}": round(float(rho), 3),
                f"top{ADD}_error_{s}": round(float(np.mean([err[i] for i in top])), 4)}  # fmt: skip
    return out


def arm_round(work: Path, name: str, seed: int, r: int, overrides: list[str]) -> dict:
    """Fine-tune on the labels of arm folder ``name`` (ARM-SEED) so far; then (before the
    last round) pick the next 2."""
    arm = name.split("-")[0]
    score = "random" if arm == "random" else None
    extra = [f"train.seed={seed}", f"suggest.seed={1000 * seed + r}"]
    p = project(work, name, [*overrides, *extra, *([f"suggest.score={score}"] if score else [])])
    cell = {"arm": arm, "seed": seed, "round": r,
            "labelled": len(list((work / "arms" / name / "target" / "images").glob("*.png"))),
            **fine_tune(p)}  # fmt: skip
    if r < ROUNDS:
        cell["picked"] = [
            Path(row["draft"]).name for row in stages.suggest(p, model=p.finetune.out)["rows"][:ADD]
        ]
    return cell


def run_seed(work: Path, seed: int, cells: dict, save, overrides: list[str]) -> None:
    start = f"start-{seed}"
    if f"{start}-r0" not in cells:
        pool = sorted(q.name for q in (work / "pool" / "images").glob("*.png"))
        label(work, start, list(np.random.default_rng(seed).choice(pool, START, replace=False)))
        cell = arm_round(work, start, seed, 0, overrides)
        cell.pop("picked", None)
        cell["ranking"] = ranking(
            work, start, project(work, start, [*overrides, f"train.seed={seed}"])
        )
        save(f"{start}-r0", cell)
    for arm in ARMS:
        name = f"{arm}-{seed}"
        if not (work / "arms" / name).exists():
            shutil.copytree(work / "arms" / start, work / "arms" / name, symlinks=True)
        for r in range(ROUNDS + 1):
            key = f"{name}-r{r}"
            if key in cells:
                label(work, name, cells[key].get("picked", []))  # a resumed run: labels in place
                continue
            cell = cells[f"{start}-r0"] if r == 0 else arm_round(work, name, seed, r, overrides)
            if r == 0:
                p = project(work, name, [*overrides, f"train.seed={seed}",
                            f"suggest.seed={1000 * seed}",
                            *(["suggest.score=random"] if arm == "random" else [])])  # fmt: skip
                cell = {**cell, "arm": arm, "picked": [Path(row["draft"]).name for row in
                        stages.suggest(p, model=p.finetune.out)["rows"][:ADD]]}  # fmt: skip
            save(key, cell)
            label(work, name, cell.get("picked", []))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work" / "active")
    ap.add_argument("-S", dest="overrides", action="append", default=[], help="params override")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    if not (SHARED / "vnc_membranes" / "images").is_dir():
        raise SystemExit(f"{SHARED}: vnc_membranes and isbi2012 are needed")
    t0 = time.perf_counter()
    if not (args.work / "pool_masks").is_dir():
        draw(args.work)
    pretrain(args.work, args.overrides)
    store = args.work / "cells.json"
    cells = json.loads(store.read_text()) if store.is_file() else {}

    def save(key: str, cell: dict) -> None:
        cells[key] = cell
        store.write_text(json.dumps(cells, indent=1))
        log.info("%s: %s", key, {k: v for k, v in cell.items() if k != "picked"})

    for seed in args.seeds:
        run_seed(args.work, seed, cells, save, args.overrides)
    args.budget = BUDGET
    report.write_report(args, cells, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
