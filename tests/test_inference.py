import numpy as np
import pytest
import torch

from gbmseg.data.io import starts
from gbmseg.engine.amp import choose_precision
from gbmseg.inference import gaussian_window, iter_bands, predict_proba
from gbmseg.model.unet import build

PREC = choose_precision("cpu", "fp32")


def _reference(model, img, tile, overlap):
    """Plain whole-image accumulation: what the streaming bands must reproduce."""
    h, w = img.shape
    step = int(tile * (1 - overlap))
    acc, norm, win = np.zeros((h, w)), np.zeros((h, w)), gaussian_window(tile)
    for y in starts(h, tile, step):
        for x in starts(w, tile, step):
            t = torch.from_numpy(img[y : y + tile, x : x + tile]).float()[None, None] / 255
            with torch.no_grad():
                pr = torch.sigmoid(model(t))[0, 0].numpy()
            acc[y : y + tile, x : x + tile] += pr * win
            norm[y : y + tile, x : x + tile] += win
    return acc / norm


@pytest.mark.parametrize(
    ("shape", "tile", "overlap"), [((150, 97), 32, 0.25), ((64, 64), 64, 0.5), ((200, 40), 32, 0.0)]
)
def test_streamed_bands_equal_whole_image_blending(shape, tile, overlap):
    torch.manual_seed(0)
    model = build({"depth": 2, "base": 4}).eval()
    img = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    bands = list(iter_bands(model, img, PREC, tile, overlap, batch=3))
    assert sum(b.shape[0] for b in bands) == shape[0]
    assert len(bands) > 1 or shape[0] <= tile
    np.testing.assert_allclose(
        np.concatenate(bands), _reference(model, img, tile, overlap), atol=1e-5
    )


def test_images_smaller_than_a_tile_are_padded():
    model = build({"depth": 2, "base": 4}).eval()
    img = np.random.default_rng(1).integers(0, 255, (20, 30), dtype=np.uint8)
    assert predict_proba(model, img, PREC, tile=64).shape == (20, 30)


def test_flip_tta_is_flip_equivariant():
    torch.manual_seed(0)
    model = build({"depth": 2, "base": 4}).eval()
    img = np.random.default_rng(2).integers(0, 255, (64, 64), dtype=np.uint8)
    a = predict_proba(model, img, PREC, tile=64, tta=True)
    b = predict_proba(model, img[:, ::-1].copy(), PREC, tile=64, tta=True)[:, ::-1]
    np.testing.assert_allclose(a, b, atol=1e-5)
