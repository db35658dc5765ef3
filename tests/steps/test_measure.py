"""measure: masks from files (TIFF, PNG, any polarity) to thickness tables in nm, the
per-biopsy report, pixel sizes from the files or the flag, and prediction vs label agreement.
The estimator itself: tests/test_thickness.py."""

import json

import pandas as pd
import pytest
import tifffile
from PIL import Image

from benchmarks.phantoms import ribbon
from gbmseg.data.io import DataError, binary_to_mask
from gbmseg.steps import measure, synth
from tests.conftest import params


def _write(folder, name, structure, positive="black"):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(binary_to_mask(structure, positive)).save(folder / name)


def test_biopsy_report_for_six_images_in_two_biopsies(tmp_path):
    widths = {
        "B1_01.png": 12,
        "B1_02.png": 14,
        "B1_03.png": 13,
        "B2_01.png": 25,
        "B2_02.png": 27,
        "B2_03.png": 26,
    }
    for name, w in widths.items():
        _write(tmp_path / "masks", name, ribbon(w, 300, 20.0, True))
    p = params("measure.pixel_size_nm=10", "measure.reference.harmonic={male: [150, 400]}").measure
    table = measure.run(p, [tmp_path / "masks"], tmp_path / "m", "black")
    assert list(table["biopsy"]) == ["B1"] * 3 + ["B2"] * 3
    for row in table.itertuples():
        assert row.intercept_harmonic_nm == pytest.approx(widths[row.image] * 10, rel=0.02)
    per = pd.read_csv(tmp_path / "m" / "biopsies.csv").set_index("biopsy")
    assert per.loc["B1", "images"] == 3 and per.loc["B2", "images"] == 3
    assert per.loc["B1", "harmonic_mean_nm"] == pytest.approx(130, rel=0.03)
    assert per.loc["B2", "median_nm"] == pytest.approx(260, rel=0.03)
    assert per.loc["B1", "flags"].startswith("thin by haas")  # 130 nm: under both sexes' ranges
    assert "thin by harmonic (< 150 nm)" in per.loc["B1", "flags"]
    assert pd.isna(per.loc["B2", "flags"])  # 260 nm: within every range set
    assert per.loc["B2", "length_um"] > 5 and per.loc["B2", "intercepts"] > 20
    assert per.loc["B1", "haas_mean_nm"] == pytest.approx(130, rel=0.03)
    assert per.loc["B1", "pixel_size_source"] == "measure.pixel_size_nm (given) (3 images)"
    page = (tmp_path / "m" / "biopsy_report.html").read_text()
    assert "B1" in page and "thin by haas" in page and "8/3" in page and "data:image/png" in page
    for name in ("thickness.csv", "samples.csv", "histogram.png", "biopsies.png"):
        assert (tmp_path / "m" / name).is_file()
    assert len(list((tmp_path / "m" / "overlays").glob("*.png"))) == 6


def test_a_biopsy_table_overrides_the_name_pattern_and_must_cover_every_image(tmp_path):
    for name in ("a.png", "b.png"):
        _write(tmp_path / "masks", name, ribbon(12, 200, 0.0))
    (tmp_path / "b.csv").write_text("image,biopsy\na.png,X\n")
    p = params(f"measure.biopsies={tmp_path / 'b.csv'}", "measure.pixel_size_nm=10").measure
    with pytest.raises(DataError, match=r"no biopsy for \['b.png'\]"):
        measure.run(p, [tmp_path / "masks"], tmp_path / "m", "black")
    (tmp_path / "b.csv").write_text("image,biopsy,sex\na.png,X,female\nb.png,X,female\n")
    table = measure.run(p, [tmp_path / "masks"], tmp_path / "m", "black")
    assert set(table["biopsy"]) == {"X"}
    per = pd.read_csv(tmp_path / "m" / "biopsies.csv")
    assert per.loc[0, "sex"] == "female"
    assert "thin by haas (< 215 nm)" in per.loc[0, "flags"]  # the women's range: 120 nm


