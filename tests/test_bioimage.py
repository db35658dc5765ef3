"""The pieces of the BioImage Model Zoo package: ONNX that computes what PyTorch does, an
architecture file that stands alone, a zip that is the folder."""

import ast
import zipfile

import numpy as np
import torch

from gbmseg import bioimage
from gbmseg.data.stats import BINS
from tests.bioimage_models import random_model


def test_onnx_runtime_equals_pytorch_within_1e4_on_other_sizes_and_batches(tmp_path):
    m = random_model()
    x = np.random.default_rng(0).random((1, 1, 64, 64), dtype=np.float32)
    path = bioimage.write_onnx(bioimage.Probabilities(m), x, tmp_path / "m.onnx")
    for shape in [(1, 1, 64, 64), (2, 1, 48, 80), (1, 1, 128, 32)]:
        y = np.random.default_rng(1).random(shape, dtype=np.float32)
        want = bioimage.probabilities(m, y)
        got = bioimage.onnx_probabilities(path, y, sigmoid=False)
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-4
    logits = bioimage.write_onnx(m, x, tmp_path / "logits.onnx")
    got = bioimage.onnx_probabilities(logits, x, sigmoid=True)
    assert np.abs(got - bioimage.probabilities(m, x)).max() <= 1e-4


def test_torchscript_reproduces_the_logits(tmp_path):
    m = random_model()
    x = np.random.default_rng(0).random((1, 1, 64, 64), dtype=np.float32)
    traced = torch.jit.load(str(bioimage.write_torchscript(m, x, tmp_path / "m.pt")))
    y = torch.from_numpy(np.random.default_rng(2).random((2, 1, 32, 96), dtype=np.float32))
    with torch.no_grad():
        assert torch.allclose(traced(y), m(y), atol=1e-5)


def test_the_architecture_file_imports_nothing_from_gbmseg():
    tree = ast.parse(bioimage.ARCHITECTURE.read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert imported and not [m for m in imported if m.split(".")[0] == "gbmseg"], imported
    namespace: dict = {}
    exec(compile(tree, "unet.py", "exec"), namespace)  # runs without gbmseg on the path
    assert namespace["BINS"] == BINS  # the histogram buffer keeps the shape gbmseg saves
    net = namespace["build"](cfg={"depth": 2, "base": 8})
    assert set(net.state_dict()) == set(random_model().state_dict())


def test_the_zip_is_the_folder_and_the_same_every_time(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "rdf.yaml").write_text("type: model\n")
    (pkg / "weights.pt").write_bytes(b"\x00" * 100)
    a = bioimage.zip_folder(pkg, tmp_path / "a.zip").read_bytes()
    b = bioimage.zip_folder(pkg, tmp_path / "b.zip").read_bytes()
    assert a == b
    with zipfile.ZipFile(tmp_path / "a.zip") as z:
        assert sorted(z.namelist()) == ["rdf.yaml", "weights.pt"]
        assert z.read("rdf.yaml") == b"type: model\n"


def test_axes_carry_a_scale_only_where_the_pixel_size_is_known(tmp_path):
    for name in ("test_input.npy", "test_output.npy", "sample_input.tif", "sample_output.tif"):
        (tmp_path / name).write_bytes(b"x")
    known = bioimage.tensors(tmp_path, multiple=16, nm=2.5, label="gbm")
    axes = known["inputs"][0]["axes"]
    assert [(a.get("scale"), a.get("unit")) for a in axes[2:]] == [(2.5, "nanometer")] * 2
    unknown = bioimage.tensors(tmp_path, multiple=16, nm=None, label="gbm")
    assert all("scale" not in a for a in unknown["inputs"][0]["axes"])
    assert all("scale" not in a for a in unknown["outputs"][0]["axes"])
