import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
from PIL import Image

from gbmseg.data.io import DataError
from gbmseg.engine import checkpoint
from gbmseg.engine.amp import choose_precision
from gbmseg.inference import predict_proba
from gbmseg.model.unet import build
from gbmseg.steps import predict
from tests.conftest import params


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    m = build({"depth": 2, "base": 4})
    (tmp_path / "m").mkdir()
    checkpoint.save(tmp_path / "m" / "model.pt", checkpoint.model_state(m))
    return tmp_path / "m"


def _p(**kw):
    base = params("predict.tile=64", "predict.batch=2", "predict.amp=fp32").predict
    return base.model_copy(update=kw)


def test_masks_match_probabilities_and_polarity(tmp_path, model_dir):
    img = np.random.default_rng(0).integers(0, 255, (100, 140), dtype=np.uint8)
    img[0, :2] = (0, 255)  # full range, so the 16-bit copy stretches back to the same bytes
    Image.fromarray(img).save(tmp_path / "a.png")
    tifffile.imwrite(tmp_path / "b.tif", (img.astype(np.uint16) * 257))  # 16-bit TIFF
    res = predict.run(
        _p(probabilities=True), str(model_dir), [tmp_path], tmp_path / "out", positive="black"
    )
    assert [r["image"].split("/")[-1] for r in res] == ["a.png", "b.tif"]
    model = checkpoint.load_model(model_dir)
    prob = predict_proba(model, img, choose_precision("cpu", "fp32"), tile=64, batch=2)
    mask = tifffile.imread(tmp_path / "out" / "a.mask.tif")
    assert mask.shape == img.shape and set(np.unique(mask)) <= {0, 255}
    np.testing.assert_array_equal(mask == 0, prob > 0.5)  # black = structure
    stored = tifffile.imread(tmp_path / "out" / "a.prob.tif")
    assert np.abs(stored.astype(int) - np.rint(prob * 255)).max() <= 1
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "b.mask.tif"), mask)
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_the_models_own_threshold_is_applied_unless_params_name_one(tmp_path, model_dir):
    img = np.random.default_rng(1).integers(0, 255, (96, 96), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    model = checkpoint.load_model(model_dir)
    prob = predict_proba(model, img, choose_precision("cpu", "fp32"), tile=64, batch=2)
    cut = float(np.quantile(prob, 0.7))  # a threshold that keeps 30% of the pixels
    model.set_threshold(cut)
    checkpoint.save(tmp_path / "t" / "model.pt", checkpoint.model_state(model))
    own = predict.run(_p(), str(tmp_path / "t"), [tmp_path / "a.png"], tmp_path / "own",
                      positive="white")  # fmt: skip
    assert own[0]["threshold"] == pytest.approx(cut)
    mask = tifffile.imread(tmp_path / "own" / "a.mask.tif") > 0
    np.testing.assert_array_equal(mask, prob > cut)
    fixed = predict.run(_p(threshold=0.5), str(tmp_path / "t"), [tmp_path / "a.png"],
                        tmp_path / "fixed", positive="white")  # fmt: skip
    assert fixed[0]["threshold"] == 0.5
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "fixed" / "a.mask.tif") > 0, prob > 0.5
    )


def test_white_polarity(tmp_path, model_dir):
    img = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    predict.run(_p(), str(model_dir), [tmp_path / "a.png"], tmp_path / "w", positive="white")
    predict.run(_p(), str(model_dir), [tmp_path / "a.png"], tmp_path / "k", positive="black")
    w, k = (tifffile.imread(tmp_path / d / "a.mask.tif") for d in ("w", "k"))
    np.testing.assert_array_equal(w, 255 - k)


def test_missing_input_is_named(tmp_path, model_dir):
    with pytest.raises(DataError, match=r"nope\.png: no such image or folder"):
        predict.run(_p(), str(model_dir), [tmp_path / "nope.png"], tmp_path / "o", positive="black")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "z.png")
    with pytest.raises(checkpoint.CheckpointError, match="no such checkpoint"):
        predict.run(_p(), str(tmp_path / "nomodel"), [tmp_path], tmp_path / "o", positive="black")


