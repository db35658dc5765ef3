"""Few labels, new domain: how good a model do k = 1, 2 labelled images give, and which
levers pay?  A study that cannot peek.

Protocol per target set (``../shared/data``): its images in natural order are split once
into a *test* half (never used for any choice), and a *pool*; the pool's last images are
*development* images, on which every choice is made (levers, schedule, the auto rule's
mapping); the k labelled images of seed s are the pool's candidates s*k ... s*k+k-1, so
seeds differ in images as well as in initialisation.  Unlabelled images for
self-supervised pretraining come from ISBI-2012's test_images/ and the target's pool, never
from its test half.

Phases (``--phase``):
  screen   levers one at a time at one k on the development images (``--levers``)
  grid     strategies x k x seeds on the test images, with the chosen configuration
  ceiling  the whole pool's candidates (full supervision), on the test images

Cells are saved as they finish (``--out`` JSON); a re-run skips cells already there.

    python -m benchmarks.fewshot --target cdeep3m_mito --phase screen --k 2
    python -m benchmarks.fewshot --target cdeep3m_mito --phase grid --k 1 2 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import folders
from benchmarks.common import ROOT, SHARED, machine
from benchmarks.fewshot_report import report
from benchmarks.fewshot_specs import LEVERS, TEST_SHARE, Config, add_io_arguments, specs
from gbmseg.config import Params, load
from gbmseg.engine import checkpoint
from gbmseg.steps import finetune, selfsup, train

log = logging.getLogger("benchmarks.fewshot")
DEV = {"vnc_membranes": 3, "cdeep3m_mito": 4}  # development images: the pool's last N
OTHER = {"vnc_membranes": "cdeep3m_mito", "cdeep3m_mito": "vnc_membranes"}


@dataclass
class Split:
    test: list[str]
    dev: list[str]
    candidates: list[str]

    def labelled(self, k: int, seed: int) -> list[str]:
        c = self.candidates
        return [c[(seed * k + i) % len(c)] for i in range(k)]


def split(target: str) -> Split:
    names = folders.names(SHARED / target)
    n_test, n_dev = TEST_SHARE[target], DEV[target]
    pool, test = names[: len(names) - n_test], names[len(names) - n_test :]
    return Split(test, pool[len(pool) - n_dev :], pool[: len(pool) - n_dev])


def params(cfg: Config, out: Path, epochs: int, seed: int) -> Params:
    """The cell's configuration as params.yaml overrides (fine-tuning = training + the same
    budget, rate and paths)."""
    return load(
        ROOT / "params.yaml",
        [
            f"train.model.base={cfg.base}",
            f"train.epochs={epochs}",
            f"train.lr={cfg.lr}",
            f"train.seed={seed}",
            "train.batch_size=8",
            "train.patience=100000",
            "train.max_minutes=0",
            "train.augment_online=true",
            f"train.foreground_oversample={cfg.foreground}",
            f"train.pos_weight={cfg.pos_weight}",
            f"finetune.epochs={epochs}",
            f"finetune.lr={cfg.lr}",
            f"finetune.strategy={cfg.strategy}",
            f"augment.elastic.p={cfg.elastic}",
            f"evaluate.tta={str(cfg.tta).lower()}",
            f"selfsup.steps={cfg.pretrain_steps}",
            f"selfsup.tile={cfg.tile}",
            *folders.step_paths(out),
        ],
    )


def packed_set(target: str, names: list[str], tile: int, work: Path) -> tuple[Path, int]:
    """The pack step's arrays of ``names`` (train; the first also as the val split)."""
    chosen = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
    out = work / "packed" / f"{target}-{tile}-{len(names)}-{chosen}"
    if not (out / "manifest.json").is_file():
        valid = folders.validated(SHARED / target, "black", work)
        folders.pack(valid, {"train": names, "val": names[:1]}, tile, tile // 2, out)
    tiles = json.loads((out / "manifest.json").read_text())["splits"]["train"]["tiles"]
    return out, tiles


def epochs_for(steps: int, tiles: int) -> int:
    return max(1, -(-steps // -(-tiles // 8)))


def unlabelled(target: str, sp: Split, work: Path) -> Path:
    """A folder of ISBI-2012's unlabelled test_images and the target's pool (never its test
    half), as links."""
    out = work / "unlabelled" / target
    if not out.is_dir():
        tmp = out.with_name(target + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        isbi = sorted((SHARED / "isbi2012" / "test_images").iterdir())
        pool = [SHARED / target / "images" / n for n in sp.candidates + sp.dev]
        for i, path in enumerate([*isbi, *pool]):
            (tmp / f"{i:03d}-{path.parent.parent.name}-{path.name}").symlink_to(path.resolve())
        tmp.rename(out)
    return out


def supervised(
    names: list[tuple[str, list[str]]], cfg: Config, steps: int, work: Path, init, out: Path
) -> None:
    """Pretrain on labelled sources (several: trained on together) with the train step,
    from ``init`` (a model folder) or random weights."""
    packs = [packed_set(t, n, cfg.tile, work) for t, n in names]
    p = params(cfg, out, epochs_for(steps, sum(n for _, n in packs)), 0)
    train.run(p.train, [pk for pk, _ in packs], augment=p.augment, start=init)


def self_supervised(target: str, sp: Split, cfg: Config, work: Path, out: Path) -> None:
    """The selfsup step on the study's unlabelled images."""
    p = params(cfg, out, 1, 0)
    model_p = p.train.model.model_copy(update={"depth": 4, "base": cfg.base})
    selfsup.run(p.selfsup, model_p, unlabelled(target, sp, work), out,
                metrics=f"{out}.metrics.json", history=f"{out}.history.csv")  # fmt: skip


def pretrained(start: str, target: str, sp: Split, cfg: Config, work: Path) -> Path | None:
    """The starting model of ``start`` (cached in ``work``)."""
    if start == "scratch":
        return None
    own = target if "ssl" in start or start == "multi" else ""
    out = work / "pretrained" / f"{start}-{own}-b{cfg.base}-t{cfg.tile}-s{cfg.pretrain_steps}"
    if (out / "model.pt").is_file():
        return out
    t0 = time.perf_counter()
    isbi = ("isbi2012", folders.names(SHARED / "isbi2012"))
    init = None
    if "ssl" in start:
        init = out if start == "ssl" else out.with_name(out.name + "-ssl")
        if not (init / "model.pt").is_file():
            self_supervised(target, sp, cfg, work, init)
        if start == "ssl":
            return out
    sources = [isbi]
    if start == "multi":
        other = OTHER[target]
        sources.append((other, folders.names(SHARED / other)))
    supervised(sources, cfg, cfg.pretrain_steps * len(sources), work, init, out)
    log.info("pretrained %s for %s in %.0f s", start, target, time.perf_counter() - t0)
    return out


def cell(target: str, sp: Split, k: int, seed: int, cfg: Config, on: str, work: Path) -> dict:
    """Train one configuration on k labelled images (the train step from scratch, else the
    finetune step) and score it on ``on`` (dev | test)."""
    names = sp.labelled(k, seed) if k else sp.candidates
    packed, tiles = packed_set(target, names, cfg.tile, work)
    out = work / "cells" / cell_id(target, k, seed, cfg, on)
    p = params(cfg, out, epochs_for(cfg.steps, tiles), seed)
    start = pretrained(cfg.start, target, sp, cfg, work)
    t0 = time.perf_counter()
    if start is None:
        res = train.run(p.train, packed, augment=p.augment) | {"strategy": "scratch"}
    else:
        tp = p.finetune_train_params()
        res = finetune.run(p.finetune, tp, start, packed, augment=p.augment)
    seconds = round(time.perf_counter() - t0, 1)
    report = out / "transfer_report.json"
    decision = json.loads(report.read_text())["quadrant"] if report.is_file() else None
    images = sp.dev if on == "dev" else sp.test
    model = checkpoint.load_model(out)
    rows = folders.score(model, SHARED / target, images, "black", 256, "auto", tta=cfg.tta)
    return {
        "id": cell_id(target, k, seed, cfg, on),
        "target": target,
        "k": k,
        "seed": seed,
        "on": on,
        "labelled": names,
        "config": json.loads(cfg.key()),
        "strategy": res["strategy"],
        "quadrant": decision,
        **folders.mean(rows),
        "train_seconds": seconds,
        "per_image": rows,
    }


def cell_id(target: str, k: int, seed: int, cfg: Config, on: str) -> str:
    blob = json.dumps([target, k, seed, cfg.key(), on])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save(path: Path, doc: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(path)


def run(specs: list[tuple], out: Path, work: Path) -> dict:
    """Run the cells not in ``out`` yet, saving after each."""
    doc = json.loads(out.read_text()) if out.is_file() else {"machine": machine(), "cells": []}
    done = {c["id"] for c in doc["cells"]}
    for target, k, seed, cfg, on, label in specs:
        if cell_id(target, k, seed, cfg, on) in done:
            continue
        res = cell(target, split(target), k, seed, cfg, on, work) | {"label": label}
        log_cell(res)
        doc["cells"].append(res)
        save(out, doc)
    return doc


def log_cell(res: dict) -> None:
    log.info(
        "%s k=%s seed=%s %s on %s: Dice %.4f (%.0f s)",
        *(res[k] for k in ("target", "k", "seed", "label", "on", "dice", "train_seconds")),
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--target", nargs="+", default=["cdeep3m_mito"], choices=sorted(TEST_SHARE))
    ap.add_argument("--phase", default="screen", choices=["screen", "grid", "ceiling"])
    ap.add_argument("--k", type=int, nargs="+", default=[2])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--levers", nargs="+", default=list(LEVERS), choices=list(LEVERS))
    ap.add_argument(
        "--strategies", nargs="+", default=["scratch", "decoder", "shallow", "full", "auto"]
    )
    add_io_arguments(ap, "fewshot.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    run(specs(args), args.out, args.work)
    report(args.out)


if __name__ == "__main__":
    main()
