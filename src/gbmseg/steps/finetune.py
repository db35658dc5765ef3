"""finetune: continue training a pretrained U-Net on a small target set.

Fine-tuning is training plus overrides (nanoGPT's rule): the train step's ``fit`` and
``publish`` run with the ``finetune`` section's epochs, learning rate and paths, after the
pretrained weights are loaded (shapes checked strictly) and the strategy's parts frozen.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gbmseg.config import FinetuneParams, TrainParams
from gbmseg.engine.checkpoint import load_model_ref
from gbmseg.steps.train import fit, publish
from gbmseg.transfer import freezing

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


def run(
    p: FinetuneParams, base: TrainParams, packed: str | Path, logger=None, resume: bool = False
) -> dict:
    tp = train_overrides(p, base)
    model = load_model_ref(p.pretrained)
    counts = freezing.apply(model, p.strategy, p.shallow_levels)
    log.info("finetune: %s from %s, %s", p.strategy, p.pretrained, counts)
    if logger:
        logger.params({"finetune": p.model_dump(mode="json"), **counts})
    result = fit(model, tp, packed, tp.out, logger, resume)
    metrics = publish(
        model.cpu(),
        tp,
        result,
        tp.out,
        "finetune",
        {"strategy": p.strategy, "pretrained": p.pretrained, **counts},
    )
    if logger:
        logger.metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)})
    return metrics
