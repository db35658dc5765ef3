"""finetune: continue training a pretrained U-Net on the lab's small target set.

Fine-tuning is training plus overrides (nanoGPT's rule): the shared training lifecycle runs
with the ``finetune`` section's epochs, learning rate and paths, after the pretrained
weights are loaded and the strategy's parts frozen.  ``strategy: auto`` picks the strategy
by the recipe's size x similarity rule (gbmseg.transfer.auto) and writes its reasoning to
``transfer_report.json`` / ``transfer_report.md`` beside the model.  The published model's
``trained_on.json`` lists the target images it saw and every image its pretrained model saw.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gbmseg.config import AugmentParams, FinetuneParams, TrainParams
from gbmseg.data.io import DataError
from gbmseg.engine import lifecycle
from gbmseg.engine.checkpoint import load_model
from gbmseg.engine.data import load_split
from gbmseg.engine.seed import seed_everything
from gbmseg.runlog import RunLog
from gbmseg.transfer import auto, freezing

log = logging.getLogger(__name__)


def target_size(packed: str | Path, tiles: int, tile: int) -> tuple[int, int]:
    """Labelled target images and pixels (augmented copies not counted)."""
    path = Path(packed) / "manifest.json"
    if path.is_file():
        train = json.loads(path.read_text())["splits"]["train"]
        if "source_pixels" in train:
            return len(train["sources"]), int(train["source_pixels"])
    return tiles, tiles * tile * tile  # bare arrays: each tile its own image


def self_supervised_choice(p: FinetuneParams, pretrained: str) -> tuple[str, dict]:
    """``auto`` on a model that never saw a label: the size x similarity rule measures how far
    the target is from labelled source data, which does not exist here."""
    s = p.auto.self_supervised
    reason = (
        f"{pretrained} learnt from unlabelled images only (selfsup): its head was "
        f"re-initialised and the strategy is finetune.auto.self_supervised = {s}"
    )
    log.info("finetune auto: %s", reason)
    report = {"quadrant": "self-supervised", "strategy": s, "reasons": [reason]}
    md = f"# Transfer decision: {s}\n\nPretrained model: `{pretrained}`\n\n- {reason}\n"
    return s, {"transfer_report.json": json.dumps(report, indent=2), "transfer_report.md": md}


def choose(
    p: FinetuneParams, model, packed: str | Path, pretrained: str, labelled: bool = True
) -> tuple[str, dict]:
    """The strategy to use and, for ``auto``, the report files."""
    if p.strategy != "auto":
        return p.strategy, {}
    if not labelled:
        return self_supervised_choice(p, pretrained)
    x, _ = load_split(packed, "train")
    n_images, n_pixels = target_size(packed, len(x), x.shape[-1])
    d = auto.decide(model, x, n_images, n_pixels, model.source_histogram(), p.auto)
    log.info("finetune auto: %s", "; ".join(d.reasons))
    return d.strategy, {
        "transfer_report.json": auto.report_json(d),
        "transfer_report.md": auto.report_md(d, pretrained),
    }


def check_scale(model_nm: float | None, target_nm: float | None, name: str, packed) -> None:
    """A source and a target at different scales are brought to one before fine-tuning:
    refuse a pretrained model whose pixel size differs from the target's tiles by over 5%."""
    if model_nm and target_nm and abs(model_nm - target_nm) > 0.05 * target_nm:
        raise DataError(
            f"{name} was trained at {model_nm:g} nm/px, the target's tiles in {packed} are at "
            f"{target_nm:g} nm/px: set pack.scale_nm (e.g. {model_nm:g}) so every set is packed "
            "at one scale, then re-run pack and the stages after it"
        )
    if (model_nm is None) != (target_nm is None):
        log.warning("finetune: the scale of %s is unknown; it cannot be checked against the "
                    "target's", name if model_nm is None else packed)  # fmt: skip


def run(
    p: FinetuneParams,
    train_p: TrainParams,
    pretrained: str | Path,
    packed: str | Path,
    *,
    run_log: RunLog | None = None,
    resume: bool = False,
    augment: AugmentParams | None = None,
    pretrained_name: str = "",
) -> dict:
    """Fine-tune the model folder ``pretrained`` on ``packed`` with the train params ``train_p``
    (= train + the finetune overrides); ``pretrained_name`` is how reports name it."""
    name = pretrained_name or str(pretrained)
    model = load_model(pretrained)
    check_scale(model.pixel_size_nm(), lifecycle.packed_pixel_size([packed]), name, packed)
    labelled = lifecycle.learnt_from_labels(pretrained)
    if not labelled:  # a reconstruction head: segmentation starts from a fresh one
        seed_everything(train_p.seed)
        model.reset_head()
    strategy, reports = choose(p, model, packed, name, labelled)
    counts = freezing.apply(model, strategy, p.shallow_levels)
    log.info("finetune: %s from %s, %s", strategy, name, counts)
    if run_log:
        run_log.params({"finetune": p.model_dump(mode="json"), **counts})
        if reports:
            decision = json.loads(reports["transfer_report.json"])
            run_log.tags({"transfer.quadrant": decision["quadrant"], "transfer.strategy": strategy})
    seen = sorted(set(lifecycle.read_trained_on(pretrained)) | set(lifecycle.seen_images([packed])))
    extra = {"strategy": strategy, "pretrained": name, **counts}
    metrics = lifecycle.train_and_publish(
        model, train_p, [Path(packed)], "finetune", seen, run_log, resume, augment, extra, reports,
        lr_scales=freezing.lr_scales(model, p.encoder_lr_scale),
    )  # fmt: skip
    if run_log:
        for report in reports:
            run_log.artifact(Path(train_p.out) / report, "transfer")
    return metrics
