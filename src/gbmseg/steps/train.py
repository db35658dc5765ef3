"""train: fit a U-Net from scratch on one or more packed sets.

On the source set(s) this is pretraining; on the target set it is the from-scratch baseline
that the fine-tuned model is compared with.  Checkpoints (``last.pt``, ``best.pt``) live in
``p.checkpoints`` while training, so a killed run resumes with ``resume=True``; the finished
model is published atomically (see ``gbmseg.engine.lifecycle``).
"""

from __future__ import annotations

from pathlib import Path

from gbmseg.config import AugmentParams, TrainParams
from gbmseg.engine import lifecycle
from gbmseg.engine.checkpoint import load_model
from gbmseg.engine.seed import seed_everything
from gbmseg.model.unet import UNetConfig, build
from gbmseg.runlog import RunLog


def run(
    p: TrainParams,
    packed: str | Path | list[str | Path],
    run_log: RunLog | None = None,
    resume: bool = False,
    *,
    augment: AugmentParams | None = None,
    start: str | Path | None = None,
) -> dict:
    """Train on the ``train`` split of ``packed`` (several folders: trained on together),
    early-stopping on their ``val`` split; return the metrics.  ``start``: a model folder
    whose weights training starts from (a self-supervised model's head is re-initialised;
    its images count as seen) instead of random weights of ``p.model``."""
    folders = [Path(packed)] if isinstance(packed, str | Path) else [Path(f) for f in packed]
    seed_everything(p.seed)  # the initial weights too
    seen = lifecycle.seen_images(folders)
    if start is None:
        model = build(UNetConfig(**p.model.model_dump()))
    else:
        model = load_model(start)
        if not lifecycle.learnt_from_labels(start):
            model.reset_head()
        seen = sorted(set(seen) | set(lifecycle.read_trained_on(start)))
    if run_log:
        run_log.params({"train": p.model_dump(mode="json"), "packed": [str(f) for f in folders],
                       "start": str(start or "")})  # fmt: skip
    return lifecycle.train_and_publish(
        model, p, folders, "train", seen, run_log, resume=resume, augment=augment
    )
