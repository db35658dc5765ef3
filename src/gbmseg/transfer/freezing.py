"""Which parts of a pretrained U-Net train when fine-tuning (the recipe's strategies).

head:    only the final 1x1 convolution trains ("freeze the intermediate layers, retrain the
         output layer").
decoder: the encoder and bottleneck stay fixed; the decoder and head train.
shallow: only the first ``shallow_levels`` encoder levels stay fixed (generic low-level
         features); everything deeper trains.
full:    everything trains (at the fine-tuning learning rate).
"""

from __future__ import annotations

from gbmseg.model.unet import UNet

STRATEGIES = ("head", "decoder", "shallow", "full")


def frozen_parts(model: UNet, strategy: str, shallow_levels: int = 1) -> list[str]:
    depth = len(model.encoders)
    encoders = [f"encoders.{i}" for i in range(depth)]
    if strategy == "head":
        return [*encoders, "bottleneck", *[f"decoders.{i}" for i in range(depth)]]
    if strategy == "decoder":
        return [*encoders, "bottleneck"]
    if strategy == "shallow":
        return encoders[: min(shallow_levels, depth)]
    if strategy == "full":
        return []
    raise ValueError(f"unknown fine-tuning strategy {strategy!r}; choose one of {STRATEGIES}")


def apply(model: UNet, strategy: str, shallow_levels: int = 1) -> dict[str, int]:
    """Freeze per ``strategy``; return trainable and frozen parameter counts."""
    model.freeze(frozen_parts(model, strategy, shallow_levels))
    trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    total = sum(q.numel() for q in model.parameters())
    return {"trainable_parameters": trainable, "frozen_parameters": total - trainable}
