"""finetune: continue training a pretrained U-Net on a small target set.

Fine-tuning is training plus overrides (nanoGPT's rule): the train step's ``fit`` and
``publish`` run with the ``finetune`` section's epochs, learning rate and paths, after the
pretrained weights are loaded (shapes checked strictly), the head fitted to the target's
channel count and the strategy's parts frozen.  ``strategy: auto`` picks the strategy by
the recipe's size x similarity rule (gbmseg.transfer.auto) and writes its reasoning to
``transfer_report.json`` / ``transfer_report.md`` beside the model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gbmseg.config import AugmentParams, FinetuneParams, TrainParams
from gbmseg.engine.checkpoint import load_model_ref
from gbmseg.engine.data import load_split
from gbmseg.steps.train import fit, publish
from gbmseg.transfer import auto, freezing

log = logging.getLogger(__name__)


def train_overrides(p: FinetuneParams, base: TrainParams) -> TrainParams:
    """The train section with the fine-tuning values in place (architecture comes from the
    pretrained model, not from ``train.model``)."""
    return base.model_copy(
        update={
            "out": p.out,
            "metrics": p.metrics,
            "history": p.history,
            "epochs": p.epochs,
            "lr": p.lr,
        }
    )


def target_size(packed: str | Path, tiles: int, tile: int) -> tuple[int, int]:
    """Labelled target images and pixels (augmented copies not counted)."""
    path = Path(packed) / "manifest.json"
    if path.is_file():
        train = json.loads(path.read_text())["splits"]["train"]
        if "source_pixels" in train:
            return len(train["sources"]), int(train["source_pixels"])
    return tiles, tiles * tile * tile  # bare arrays: each tile its own image


def choose(p: FinetuneParams, model, packed: str | Path) -> tuple[str, dict[str, str]]:
    """The strategy to use and, for ``auto``, the report files."""
    if p.strategy != "auto":
        return p.strategy, {}
    x, _ = load_split(packed, "train")
    n_images, n_pixels = target_size(packed, len(x), x.shape[-1])
    hist = getattr(model, "data_histogram", None)
    d = auto.decide(model, x, n_images, n_pixels, None if hist is None else hist.numpy(), p.auto)
    log.info("finetune auto: %s", "; ".join(d.reasons))
    return d.strategy, {
        "transfer_report.json": auto.report_json(d),
        "transfer_report.md": auto.report_md(d, p.pretrained),
    }


def run(
    p: FinetuneParams,
    base: TrainParams,
    packed: str | Path,
    logger=None,
    resume: bool = False,
    augment: AugmentParams | None = None,
) -> dict:
    tp = train_overrides(p, base)
    model = load_model_ref(p.pretrained)
    head_reset = freezing.fit_head(model, p.out_channels)
    strategy, reports = choose(p, model, packed)
    counts = freezing.apply(model, strategy, p.shallow_levels, p.encoder_lr_scale)
    log.info("finetune: %s from %s, %s", strategy, p.pretrained, counts)
    if logger:
        logger.params({"finetune": p.model_dump(mode="json"), **counts})
    result = fit(model, tp, packed, tp.out, logger, resume, augment)
    target_hist = auto.histogram(load_split(packed, "train")[0])
    extra = {"strategy": strategy, "pretrained": p.pretrained, "head_reset": head_reset, **counts}
    metrics = publish(model.cpu(), tp, result, tp.out, "finetune", extra, target_hist, reports)
    if logger:
        logger.metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        for name in reports:
            logger.artifact(Path(tp.out) / name, "transfer")
        if reports:
            decision = json.loads(reports["transfer_report.json"])
            logger.tags({"transfer.quadrant": decision["quadrant"], "transfer.strategy": strategy})
    return metrics
