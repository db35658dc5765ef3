import json
import shutil

import numpy as np
import pytest
from PIL import Image

from gbmseg.data.io import read_raw
from gbmseg.steps import validate
from tests.conftest import shared


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_clean_folder_passes_and_is_normalised(synth_data, tiny_params, tmp_path):
    out = tmp_path / "v"
    res = validate.run(tiny_params.validate_, synth_data, out, "black")
    s = tiny_params.synth
    assert res["images"] == s.target_images + s.target_test_images
    assert res["test_only_images"] == s.target_test_images
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(v["test_only"] for v in manifest.values()) == s.target_test_images
    assert len({v["pixels_sha256"] for v in manifest.values()}) == res["images"]
    masks = sorted((out / "masks").iterdir())
    assert len(masks) == res["images"]
    m = read_raw(masks[0])
    assert set(np.unique(m)) <= {0, 1} and 0 < m.mean() < 0.5  # 1 = structure, the minority
    for name in ("manifest.json", "table.csv", "gx_result.json", "_meta.json", "source_meta.json"):
        assert (out / name).is_file()


def test_bad_pairs_are_each_named_and_nothing_is_written(synth_data, tiny_params, tmp_path):
    bad = _copy(synth_data, tmp_path / "bad")
    shutil.rmtree(bad / "test")
    names = sorted(p.name for p in (bad / "images").iterdir())
    # JPEG mask (grey values), missing mask, truncated image, size mismatch, orphan mask
    Image.open(bad / "masks" / names[0]).save(bad / "masks" / "tmp.jpg", quality=70)
    (bad / "masks" / names[0]).unlink()
    (bad / "masks" / "tmp.jpg").rename(bad / "masks" / names[0].replace(".png", ".jpg"))
    (bad / "masks" / names[1]).unlink()
    data = (bad / "images" / names[2]).read_bytes()
    (bad / "images" / names[2]).write_bytes(data[: len(data) // 3])
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(bad / "masks" / names[3])
    shutil.copy(bad / "masks" / names[4], bad / "masks" / "orphan.png")
    out = tmp_path / "out"
    with pytest.raises(validate.ValidationFailed) as err:
        validate.run(tiny_params.validate_, bad, out, "black")
    text = str(err.value)
    assert (
        f"masks/{names[0].replace('.png', '.jpg')}: expect_column_values_to_be_in_set(mask_binary)"
        in text
    )
    assert "not binary" in text
    assert f"images/{names[1]}: expect_column_values_to_be_in_set(has_mask)" in text
    assert f"images/{names[2]}: expect_column_values_to_be_in_set(decodes)" in text
    assert f"masks/{names[3]}: expect_column_values_to_be_in_set(size_match)" in text
    assert "masks/orphan.png: expect_column_values_to_be_in_set(has_image)" in text
    assert len(err.value.problems) == 5
    assert not out.exists()


def test_inverted_polarity_is_flagged(synth_data, tiny_params, tmp_path):
    # read with the wrong polarity, the "structure" covers most of every image
    with pytest.raises(validate.ValidationFailed, match="looks inverted"):
        validate.run(tiny_params.validate_, synth_data, tmp_path / "o", "white")


def test_too_few_images(synth_data, tiny_params, tmp_path):
    p = tiny_params.validate_.model_copy(update={"min_images": 100})
    with pytest.raises(validate.ValidationFailed) as err:
        validate.run(p, synth_data, tmp_path / "o", "black")
    assert "8 labelled image(s), fewer than validate.min_images = 100" in str(err.value)
    assert "lower validate.min_images" in str(err.value)


def test_missing_and_empty_folders_say_what_to_do(tiny_params, tmp_path):
    with pytest.raises(validate.DataError, match="gbmseg synth"):
        validate.run(tiny_params.validate_, tmp_path / "nowhere", tmp_path / "o", "black")
    (tmp_path / "empty" / "images").mkdir(parents=True)
    with pytest.raises(validate.DataError, match="empty"):
        validate.run(tiny_params.validate_, tmp_path / "empty", tmp_path / "o", "black")


def test_failure_keeps_previous_output(synth_data, tiny_params, tmp_path):
    out = tmp_path / "v"
    validate.run(tiny_params.validate_, synth_data, out, "black")
    before = sorted(p.name for p in (out / "images").iterdir())
    bad = _copy(synth_data, tmp_path / "bad")
    next((bad / "masks").iterdir()).unlink()
    with pytest.raises(validate.ValidationFailed):
        validate.run(tiny_params.validate_, bad, out, "black")
    assert sorted(p.name for p in (out / "images").iterdir()) == before


def test_isbi2012_passes_with_black_positive(tiny_params, tmp_path):
    res = validate.run(tiny_params.validate_, shared("isbi2012"), tmp_path / "isbi", "black")
    assert res["images"] == 30
    assert 0.15 < res["positive_fraction_mean"] < 0.3


def test_labelme_folder_is_accepted_and_rasterised(tmp_path, tiny_params):
    import json

    root = tmp_path / "lm"
    (root / "images").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((40, 50), 180 + i, np.uint8)).save(root / "images" / f"im{i}.png")
        shapes = [
            {
                "label": "gbm",
                "shape_type": "polygon",
                "points": [[0, 10 + i], [49, 12], [49, 18], [0, 16 + i]],
            }
        ]
        doc = {"shapes": shapes, "imagePath": f"im{i}.png", "imageHeight": 40, "imageWidth": 50}
        (root / "images" / f"im{i}.json").write_text(json.dumps(doc))
    res = validate.run(tiny_params.validate_, root, tmp_path / "out", "black")
    assert res["images"] == 3
    m = read_raw(tmp_path / "out" / "masks" / "im0.png")
    assert set(np.unique(m)) == {0, 1} and 0.05 < m.mean() < 0.3
    assert (tmp_path / "out" / "data_docs" / "index.html").is_file()
    assert (tmp_path / "out" / "contact_sheet.png").is_file()


def test_labelme_with_unknown_label_is_named(tmp_path, tiny_params):
    import json

    root = tmp_path / "lm"
    (root / "images").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((40, 50), 180 + i, np.uint8)).save(root / "images" / f"im{i}.png")
        label = "cell" if i == 1 else "gbm"
        shapes = [{"label": label, "shape_type": "rectangle", "points": [[0, 10], [49, 16]]}]
        doc = {"shapes": shapes, "imagePath": f"im{i}.png", "imageHeight": 40, "imageWidth": 50}
        (root / "images" / f"im{i}.json").write_text(json.dumps(doc))
    with pytest.raises(validate.ValidationFailed) as err:
        validate.run(tiny_params.validate_, root, tmp_path / "out", "black")
    assert len(err.value.problems) == 1
    assert "im1.json: expect_column_values_to_be_in_set(mask_binary)" in err.value.problems[0]
    assert "unknown label 'cell'" in err.value.problems[0]


