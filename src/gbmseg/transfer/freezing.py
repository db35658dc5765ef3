"""Which parts of a pretrained U-Net train when fine-tuning (the recipe's strategies).

head:    only the final 1x1 convolution trains ("freeze the intermediate layers, retrain the
         output layer").
decoder: the encoder and bottleneck stay fixed; the decoder and head train.
shallow: only the first ``shallow_levels`` encoder levels stay fixed (generic low-level
         features); everything deeper trains.
full:    everything trains; the encoder at ``encoder_lr_scale`` x the learning rate.
auto:    one of the above, chosen by gbmseg.transfer.auto from size and similarity.
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


def apply(
    model: UNet, strategy: str, shallow_levels: int = 1, encoder_lr_scale: float = 1.0
) -> dict[str, int]:
    """Freeze per ``strategy``, slow down the trainable encoder levels by
    ``encoder_lr_scale``; return trainable and frozen parameter counts."""
    model.freeze(frozen_parts(model, strategy, shallow_levels))
    model.lr_scales = {f"encoders.{i}": encoder_lr_scale for i in range(len(model.encoders))} | {
        "bottleneck": encoder_lr_scale
    }
    trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    total = sum(q.numel() for q in model.parameters())
    return {"trainable_parameters": trainable, "frozen_parameters": total - trainable}
