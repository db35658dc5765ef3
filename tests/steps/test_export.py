"""export: a package bioimageio.core's own test passes offline, an ONNX file ONNX Runtime runs
as PyTorch does, and nothing written when either does not hold."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from gbmseg import bioimage
from gbmseg.data.atomic import sha256_file
from gbmseg.data.io import write_png
from gbmseg.data.scale import given
from gbmseg.errors import ExportError
from gbmseg.steps import export
from tests.bioimage_models import random_model
from tests.conftest import params
from tests.models import membrane_image, save

OFFLINE = """
import json, socket, sys
def refuse(*a, **k):
    raise OSError("network unreachable")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
sys.modules["gbmseg"] = None  # the package must not need gbmseg
from bioimageio.core import test_model
s = test_model(sys.argv[1])
print(json.dumps({"status": s.status, "failed": [d.name for d in s.details
                                                 if d.status == "failed"]}))
"""


def _export_params(**update):
    return params().export.model_copy(update={"check": False, "tile": 64, **update})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    m = random_model()
    m.set_pixel_size_nm(10.0)
    m.set_threshold(0.4)
    folder = save(m, root / "model")
    img, _ = membrane_image(96)
    write_png(root / "sample.png", img, given(10.0, "test"))
    metrics = root / "evaluate.json"
    sha = sha256_file(folder / "model.pt")
    metrics.write_text(json.dumps({"dice": 0.91, "model_sha256": sha}))
    res = export.run(_export_params(), str(folder), root / "out", sample=root / "sample.png",
                     metrics=metrics)  # fmt: skip
    return root, res


def test_bioimageio_test_passes_on_the_zip_with_the_network_unreachable(exported):
    _, res = exported
    done = subprocess.run([sys.executable, "-c", OFFLINE, res["zip"]], capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary == {"status": "passed", "failed": []}, summary


def test_onnx_runtime_equals_pytorch_on_the_test_input(exported):
    root, res = exported
    pkg = root / "out" / "gbmseg-unet"
    x = np.load(pkg / "test_input.npy")
    want = np.load(pkg / "test_output.npy")
    assert np.abs(bioimage.onnx_probabilities(res["onnx"], x, sigmoid=False) - want).max() <= 1e-4
    assert res["onnx_max_abs_diff"] <= 1e-4 and res["package_onnx_max_abs_diff"] <= 1e-4


def test_the_package_says_what_the_model_is(exported):
    root, res = exported
    pkg = root / "out" / "gbmseg-unet"
    rdf = yaml.safe_load((pkg / "rdf.yaml").read_text())
    assert rdf["format_version"].startswith("0.5")
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript", "onnx"}
    assert rdf["inputs"][0]["axes"][2] | {"size": None} == {"type": "space", "id": "y",
        "size": None, "scale": 10.0, "unit": "nanometer"}  # fmt: skip
    assert rdf["config"]["gbmseg"] == {"threshold": 0.4, "pixel_size_nm": 10.0}
    readme = (pkg / "README.md").read_text()
    assert "| dice | 0.91 |" in readme and "CC-BY-4.0" in readme and "**0.4**" in readme
    sources = [w.get("source") for w in rdf["weights"].values()]
    sources += [rdf["weights"]["pytorch_state_dict"]["architecture"]["source"]]
    assert all("://" not in s for s in sources)  # every reference is a file in the package
    with zipfile.ZipFile(res["zip"]) as z:
        assert set(z.namelist()) == {f.name for f in pkg.iterdir()}


def test_metrics_of_other_weights_stay_out_of_the_readme(tmp_path):
    folder = save(random_model(), tmp_path / "model")
    img, _ = membrane_image(64)
    write_png(tmp_path / "s.png", img)
    (tmp_path / "evaluate.json").write_text(json.dumps({"dice": 0.99, "model_sha256": "0" * 64}))
    export.run(_export_params(), str(folder), tmp_path / "out", sample=tmp_path / "s.png",
               metrics=tmp_path / "evaluate.json")  # fmt: skip
    readme = (tmp_path / "out" / "gbmseg-unet" / "README.md").read_text()
    assert "0.99" not in readme and "No test metrics" in readme
    rdf = yaml.safe_load((tmp_path / "out" / "gbmseg-unet" / "rdf.yaml").read_text())
    assert "scale" not in rdf["inputs"][0]["axes"][2]  # no pixel size: no nm invented


def test_an_export_that_does_not_reproduce_writes_nothing(tmp_path):
    folder = save(random_model(), tmp_path / "model")
    img, _ = membrane_image(64)
    write_png(tmp_path / "s.png", img)
    with pytest.raises(ExportError, match="ONNX Runtime differs from PyTorch"):
        export.run(_export_params(tolerance=1e-12), str(folder), tmp_path / "out",
                   sample=tmp_path / "s.png")  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_export_from_the_registry_logs_to_the_source_run_and_tags_the_version(
    tmp_path, monkeypatch
):
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    from gbmseg import tracking

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)  # the local artifact root lands here
    p = params()
    folder = save(random_model(), tmp_path / "model")
    example = np.zeros((1, 1, 64, 64), np.float32)
    with tracking.stage_run(p.tracking, "register", "g") as run:
        version = tracking.register_version(p.tracking, run.log_model(folder, example),
                                            {"test_dice": 0.87})  # fmt: skip
    name = p.tracking.model_name
    tracking.set_alias(name, "champion", version)
    img, _ = membrane_image(64)
    write_png(tmp_path / "s.png", img)
    res = export.run(_export_params(), f"models:/{name}@champion", tmp_path / "out",
                     sample=tmp_path / "s.png")  # fmt: skip
    mv = MlflowClient().get_model_version(name, version)
    assert mv.tags["export.zip"] == f"runs:/{mv.run_id}/bioimageio/gbmseg-unet.zip"
    assert mv.tags["export.onnx"] == f"runs:/{mv.run_id}/bioimageio/gbmseg-unet.onnx"
    logged = download_artifacts(mv.tags["export.zip"], dst_path=str(tmp_path / "dl"))
    assert Path(logged).read_bytes() == Path(res["zip"]).read_bytes()
    readme = (tmp_path / "out" / "gbmseg-unet" / "README.md").read_text()
    assert "| dice | 0.87 |" in readme  # the version's test figures
