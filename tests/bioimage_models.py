"""A U-Net with random weights for the export tests."""

import torch

from gbmseg.model.unet import build


def random_model(seed: int = 0):
    """A U-Net with random weights and BatchNorm statistics (so eval mode matters)."""
    torch.manual_seed(seed)
    m = build({"depth": 2, "base": 8})
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    return m.eval()
