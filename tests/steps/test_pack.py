import json

import numpy as np
import pytest

from gbmseg.data.atomic import sha256_file
from gbmseg.data.io import DataError
from gbmseg.steps import augment, pack, validate
from tests.conftest import params


@pytest.fixture
def packed(synth_data, tiny_params, tmp_path):
    validate.run(tiny_params.validate_, synth_data, tmp_path / "v", "black")
    augment.run(tiny_params.augment, tmp_path / "v", tmp_path / "a")
    pack.run(tiny_params.pack, tmp_path / "v", tmp_path / "a", tmp_path / "p")
    return tmp_path / "p"


def test_split_is_by_source_image_and_deterministic():
    p = params().pack
    names = [f"img_{i:02d}.png" for i in range(20)]
    a, b = pack.split_sources(names, p), pack.split_sources(list(reversed(names)), p)
    assert a == b
    assert sorted(a["train"] + a["val"] + a["test"]) == names
    assert not set(a["train"]) & set(a["test"]) and not set(a["val"]) & set(a["test"])
    assert len(a["test"]) == 4 and len(a["val"]) == 3


def test_too_few_images_for_the_split():
    with pytest.raises(DataError, match="cannot fill"):
        pack.split_sources(["a.png", "b.png"], params().pack)


def test_tiles_cover_the_image_and_pad_small_ones():
    arr = np.arange(100 * 130).reshape(100, 130) % 251
    t = pack.tiles(arr.astype(np.uint8), 64, 64)
    assert len(t) == 2 * 3 and all(x.shape == (64, 64) for x in t)
    assert np.array_equal(t[-1], arr[36:100, 66:130])
    assert pack.tiles(np.zeros((40, 50), np.uint8), 64, 64)[0].shape == (64, 64)


def test_arrays_manifest_and_no_leak(packed):
    m = json.loads((packed / "manifest.json").read_text())
    s = m["splits"]
    sources = [set(s[k]["sources"]) for k in ("train", "val", "test")]
    assert not (sources[0] & sources[2]) and not (sources[1] & sources[2])
    # the training split holds the originals plus their augmented copies only
    assert s["train"]["tiles"] == len(s["train"]["sources"]) * 2
    for split in ("train", "val", "test"):
        x = np.load(packed / f"{split}_images.npy", mmap_mode="r")
        y = np.load(packed / f"{split}_masks.npy", mmap_mode="r")
        assert x.dtype == y.dtype == np.uint8 and x.shape == y.shape
        assert x.shape[1:] == (64, 64) and set(np.unique(y)) <= {0, 1}
        assert s[split]["sha256"]["images"] == sha256_file(packed / f"{split}_images.npy")
        assert s[split]["sha256"]["masks"] == sha256_file(packed / f"{split}_masks.npy")
