import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from gbmseg.data.io import DataError
from gbmseg.engine import checkpoint
from gbmseg.engine.amp import resolve
from gbmseg.inference import predict_proba
from gbmseg.model.unet import build
from gbmseg.steps import predict
from tests.conftest import params


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    m = build({"depth": 2, "base": 4})
    (tmp_path / "m").mkdir()
    checkpoint.save(
        tmp_path / "m" / "model.pt", {"model": m.state_dict(), "model_config": m.cfg.to_dict()}
    )
    return tmp_path / "m"


def _p(**kw):
    base = params("predict.tile=64", "predict.batch=2", "predict.amp=fp32").predict
    return base.model_copy(update=kw)


def test_masks_match_probabilities_and_polarity(tmp_path, model_dir):
    img = np.random.default_rng(0).integers(0, 255, (100, 140), dtype=np.uint8)
    img[0, :2] = (0, 255)  # full range, so the 16-bit copy stretches back to the same bytes
    Image.fromarray(img).save(tmp_path / "a.png")
    tifffile.imwrite(tmp_path / "b.tif", (img.astype(np.uint16) * 257))  # 16-bit TIFF
    res = predict.run(_p(probabilities=True), str(model_dir), [tmp_path], tmp_path / "out", "black")
    assert [r["image"].split("/")[-1] for r in res] == ["a.png", "b.tif"]
    model = checkpoint.load_model(model_dir)
    prob = predict_proba(model, img, resolve("cpu", "fp32"), tile=64, batch=2)
    mask = tifffile.imread(tmp_path / "out" / "a.mask.tif")
    assert mask.shape == img.shape and set(np.unique(mask)) <= {0, 255}
    np.testing.assert_array_equal(mask == 0, prob > 0.5)  # black = structure
    stored = tifffile.imread(tmp_path / "out" / "a.prob.tif")
    assert np.abs(stored.astype(int) - np.rint(prob * 255)).max() <= 1
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "b.mask.tif"), mask)
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_white_polarity(tmp_path, model_dir):
    img = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    predict.run(_p(), str(model_dir), [tmp_path / "a.png"], tmp_path / "w", "white")
    predict.run(_p(), str(model_dir), [tmp_path / "a.png"], tmp_path / "k", "black")
    w, k = (tifffile.imread(tmp_path / d / "a.mask.tif") for d in ("w", "k"))
    np.testing.assert_array_equal(w, 255 - k)


def test_missing_input_is_named(tmp_path, model_dir):
    with pytest.raises(DataError, match=r"nope\.png: no such image or folder"):
        predict.run(_p(), str(model_dir), [tmp_path / "nope.png"], tmp_path / "o", "black")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "z.png")
    with pytest.raises(checkpoint.CheckpointError, match="no such checkpoint"):
        predict.run(_p(), str(tmp_path / "nomodel"), [tmp_path], tmp_path / "o", "black")


def test_uncompressed_tiff_is_streamed_and_gives_the_same_mask(tmp_path, model_dir):
    img = np.random.default_rng(3).integers(0, 255, (150, 90), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "plain.tif", img)
    Image.fromarray(img).save(tmp_path / "same.png")
    assert isinstance(predict.open_image(tmp_path / "plain.tif"), predict.TiffRows)
    assert np.array_equal(predict.open_image(tmp_path / "plain.tif")[10:20, 5:9], img[10:20, 5:9])
    predict.run(_p(), str(model_dir), [tmp_path], tmp_path / "o", "black")
    a, b = (tifffile.imread(tmp_path / "o" / f"{n}.mask.tif") for n in ("plain", "same"))
    np.testing.assert_array_equal(a, b)
