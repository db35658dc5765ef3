"""Which parts of a pretrained U-Net train when fine-tuning (the recipe's strategies).

head:    only the final 1x1 convolution trains.
decoder: the encoder and bottleneck stay fixed; the decoder and head train (the recipe's
         "freeze the intermediate layers, retrain the output part").
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


def lr_scales(model: UNet, encoder_lr_scale: float = 1.0) -> dict[str, float]:
    """The learning-rate factors fine-tuning hands the trainer: the encoder levels and the
    bottleneck (those still trainable) learn at ``encoder_lr_scale`` x the rate."""
    enc = {f"encoders.{i}": encoder_lr_scale for i in range(len(model.encoders))}
    return enc | {"bottleneck": encoder_lr_scale}


def apply(model: UNet, strategy: str, shallow_levels: int = 1) -> dict[str, int]:
    """Freeze per ``strategy``; return trainable and frozen parameter counts."""
    model.freeze(frozen_parts(model, strategy, shallow_levels))
    trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    total = sum(q.numel() for q in model.parameters())
    return {"trainable_parameters": trainable, "frozen_parameters": total - trainable}
