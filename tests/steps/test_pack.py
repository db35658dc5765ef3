import json

import numpy as np
import pytest

from gbmseg.data import splits
from gbmseg.data.atomic import sha256_file
from gbmseg.data.io import DataError
from gbmseg.steps import pack
from tests.conftest import prepared, tiny


@pytest.fixture
def packed(tmp_path):
    p = prepared(tiny(tmp_path))
    return p, p.paths("target")


def test_new_images_get_a_split_from_their_name_and_keep_it():
    names = [f"img_{i:02d}.png" for i in range(20)]
    a = splits.assign({}, names, set(), 0.15, 0.2)
    assert a == splits.assign({}, list(reversed(names)), set(), 0.15, 0.2)
    assert sorted(a) == names and set(a.values()) == {"train", "val", "test"}
    more = [*names, "img_20.png", "img_21.png", "img_22.png"]
    b = splits.assign(a, more, set(), 0.15, 0.2)
    assert {n: b[n] for n in names} == a  # earlier images keep their split


def test_small_sets_still_get_a_test_image_and_a_training_image():
    two = splits.assign({}, ["a.png", "b.png"], set(), 0.15, 0.2)
    assert sorted(two.values()) == ["test", "train"]
    one = splits.assign({}, ["a.png"], set(), 0.15, 0.2)
    assert one == {"a.png": "train"}
    with_test_folder = splits.assign({}, ["a.png", "b.png", "t.png"], {"t.png"}, 0.15, 0.2)
    assert with_test_folder["t.png"] == "test"
    assert with_test_folder["a.png"] != "test" and with_test_folder["b.png"] != "test"


def test_a_test_folder_image_cannot_be_pinned_to_training():
    with pytest.raises(DataError, match="only ever tested on"):
        splits.assign({"t.png": "train"}, ["t.png"], {"t.png"}, 0.15, 0.2)


