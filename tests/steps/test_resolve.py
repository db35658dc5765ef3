"""resolve: the starting model as a local folder with what it is (sha256, images seen);
a folder without a model is refused in one line and nothing is written."""

import json
from pathlib import Path

import pytest

from gbmseg.config import ResolveParams
from gbmseg.data.atomic import sha256_file
from gbmseg.data.io import DataError
from gbmseg.engine.lifecycle import write_model_folder
from gbmseg.steps import resolve
from tests.models import dark_model, save


def test_a_model_folder_is_copied_with_its_identity(tmp_path):
    src = tmp_path / "models" / "train" / "source"
    write_model_folder(src, dark_model(20.0), "train", {}, ["a" * 64, "b" * 64])
    p = ResolveParams(out=str(tmp_path / "pretrained"))
    info = resolve.run(p, str(src / "model.pt"))  # the file names its folder too
    assert info["sha256"] == sha256_file(src / "model.pt")
    assert info["images_seen"] == 2 and info["reference"].endswith("model.pt")
    out = tmp_path / "pretrained"
    assert json.loads((out / "pretrained.json").read_text()) == info
    names = sorted(q.name for q in out.iterdir())
    assert names == ["model.pt", "pretrained.json", "trained_on.json"]  # weights + what they saw


def test_a_folder_without_a_model_is_named_and_nothing_is_written(tmp_path):
    (tmp_path / "empty").mkdir()
    p = ResolveParams(out=str(tmp_path / "pretrained"))
    with pytest.raises(DataError, match=r"empty: no model\.pt; train it first"):
        resolve.run(p, str(tmp_path / "empty"))
    assert not (tmp_path / "pretrained").exists()


def test_a_bare_model_file_gets_an_empty_record_of_what_it_saw(tmp_path):
    save(dark_model(), tmp_path / "bare")
    info = resolve.run(ResolveParams(out=str(tmp_path / "out")), str(tmp_path / "bare"))
    assert info["images_seen"] == 0


def test_an_unchanged_folder_is_known_without_torch(tmp_path):
    """The no-op check of a `dvc repro` that changed nothing: no torch, no copy."""
    import subprocess
    import sys

    src = tmp_path / "models" / "train" / "source"
    write_model_folder(src, dark_model(20.0), "train", {}, ["a" * 64])
    p = ResolveParams(out=str(tmp_path / "pretrained"))
    assert resolve.unchanged(p, str(src)) is None  # nothing resolved yet
    info = resolve.run(p, str(src))
    assert resolve.unchanged(p, str(src)) == info
    code = (
        "import sys\n"
        "from gbmseg.config import ResolveParams\n"
        "from gbmseg.steps import resolve\n"
        f"found = resolve.unchanged(ResolveParams(out={str(p.out)!r}), {str(src)!r})\n"
        "assert found is not None\n"
        "assert 'torch' not in sys.modules and 'mlflow' not in sys.modules, 'imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-1500:]
    kept = Path(p.out) / "model.pt"
    kept.write_bytes(kept.read_bytes() + b"\0")  # the copy kept there altered by hand
    assert resolve.unchanged(p, str(src)) is None
    info = resolve.run(p, str(src))
    write_model_folder(src, dark_model(10.0), "train", {}, ["a" * 64])  # retrained
    assert resolve.unchanged(p, str(src)) is None
    assert resolve.unchanged(p, str(src / "model.pt")) is None  # another reference
