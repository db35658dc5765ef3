import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from skimage.morphology import medial_axis

from gbmseg.data.io import read_image, read_mask
from gbmseg.steps import synth
from tests.conftest import ROOT, params


def _bytes(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_byte_identical_on_every_run(tmp_path, tiny_params):
    synth.run(tiny_params.synth, tmp_path / "a", "black")
    synth.run(tiny_params.synth, tmp_path / "b", "black")
    a, b = _bytes(tmp_path / "a"), _bytes(tmp_path / "b")
    assert len(a) == 2 * tiny_params.synth.n_images + 1
    assert a == b


def test_seed_changes_the_data(tmp_path, tiny_params):
    synth.run(tiny_params.synth, tmp_path / "a", "black")
    synth.run(tiny_params.synth.model_copy(update={"seed": 99}), tmp_path / "b", "black")
    assert _bytes(tmp_path / "a") != _bytes(tmp_path / "b")


def test_layout_polarity_and_known_thickness(synth_data, tiny_params):
    meta = json.loads((synth_data / "meta.json").read_text())
    assert meta["pixel_size_nm"] == tiny_params.synth.pixel_size_nm
    for name, info in meta["images"].items():
        img = read_image(synth_data / "images" / name)
        raw = read_image(synth_data / "masks" / name)
        assert img.shape == raw.shape == (64, 64)
        assert set(np.unique(raw)) <= {0, 255}
        ribbon = read_mask(synth_data / "masks" / name, "black")
        # black = structure: the ribbon is the minority of pixels and darker than the rest
        assert 0 < ribbon.mean() < 0.5
        assert img[ribbon == 1].mean() < img[ribbon == 0].mean() - 30
        # along the medial axis, twice the distance to the edge is the recorded thickness
        skel, dist = medial_axis(ribbon.astype(bool), return_distance=True)
        assert np.median(2 * dist[skel]) == pytest.approx(info["thickness_px"], abs=1.5)


def test_source_domain_looks_different(tmp_path, tiny_params):
    synth.run(tiny_params.synth, tmp_path / "t", "black")
    synth.run(tiny_params.synth.model_copy(update={"domain": "source"}), tmp_path / "s", "black")
    t = np.mean([read_image(p).mean() for p in (tmp_path / "t" / "images").iterdir()])
    s = np.mean([read_image(p).mean() for p in (tmp_path / "s" / "images").iterdir()])
    assert s - t > 20


def test_default_params_reproduce_the_hash_in_data_dvc(tmp_path):
    """`gbmseg synth` with the project's params.yaml gives exactly what data.dvc tracks."""
    p = params()
    shutil.copy(ROOT / "data.dvc", tmp_path / "data.dvc")
    subprocess.run(
        [sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True
    )
    synth.run(p.synth, tmp_path / p.data.raw, p.data.positive)
    # committing rewrites data.dvc only if the directory hash differs from the tracked one
    subprocess.run(
        [sys.executable, "-m", "dvc", "commit", "-f", "-q", "data.dvc"], cwd=tmp_path, check=True
    )
    assert (tmp_path / "data.dvc").read_text() == (ROOT / "data.dvc").read_text()
    out = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "--json", "data.dvc"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == {}, out.stdout
