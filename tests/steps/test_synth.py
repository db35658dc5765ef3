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
    s = tiny_params.synth
    synth.run(s, tmp_path / "a" / "source", tmp_path / "a" / "target")
    synth.run(s, tmp_path / "b" / "source", tmp_path / "b" / "target")
    a, b = _bytes(tmp_path / "a"), _bytes(tmp_path / "b")
    assert len(a) == 2 * (s.source_images + s.target_images + s.target_test_images) + 2
    assert sum(k.startswith("target/test/images/") for k in a) == s.target_test_images
    assert a == b


def test_seed_changes_the_data(tmp_path, tiny_params):
    synth.run(tiny_params.synth, None, tmp_path / "a")
    synth.run(tiny_params.synth.model_copy(update={"seed": 99}), None, tmp_path / "b")
    assert _bytes(tmp_path / "a") != _bytes(tmp_path / "b")


def test_layout_polarity_and_known_thickness(synth_data, tiny_params):
    meta = json.loads((synth_data / "meta.json").read_text())
    assert meta["pixel_size_nm"] == tiny_params.synth.pixel_size_nm
    for name, info in meta["images"].items():
        folder = synth_data / "test" if info["test"] else synth_data
        img = read_image(folder / "images" / name)
        raw = read_image(folder / "masks" / name)
        assert img.shape == raw.shape == (64, 64)
        assert set(np.unique(raw)) <= {0, 255}
        ribbon = read_mask(folder / "masks" / name, "black")
        # black = structure: the ribbon is the minority of pixels and darker than the rest
        assert 0 < ribbon.mean() < 0.5
        assert img[ribbon == 1].mean() < img[ribbon == 0].mean() - 30
        # along the medial axis, twice the distance to the edge is the recorded thickness
        skel, dist = medial_axis(ribbon.astype(bool), return_distance=True)
        assert np.median(2 * dist[skel]) == pytest.approx(info["thickness_px"], abs=1.5)


def test_source_domain_looks_different(tmp_path, tiny_params):
    synth.run(tiny_params.synth, tmp_path / "s", tmp_path / "t")
    t = [read_image(p) for p in (tmp_path / "t" / "images").iterdir()]
    s = [read_image(p) for p in (tmp_path / "s" / "images").iterdir()]
    assert np.mean([x.mean() for x in s]) - np.mean([x.mean() for x in t]) > 20  # brighter
    grain = [np.mean([np.abs(np.diff(x.astype(float), axis=1)).mean() for x in d]) for d in (s, t)]
    assert grain[1] > 1.3 * grain[0]  # the target is grainier


def test_default_params_reproduce_the_hash_in_data_dvc(tmp_path):
    """`gbmseg synth` with the project's params.yaml gives exactly what data.dvc tracks."""
    p = params()
    shutil.copy(ROOT / "data.dvc", tmp_path / "data.dvc")
    subprocess.run(
        [sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True
    )
    synth.run(p.synth, tmp_path / p.sets["source"].raw, tmp_path / p.target.raw)
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


def test_another_pixel_size_images_the_same_kind_of_specimen(tiny_params):
    """At 10 nm/px the same seed draws the same membrane, twice as many pixels across; taken
    to 20 nm/px it matches the 20 nm/px rendering (its grain and blur are lengths in nm; the
    noise, the detector's, is per pixel, so it is left out here)."""
    from gbmseg.data import resample

    def draw(nm, size):
        p = tiny_params.synth.model_copy(update={"pixel_size_nm": nm, "size": size, "noise_std": 0})
        return synth.render(np.random.default_rng(5), p, "target")

    img20, mask20, t20 = draw(20.0, 256)
    img10, mask10, t10 = draw(10.0, 512)
    assert t10 == pytest.approx(2 * t20)  # the same membrane, in pixels of half the size
    down = resample.mask(mask10, (256, 256))
    assert 2 * (down & mask20).sum() / (down.sum() + mask20.sum()) > 0.97
    from scipy import ndimage

    def fine(img):  # grain and edges: what is left after smoothing away the large shapes
        return float((img - ndimage.gaussian_filter(img, 3.0)).std())

    small = resample.image(img10, (256, 256)).astype(float)
    assert small.std() == pytest.approx(img20.std(), rel=0.05)
    assert fine(small) == pytest.approx(fine(img20.astype(float)), rel=0.15)