def test_uncompressed_tiff_is_streamed_and_gives_the_same_mask(tmp_path, model_dir):
    img = np.random.default_rng(3).integers(0, 255, (150, 90), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "plain.tif", img)
    Image.fromarray(img).save(tmp_path / "same.png")
    assert isinstance(predict.open_image(tmp_path / "plain.tif"), predict.TiffRows)
    assert np.array_equal(predict.open_image(tmp_path / "plain.tif")[10:20, 5:9], img[10:20, 5:9])
    predict.run(_p(), str(model_dir), [tmp_path], tmp_path / "o", positive="black")
    a, b = (tifffile.imread(tmp_path / "o" / f"{n}.mask.tif") for n in ("plain", "same"))
    np.testing.assert_array_equal(a, b)


def test_labelme_round_trip_gives_back_the_predicted_mask(tmp_path, model_dir):
    """predict --labelme -> (corrected in labelme) -> validate accepts it as a label; holes are
    polygons labelled `hole` and come back as holes."""
    import json
    import shutil

    from gbmseg.data.io import read_raw
    from gbmseg.steps import validate

    lab = tmp_path / "lab"
    (lab / "images").mkdir(parents=True)
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:96, 0:128]
    for i in range(3):  # rings: the untrained model's ragged masks have holes and islands
        r = np.hypot(yy - 48 + 4 * i, xx - 64 - 6 * i)
        img = np.where((r > 12 + 2 * i) & (r < 32), 30, 220) + rng.normal(0, 20, r.shape)
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(lab / "images" / f"im{i}.png")
    out = tmp_path / "pred"
    res = predict.run(
        _p(labelme=True), str(model_dir), [lab / "images"], out, positive="black", label="gbm"
    )
    docs = {r["labelme"]: json.loads(Path(r["labelme"]).read_text()) for r in res}
    assert all(
        d["imagePath"] == f"../lab/images/{p.split('/')[-1][:-5]}.png" for p, d in docs.items()
    )
    assert any(s["label"] == "hole" for d in docs.values() for s in d["shapes"])
    (lab / "labels").mkdir()
    for path in docs:
        shutil.copy(path, lab / "labels")
    p = params().validate_
    validate.run(p, lab, tmp_path / "v", "black")
    for i in range(3):
        predicted = tifffile.imread(out / f"im{i}.mask.tif") == 0  # black = structure
        back = read_raw(tmp_path / "v" / "masks" / f"im{i}.png").astype(bool)
        iou = (predicted & back).sum() / max(1, (predicted | back).sum())
        assert iou >= 0.99, (i, iou)