def test_a_bad_split_file_is_named_with_its_line(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("image,split\na.png,train\nb.png,holdout\n")
    with pytest.raises(DataError, match=r"s.csv:3: split 'holdout' for 'b.png'"):
        splits.read(path)
    path.write_text("image,split\na.png,train\na.png,test\n")
    with pytest.raises(DataError, match="listed twice"):
        splits.read(path)


def test_adding_three_images_keeps_every_earlier_test_image_in_test(tmp_path):
    from gbmseg import stages
    from gbmseg.steps import synth

    p = tiny(tmp_path, "synth.target_test_images=0", "synth.target_images=8")
    prepared(p)
    first = splits.read(p.paths("target").split_file)
    tests_before = {n for n, s in first.items() if s == "test"}
    assert tests_before
    raw = tmp_path / "data" / "raw" / "target"
    extra = tmp_path / "extra"  # three more labelled images, named after the first eight
    synth.write_set(p.synth.model_copy(update={"seed": 99}), extra, "black", "target", 11)
    for sub in ("images", "masks"):
        for q in sorted((extra / sub).iterdir())[8:]:
            q.replace(raw / sub / q.name)
    for stage in (stages.validate, stages.augment, stages.pack):
        stage(p, "target")
    second = splits.read(p.paths("target").split_file)
    assert len(second) == 11
    assert {n: second[n] for n in first} == first
    manifest = json.loads((p.paths("target").packed / "manifest.json").read_text())
    assert tests_before <= set(manifest["splits"]["test"]["sources"])


def test_an_edited_row_pins_an_image(packed):
    p, sp = packed
    table = splits.read(sp.split_file)
    name = next(n for n, s in table.items() if s == "train")
    splits.write(sp.split_file, {**table, name: "val"})
    pack.run(p.pack, sp.validated, sp.augmented, sp.packed, split_file=sp.split_file)
    manifest = json.loads((sp.packed / "manifest.json").read_text())
    assert name in manifest["splits"]["val"]["sources"]


def test_tiles_cover_the_image_and_pad_small_ones():
    arr = np.arange(100 * 130).reshape(100, 130) % 251
    t = pack.tiles(arr.astype(np.uint8), 64, 64)
    assert len(t) == 2 * 3 and all(x.shape == (64, 64) for x in t)
    assert np.array_equal(t[-1], arr[36:100, 66:130])
    assert pack.tiles(np.zeros((40, 50), np.uint8), 64, 64)[0].shape == (64, 64)


def test_arrays_manifest_and_no_leak(packed):
    _, sp = packed
    m = json.loads((sp.packed / "manifest.json").read_text())
    s = m["splits"]
    sources = [set(s[k]["sources"]) for k in ("train", "val", "test")]
    assert not (sources[0] & sources[2]) and not (sources[1] & sources[2])
    assert {n for n in sources[2]} >= {q.name for q in (sp.validated / "images").iterdir()} - (
        sources[0] | sources[1]
    )
    # the training split holds the originals plus their augmented copies only
    assert s["train"]["tiles"] == len(s["train"]["sources"]) * 2
    assert len(s["train"]["pixels_sha256"]) == len(s["train"]["sources"])
    for split in ("train", "val", "test"):
        x = np.load(sp.packed / f"{split}_images.npy", mmap_mode="r")
        y = np.load(sp.packed / f"{split}_masks.npy", mmap_mode="r")
        assert x.dtype == y.dtype == np.uint8 and x.shape == y.shape
        assert x.shape[1:] == (64, 64) and set(np.unique(y)) <= {0, 1}
        assert s[split]["sha256"]["images"] == sha256_file(sp.packed / f"{split}_images.npy")
        assert s[split]["sha256"]["masks"] == sha256_file(sp.packed / f"{split}_masks.npy")


def test_the_training_split_is_also_kept_whole_for_random_crops(packed):
    """Every training image and augmented copy, whole: its tiles are windows of it."""
    from gbmseg.engine.crops import load

    _, sp = packed
    w = load(sp.packed)
    x = np.load(sp.packed / "train_images.npy")
    assert len(w) == len(x)  # tiny images: one 64-px tile each
    for i in range(len(w)):
        img, msk = w.pair(i)
        assert img.shape == (64, 64) and np.array_equal(img, x[i])
        assert set(np.unique(msk)) <= {0, 1}


def test_pack_scale_resamples_every_image_and_records_the_scale(tmp_path):
    """synth writes 20 nm/px; packed at 40 nm/px the 64 px images become 32 px (one padded
    tile each) and the membrane keeps its share of the image."""
    at20 = prepared(tiny(tmp_path / "a"))
    m20 = json.loads((at20.paths("target").packed / "manifest.json").read_text())
    assert m20["pixel_size_nm"] == 20.0 and set(m20["splits"]["test"]["pixel_size_nm"]) == {20.0}
    at40 = prepared(tiny(tmp_path / "b", "pack.scale_nm=40", "pack.tile=32", "pack.stride=32"))
    m40 = json.loads((at40.paths("target").packed / "manifest.json").read_text())
    assert m40["pixel_size_nm"] == 40.0
    assert m40["splits"]["test"]["source_pixels"] == m20["splits"]["test"]["source_pixels"] // 4
    y20 = np.load(at20.paths("target").packed / "test_masks.npy")
    y40 = np.load(at40.paths("target").packed / "test_masks.npy")
    assert y40.shape[1:] == (32, 32)
    assert y40.mean() == pytest.approx(y20.mean(), rel=0.1)  # area kept: thickness kept


def test_pack_scale_needs_a_pixel_size_for_every_image(tmp_path):
    p = tiny(tmp_path, "pack.scale_nm=10")
    from gbmseg import stages

    stages.synth(p)
    stages.validate(p, "target")
    manifest = p.paths("target").validated / "manifest.json"
    entries = json.loads(manifest.read_text())
    first = sorted(entries)[0]
    entries[first]["pixel_size_nm"] = None  # as an uncalibrated image would be
    manifest.write_text(json.dumps(entries))
    with pytest.raises(DataError, match=rf"{first}\.png: no pixel size, so it cannot be brought "
                       r"to pack\.scale_nm = 10"):  # fmt: skip
        pack.run(
            p.pack,
            p.paths("target").validated,
            None,
            tmp_path / "out",
            split_file=tmp_path / "s.csv",
        )
    assert not (tmp_path / "out").exists()
