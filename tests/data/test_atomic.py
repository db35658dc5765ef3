"""Atomic outputs: a folder appears whole or not at all, and a failure removes what it made."""

import json

import numpy as np
import pytest

from gbmseg.data.atomic import atomic_dir, sha256_file, write_array, write_json


def test_a_failed_folder_leaves_the_old_one_and_no_new_parents(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    with atomic_dir(out) as tmp:
        (tmp / "x.txt").write_text("first")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "x.txt").write_text("second")
        raise RuntimeError("killed half way")
    assert (out / "x.txt").read_text() == "first"
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]  # no temporary left
    fresh = tmp_path / "new" / "deep" / "out"
    with pytest.raises(RuntimeError), atomic_dir(fresh):
        raise RuntimeError("failed")
    assert not (tmp_path / "new").exists()


def test_files_are_written_whole_and_hashed(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_array(tmp_path / "a.npy", arr)
    write_json(tmp_path / "m.json", {"k": 1})
    assert np.array_equal(np.load(tmp_path / "a.npy"), arr)
    assert json.loads((tmp_path / "m.json").read_text()) == {"k": 1}
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["a.npy", "m.json"]
    (tmp_path / "b.bin").write_bytes(b"abc")
    assert sha256_file(tmp_path / "b.bin") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
