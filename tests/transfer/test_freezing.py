"""Fine-tuning strategies: which parts freeze (BatchNorm statistics too) and the rates the
trainer gets for the rest."""

import pytest
import torch

from gbmseg.model.unet import build
from gbmseg.transfer import freezing


def test_each_strategy_freezes_its_parts_and_counts_them():
    model = build({"depth": 3, "base": 4})
    assert freezing.frozen_parts(model, "full") == []
    assert freezing.frozen_parts(model, "shallow", 2) == ["encoders.0", "encoders.1"]
    assert freezing.frozen_parts(model, "decoder")[-1] == "bottleneck"
    counts = freezing.apply(model, "decoder")
    assert counts["frozen_parameters"] > 0 and counts["trainable_parameters"] > 0
    assert not any(q.requires_grad for q in model.bottleneck.parameters())
    assert all(q.requires_grad for q in model.head.parameters())
    with pytest.raises(ValueError, match="unknown fine-tuning strategy 'most'"):
        freezing.frozen_parts(model, "most")


def test_frozen_batchnorm_statistics_stay_fixed_in_train_mode():
    model = build({"depth": 2, "base": 4})
    freezing.apply(model, "shallow", 1)
    bn = next(m for m in model.encoders[0].modules() if isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    model.train()
    model(torch.rand(2, 1, 32, 32) * 5)
    assert torch.equal(bn.running_mean, before)
    other = next(m for m in model.encoders[1].modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert other.training


def test_lr_scales_name_the_encoder_levels_and_the_bottleneck():
    model = build({"depth": 2, "base": 4})
    assert freezing.lr_scales(model, 0.1) == {
        "encoders.0": 0.1,
        "encoders.1": 0.1,
        "bottleneck": 0.1,
    }