def test_isbi_copy_with_jpeg_mask_and_missing_mask_names_both(tiny_params, tmp_path):
    bad = _copy(shared("isbi2012"), tmp_path / "isbi")
    shutil.rmtree(bad / "test_images", ignore_errors=True)
    Image.open(bad / "masks" / "0.png").save(bad / "masks" / "0.jpg", quality=75)
    (bad / "masks" / "0.png").unlink()
    (bad / "masks" / "1.png").unlink()
    with pytest.raises(validate.ValidationFailed) as err:
        validate.run(tiny_params.validate_, bad, tmp_path / "out", "black")
    assert len(err.value.problems) == 2
    assert "masks/0.jpg: expect_column_values_to_be_in_set(mask_binary)" in str(err.value)
    assert "images/1.png: expect_column_values_to_be_in_set(has_mask)" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_name_in_both_the_set_and_its_test_folder_is_refused(synth_data, tiny_params, tmp_path):
    bad = _copy(synth_data, tmp_path / "bad")
    first = sorted((bad / "test" / "images").iterdir())[0].name
    for sub in ("images", "masks"):
        shutil.copy(bad / "test" / sub / first, bad / sub / first)
    with pytest.raises(validate.ValidationFailed, match="the same name in the set's folders"):
        validate.run(tiny_params.validate_, bad, tmp_path / "o", "black")