def test_two_runs_into_one_folder_never_mix_their_files(tmp_path, model_dir):
    import threading

    img = np.random.default_rng(1).integers(0, 255, (256, 256), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    errors = []

    def go():
        try:
            predict.run(
                _p(probabilities=True),
                str(model_dir),
                [tmp_path / "a.png"],
                tmp_path / "o",
                positive="black",
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    runs = [threading.Thread(target=go) for _ in range(2)]
    for r in runs:
        r.start()
    for r in runs:
        r.join()
    assert errors == []
    mask = tifffile.imread(tmp_path / "o" / "a.mask.tif")
    model = checkpoint.load_model(model_dir)
    prob = predict_proba(model, img, choose_precision("cpu", "fp32"), tile=64, batch=2)
    np.testing.assert_array_equal(mask == 0, prob > 0.5)  # whole and right, not interleaved
    assert not list((tmp_path / "o").glob(".*tmp"))


def test_the_pixel_size_travels_from_tiff_and_dm4_through_predict_to_measure(tmp_path):
    from gbmseg.cli.app import main
    from tests.dmfile import write_dm
    from tests.models import dark_model, membrane_image, save

    img, _ = membrane_image()
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "a.tif", img, imagej=True, resolution=(0.2, 0.2),
                     metadata={"unit": "nm"})  # fmt: skip
    write_dm(tmp_path / "in" / "b.dm4", img, (7.0, 7.0), "nm")
    model = save(dark_model(), tmp_path / "model")
    res = predict.run(
        _p(tile=256, labelme=True),
        str(model),
        [tmp_path / "in"],
        tmp_path / "pred",
        positive="black",
    )
    with tifffile.TiffFile(tmp_path / "pred" / "a.mask.tif") as tif:  # what Fiji/QuPath read
        assert tif.is_ome and 'PhysicalSizeX="0.005"' in tif.ome_metadata
    drafts = json.loads((tmp_path / "pred" / "b.json").read_text())  # labelme keeps the scale
    assert (drafts["pixel_size_nm"], drafts["pixel_size_source"]) == (
        7.0,
        "DM4 calibration of b.dm4",
    )
    assert [(r["pixel_size_nm"], r["pixel_size_source"]) for r in res] == [
        (5.0, "ImageJ resolution and unit of a.tif"),
        (7.0, "DM4 calibration of b.dm4"),
    ]

    def measured(out, *flags):
        assert main(["measure", str(tmp_path / "pred"), "--out", str(out), *flags]) == 0
        return pd.read_csv(out / "thickness.csv").set_index("image")

    own = measured(tmp_path / "own")  # no --pixel-size: each mask's own calibration
    assert own.loc["a.mask.tif", "pixel_size_source"] == "ImageJ resolution and unit of a.tif"
    assert own.loc["b.mask.tif", "pixel_size_source"] == "DM4 calibration of b.dm4"
    assert own.loc["a.mask.tif", "medial_median_nm"] == pytest.approx(14 * 5, rel=0.2)  # the ribbon
    figures = ["medial_median_nm", "intercept_harmonic_nm", "haas_mean_nm", "length_um"]
    for mask, nm in (("a.mask.tif", 5), ("b.mask.tif", 7)):
        given = measured(tmp_path / f"given{nm}", "--pixel-size", str(nm))
        assert given.loc[mask, figures].tolist() == own.loc[mask, figures].tolist()
        assert given.loc[mask, "pixel_size_source"] == "measure.pixel_size_nm (given)"
        at20 = measured(tmp_path / f"at20{nm}", "--pixel-size", "20")
        assert at20.loc[mask, "medial_median_nm"] == pytest.approx(
            own.loc[mask, "medial_median_nm"] * 20 / nm, rel=1e-3
        )


def test_an_uncalibrated_png_is_segmented_but_measure_refuses_it_naming_the_flag(tmp_path, caplog):
    from gbmseg.cli.app import main
    from tests.models import dark_model, membrane_image, save

    img, _ = membrane_image()
    Image.fromarray(img).save(tmp_path / "a.png")
    model = save(dark_model(20.0), tmp_path / "model")
    with caplog.at_level("WARNING"):
        predict.run(
            _p(tile=256), str(model), [tmp_path / "a.png"], tmp_path / "pred", positive="black"
        )
    assert "carries no pixel size; segmented as it comes" in caplog.text
    out = tmp_path / "m"
    assert main(["measure", str(tmp_path / "pred"), "--out", str(out)]) == 2
    assert "a.mask.tif: no pixel size in the file, and none given" in caplog.text
    assert "--pixel-size NM" in caplog.text
    assert not out.exists()


def test_an_image_at_another_scale_is_segmented_at_the_models_and_mapped_back(tmp_path):
    """A model trained at 20 nm/px sees a 10 nm/px image at half size; the mask comes back
    on the image's own grid with the ribbon where it was."""
    from tests.models import dark_model, membrane_image, save

    img, structure = membrane_image(size=256, width=16.0)
    tifffile.imwrite(tmp_path / "a.tif", img, resolution=(1e6, 1e6), resolutionunit=3)  # 10 nm
    seen = []
    save(dark_model(20.0), tmp_path / "model")
    loaded = checkpoint.load_model(tmp_path / "model")
    assert loaded.pixel_size_nm() == 20.0
    loaded.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape[-2:])))
    prec = choose_precision("cpu", "fp32")
    res = predict.predict_file(loaded, tmp_path / "a.tif", tmp_path / "o", _p(tile=128),
                               "black", prec)  # fmt: skip
    assert seen == [(128, 128)]  # the image at the model's scale is 128 px: one tile
    mask = tifffile.imread(res["mask"]) == 0
    assert mask.shape == img.shape
    dice = 2 * (mask & (structure > 0)).sum() / (mask.sum() + structure.sum())
    assert dice > 0.9
    seen.clear()
    predict.predict_file(loaded, tmp_path / "a.tif", tmp_path / "o2", _p(tile=128, resample=False),
                         "black", prec)  # fmt: skip
    assert len(seen) > 1  # predict.resample: false: the image's own 256 px, several tiles
