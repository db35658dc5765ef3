"""What the training loop computes with: the loss, the learning-rate schedule, parameter
groups (fine-tuning's per-part learning rates), validation Dice, and the model inside its
torch.compile / DDP wrappers."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from gbmseg.config import TrainParams
from gbmseg.engine import distributed, edges
from gbmseg.engine.amp import Precision
from gbmseg.engine.data import Batches


def seg_loss(logits: torch.Tensor, target: torch.Tensor, p: TrainParams) -> torch.Tensor:
    """BCE + soft Dice, plus (weights > 0) skeleton recall and the boundary term."""
    logits = logits.float()
    weight = torch.tensor(p.pos_weight, device=logits.device) if p.pos_weight != 1 else None
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(1, 2, 3))
    denom = prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    soft_dice = 1 - ((2 * inter + 1) / (denom + 1)).mean()
    loss = p.bce_weight * bce + p.dice_weight * soft_dice
    if p.skeleton_recall_weight:
        loss = loss + p.skeleton_recall_weight * edges.skeleton_recall(prob, target)
    if p.boundary_weight:
        loss = loss + p.boundary_weight * edges.boundary(prob, target)
    return loss


def lr_lambda(total_steps: int, warmup_steps: int, kind: str = "cosine") -> Callable[[int], float]:
    """Linear warm-up, then cosine or poly (power 0.9, as in nnU-Net) decay to zero."""

    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if kind == "poly":
            return (1 - progress) ** 0.9
        return 0.5 * (1 + math.cos(math.pi * progress))

    return f


@torch.no_grad()
def validation_dice(
    model: torch.nn.Module,
    batches: Batches,
    prec: Precision,
    channels_last: bool = False,
    keep: list | None = None,
) -> dict[str, float]:
    """Global Dice over the validation tiles (each rank scores its share, then all-reduce);
    ``keep``: a list that receives this rank's (predicted, labelled) bool masks per batch."""
    model = unwrap(model)  # no DDP collectives: ranks may hold unequal shares
    model.eval()
    tp = fp = fn = 0.0
    for x, y in batches:
        x, y = x.to(prec.device), y.to(prec.device)
        with prec.autocast():
            pred = model(layout(x, channels_last)).float() > 0
        t = y > 0.5
        if keep is not None:
            keep.append((pred[:, 0].cpu().numpy(), t[:, 0].cpu().numpy()))
        tp += float((pred & t).sum())
        fp += float((pred & ~t).sum())
        fn += float((~pred & t).sum())
    tp, fp, fn = distributed.all_sum([tp, fp, fn], prec.device)  # every rank sees the same Dice
    denom = 2 * tp + fp + fn
    return {"val_dice": 1.0 if denom == 0 else 2 * tp / denom}


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain U-Net inside torch.compile and DDP wrappers."""
    model = getattr(model, "_orig_mod", model)
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def param_groups(
    model: torch.nn.Module, lr: float, scales: dict[str, float] | None = None
) -> list[dict]:
    """Trainable parameters grouped by learning rate: ``scales`` (parameter-name prefix ->
    factor, from fine-tuning's strategy) scales the base ``lr``; frozen parameters are left
    out."""
    raw = unwrap(model)
    scales = scales or {}
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, q in raw.named_parameters():
        if q.requires_grad:
            s = next((v for k, v in scales.items() if name.startswith(k + ".")), 1.0)
            groups.setdefault(s, []).append(q)
    return [{"params": qs, "lr": lr * s} for s, qs in groups.items()]


def layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