def test_a_folder_of_sets_each_with_its_polarity(synth_data, tiny_params, tmp_path):
    from gbmseg.steps import synth

    root = tmp_path / "many"
    shutil.copytree(synth_data, root / "dark")
    synth.write_set(tiny_params.synth, root / "light", "white", "source", 3)
    with pytest.raises(validate.DataError, match="no polarity for sub-folder 'light'"):
        validate.run(tiny_params.validate_, root, tmp_path / "o", {"dark": "black"})
    res = validate.run(
        tiny_params.validate_, root, tmp_path / "o", {"dark": "black", "light": "white"}
    )
    s = tiny_params.synth
    assert res["images"] == s.target_images + s.target_test_images + 3
    for name in ("dark__tar_000.png", "light__sou_000.png"):  # 1 = structure in both
        m = read_raw(tmp_path / "o" / "masks" / name)
        assert set(np.unique(m)) == {0, 1} and 0 < m.mean() < 0.5


def test_each_images_pixel_size_is_recorded_and_kept_in_the_normalised_pngs(
    synth_data, tiny_params, tmp_path
):
    from gbmseg.data.io import read

    out = tmp_path / "v"
    res = validate.run(tiny_params.validate_, synth_data, out, "black")
    assert res["calibrated_images"] == res["images"]
    manifest = json.loads((out / "manifest.json").read_text())
    synth_source = "gbmseg synth (synth.pixel_size_nm)"
    for entry in manifest.values():
        assert entry["pixel_size_nm"] == tiny_params.synth.pixel_size_nm
        assert entry["pixel_size_source"] == synth_source
    first = sorted((out / "images").iterdir())[0]
    assert read(first).pixel_size.describe() == f"20 nm/px ({synth_source})"
    table = (out / "table.csv").read_text()
    assert "pixel_size_nm" in table.splitlines()[0] and synth_source in table
    docs = "".join(q.read_text() for q in (out / "data_docs").rglob("*.html"))
    assert "pixel_size_nm" in docs  # the Data Docs show the pixel-size expectation


def test_a_set_without_calibration_takes_the_sets_pixel_size_or_fails_when_required(
    tiny_params, tmp_path
):
    src = tmp_path / "plain"
    for sub in ("images", "masks"):
        (src / sub).mkdir(parents=True)
    img = np.full((64, 64), 200, np.uint8)
    img[30:36] = 40
    Image.fromarray(img).save(src / "images" / "a.png")  # a PNG without pHYs
    Image.fromarray(np.where(img < 100, 0, 255).astype(np.uint8)).save(src / "masks" / "a.png")
    out = tmp_path / "v"
    res = validate.run(tiny_params.validate_, src, out, "black")
    assert res["calibrated_images"] == 0
    given = validate.run(tiny_params.validate_, src, out, "black", pixel_size_nm=4.0,
                         set_key="sets.isbi.pixel_size_nm")  # fmt: skip
    entry = json.loads((out / "manifest.json").read_text())["a"]
    assert (entry["pixel_size_nm"], entry["pixel_size_source"]) == (
        4.0,
        "sets.isbi.pixel_size_nm (given)",
    )
    assert given["calibrated_images"] == 1
    strict = tiny_params.validate_.model_copy(update={"require_pixel_size": True})
    with pytest.raises(validate.ValidationFailed, match=r"images/a\.png: .*pixel_size_nm.*"
                       r"no calibration in the file"):  # fmt: skip
        validate.run(strict, src, tmp_path / "v2", "black")
    assert not (tmp_path / "v2").exists()
