"""Split files: rows never change once written, test/ images stay test, a new set gets a
test and a train image."""

import pytest

from gbmseg.data import splits
from gbmseg.data.io import DataError


def test_known_rows_never_change_and_new_images_get_a_row(tmp_path):
    first = splits.assign({}, [f"im{i}.png" for i in range(8)], set(), 0.15, 0.2)
    assert set(first.values()) >= {"train", "test"}
    pinned = {**first, "im0.png": "val"}
    later = splits.assign(pinned, [f"im{i}.png" for i in range(12)], set(), 0.15, 0.2)
    assert {n: later[n] for n in pinned} == pinned
    assert len(later) == 12
    splits.write(tmp_path / "s.csv", later)
    assert splits.read(tmp_path / "s.csv") == later


def test_images_of_the_test_folder_are_only_ever_tested_on():
    table = splits.assign({}, ["a.png", "b.png", "test-c.png"], {"test-c.png"}, 0.0, 0.5)
    assert table["test-c.png"] == "test"
    assert "test" not in (table["a.png"], table["b.png"])  # the test/ folder is the test set
    with pytest.raises(DataError, match=r"test-c\.png: comes from the set's test/ folder"):
        splits.assign({"test-c.png": "train"}, ["test-c.png"], {"test-c.png"}, 0.0, 0.5)


def test_two_images_give_one_test_and_one_train_whatever_their_hashes():
    for pair in (["a.png", "b.png"], ["x1.png", "x2.png"], ["q.png", "r.png"]):
        table = splits.assign({}, pair, set(), 0.9, 0.9)
        assert sorted(table.values()) == ["test", "train"], (pair, table)


def test_splits_of_ignores_rows_of_images_no_longer_present():
    table = {"a.png": "train", "b.png": "test", "gone.png": "val"}
    assert splits.splits_of(table, ["a.png", "b.png"]) == {
        "train": ["a.png"],
        "val": [],
        "test": ["b.png"],
    }
