import pytest
import torch

from gbmseg.model.unet import build, count_parameters


def test_classic_configuration_has_31_0_million_parameters():
    # the original U-Net / Keras tutorial: depth 4, base 64, biased convs, transposed up-convs
    assert count_parameters(build({"depth": 4, "base": 64, "norm": "none"})) == 31_030_593


@pytest.mark.parametrize("up", ["transpose", "bilinear"])
@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_output_has_input_size(up, norm):
    m = build({"depth": 3, "base": 4, "norm": norm, "up": up, "dropout": 0.1}).eval()
    x = torch.rand(2, 1, 64, 64)
    assert m(x).shape == (2, 1, 64, 64)
    assert m(torch.rand(1, 1, 48, 80)).shape == (1, 1, 48, 80)


def test_named_parts_for_transfer_learning():
    m = build({"depth": 2, "base": 4})
    assert len(m.encoders) == 2 and len(m.decoders) == 2
    assert m.head.out_channels == 1 and m.multiple == 4


def test_input_is_standardised_inside_the_network():
    m = build({"depth": 2, "base": 4}).eval()
    x = torch.rand(1, 1, 32, 32)
    assert torch.allclose(m(x), m(x * 0.5 + 0.2), atol=1e-4)