def test_compare_prediction_with_label_and_bland_altman(tmp_path):
    for i, (pred_w, true_w) in enumerate(((12, 12), (16, 14), (20, 22))):
        _write(tmp_path / "pred", f"im{i}.mask.tif".replace(".tif", ".png"), ribbon(pred_w, 240))
        _write(tmp_path / "labels", f"im{i}.png", ribbon(true_w, 240))
    p = params("measure.pixel_size_nm=5").measure
    measure.run(p, [tmp_path / "pred"], tmp_path / "m", "black", compare=[tmp_path / "labels"])
    agree = pd.read_csv(tmp_path / "m" / "agreement.csv").set_index("image")
    rel = agree["medial_median_nm_rel_diff"]
    assert rel["im0.mask.png"] == pytest.approx(0, abs=0.01)
    assert rel["im1.mask.png"] == pytest.approx(16 / 14 - 1, abs=0.02)
    assert rel["im2.mask.png"] == pytest.approx(20 / 22 - 1, abs=0.02)
    assert (tmp_path / "m" / "bland_altman.png").is_file()
    (tmp_path / "labels" / "im2.png").unlink()
    with pytest.raises(DataError, match=r"no label mask named like \['im2.mask.png'\]"):
        measure.run(p, [tmp_path / "pred"], tmp_path / "m2", "black", compare=[tmp_path / "labels"])


def test_synthetic_masks_match_their_recorded_thickness(tmp_path):
    """`gbmseg synth` records every ribbon's thickness; measure recovers it."""
    p = params("synth.size=256")
    synth.write_set(p.synth, tmp_path / "raw", "black", "target", 8)
    truth = json.loads((tmp_path / "raw" / "meta.json").read_text())["images"]
    table = measure.run(p.measure, [tmp_path / "raw" / "masks"], tmp_path / "m", "black")
    assert set(table["pixel_size_nm"]) == {p.synth.pixel_size_nm}  # synth calibrates its files
    for row in table.itertuples():
        true = truth[row.image]["thickness_nm"]
        assert row.medial_median_nm == pytest.approx(true, rel=0.03), row.image
        assert row.intercept_harmonic_nm == pytest.approx(true, rel=0.03), row.image


def test_pixel_size_from_tiff_tags(tmp_path):
    mask = binary_to_mask(ribbon(10, 200), "black")
    tifffile.imwrite(
        tmp_path / "ij.tif",
        mask,
        imagej=True,
        resolution=(1 / 0.005, 1 / 0.005),
        metadata={"unit": "micron"},
    )  # 5 nm per pixel
    tifffile.imwrite(tmp_path / "cm.tif", mask, resolution=(1e7 / 8, 1e7 / 8), resolutionunit=3)
    table = measure.run(params().measure, [tmp_path], tmp_path / "m", "black")
    by = table.set_index("image")
    assert by.loc["ij.tif", "medial_median_nm"] == pytest.approx(50, rel=0.02)
    assert by.loc["cm.tif", "medial_median_nm"] == pytest.approx(80, rel=0.02)
    assert by.loc["ij.tif", "pixel_size_source"] == "ImageJ resolution and unit of ij.tif"
    per = pd.read_csv(tmp_path / "m" / "biopsies.csv")
    assert set(per["pixel_size_nm"].astype(str)) == {"5", "8"}


def test_a_mask_without_pixel_size_is_refused_naming_the_flag_and_nothing_is_written(tmp_path):
    _write(tmp_path / "masks", "a.png", ribbon(12, 200))
    with pytest.raises(DataError, match=r"a\.png: no pixel size .*`--pixel-size NM`"):
        measure.run(params().measure, [tmp_path / "masks"], tmp_path / "m", "black")
    assert not (tmp_path / "m").exists()


def test_specks_and_the_image_border_are_ignored(tmp_path):
    s = ribbon(8, 200, 0.0)
    s[150:153, 10:13] = 1  # a speck far from the membrane
    tifffile.imwrite(tmp_path / "a.tif", binary_to_mask(s, "white"))
    p = params("measure.pixel_size_nm=10").measure
    table = measure.run(p, [tmp_path / "a.tif"], tmp_path / "m", "white")
    assert table.loc[0, "medial_median_nm"] == pytest.approx(80, rel=0.02)
    assert table.loc[0, "medial_p90_nm"] < 90
