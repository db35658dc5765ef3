"""The pieces of a BioImage Model Zoo package (bioimageio.spec 0.5) and a plain ONNX file.

The package holds the U-Net three ways (PyTorch state dict with its architecture source,
TorchScript, ONNX), one test input and the probabilities the model gives for it, and a README.
Each weight format maps the input to *logits*; the description's ``sigmoid`` postprocessing
turns them into probabilities, as gbmseg does. The plain ONNX file has the sigmoid inside:
it gives probabilities directly, for a lab PC with ONNX Runtime and nothing else.

Every reference is a file in the package (nothing needs the network): ``check`` runs
bioimageio.core's own model test on it, ``onnx_probabilities`` ONNX Runtime.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gbmseg.model import unet

log = logging.getLogger(__name__)

FORMAT_VERSION = "0.5.12"
ARCHITECTURE = Path(unet.__file__)  # imports nothing from gbmseg: shipped as it is
INPUT_ID, OUTPUT_ID = "em", "probability"
ONNX_OPSET = 17


class Probabilities(nn.Module):
    """The U-Net followed by the sigmoid: what the plain ONNX file computes."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(x))


def probabilities(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """PyTorch's probabilities for a (N, 1, H, W) float32 array, fp32 on the CPU."""
    with torch.no_grad():
        return Probabilities(model.cpu()).eval()(torch.from_numpy(x)).numpy()


def write_onnx(module: nn.Module, x: np.ndarray, path: Path, opset: int = ONNX_OPSET) -> Path:
    """``module`` (eval mode) as ONNX with batch, height and width left free."""
    free = {0: "batch", 2: "y", 3: "x"}
    with warnings.catch_warnings():  # tracing warns about UNet.forward's input checks
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.cpu().eval(), (torch.from_numpy(x),), str(path), dynamo=False,
            input_names=["input"], output_names=["output"], opset_version=opset,
            dynamic_axes={"input": free, "output": free},
        )  # fmt: skip
    return path


def write_torchscript(module: nn.Module, x: np.ndarray, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module.cpu().eval(), torch.from_numpy(x))
    traced.save(str(path))
    return path


def onnx_probabilities(path: Path, x: np.ndarray, *, sigmoid: bool) -> np.ndarray:
    """ONNX Runtime's output for ``x`` (through a sigmoid when the file gives logits)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = session.run(None, {session.get_inputs()[0].name: x})[0]
    return 1 / (1 + np.exp(-y)) if sigmoid else y


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_entry(folder: Path, name: str) -> dict:
    return {"source": name, "sha256": sha256(folder / name)}


def _space(axis: str, nm: float | None, size: dict) -> dict:
    entry = {"type": "space", "id": axis, "size": size}
    if nm:  # a scale in nm only where the model knows its pixel size
        entry |= {"scale": round(nm, 6), "unit": "nanometer"}
    return entry


def tensors(folder: Path, *, multiple: int, nm: float | None, label: str) -> dict:
    """The inputs and outputs: a one-channel image of any size divisible by ``multiple``,
    its probabilities on the same grid; test and sample tensors from ``folder``."""
    grid = {"min": multiple, "step": multiple}
    same = {"tensor_id": INPUT_ID}
    em = {
        "id": INPUT_ID,
        "description": "one-channel EM image scaled to [0, 1] (8-bit / 255); the network "
        "standardises each tile itself",
        "axes": [
            {"type": "batch"},
            {"type": "channel", "channel_names": ["em"]},
            _space("y", nm, grid),
            _space("x", nm, grid),
        ],
        "test_tensor": file_entry(folder, "test_input.npy"),
        "sample_tensor": file_entry(folder, "sample_input.tif"),
        "data": {"type": "float32", "range": [0.0, 1.0]},
        "preprocessing": [{"id": "ensure_dtype", "kwargs": {"dtype": "float32"}}],
    }
    out = {
        "id": OUTPUT_ID,
        "description": f"probability of {label} per pixel",
        "axes": [
            {"type": "batch"},
            {"type": "channel", "channel_names": [label]},
            _space("y", nm, same | {"axis_id": "y"}),
            _space("x", nm, same | {"axis_id": "x"}),
        ],
        "test_tensor": file_entry(folder, "test_output.npy"),
        "sample_tensor": file_entry(folder, "sample_output.tif"),
        "data": {"type": "float32", "range": [0.0, 1.0]},
        "postprocessing": [{"id": "sigmoid"}],
    }
    return {"inputs": [em], "outputs": [out]}


def weights(folder: Path, cfg: dict, *, opset: int = ONNX_OPSET) -> dict:
    """The three weight formats; TorchScript and ONNX name the state dict as their parent."""
    version = torch.__version__.split("+")[0]
    return {
        "pytorch_state_dict": file_entry(folder, "weights.pt")
        | {
            "architecture": file_entry(folder, ARCHITECTURE.name)
            | {"callable": "build", "kwargs": {"cfg": cfg}},
            "pytorch_version": version,
        },
        "torchscript": file_entry(folder, "weights.torchscript")
        | {"pytorch_version": version, "parent": "pytorch_state_dict"},
        "onnx": file_entry(folder, "weights.onnx")
        | {"opset_version": opset, "parent": "pytorch_state_dict"},
    }


def zip_folder(folder: Path, path: Path) -> Path:
    """The package as one zip (rdf.yaml at its root), file order and times fixed."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.iterdir()):
            info = zipfile.ZipInfo(f.name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, f.read_bytes())
    return path


def check(rdf: Path) -> dict:
    """bioimageio.core's own test of the package (format, files, every weight format
    reproducing the test output): ``{"status": ..., "failures": [...]}``."""
    from bioimageio.core import test_model

    summary = test_model(str(rdf))
    failures = [
        f"{d.name}: {e.msg}" for d in summary.details if d.status == "failed" for e in d.errors
    ]
    return {
        "status": summary.status,
        "failures": failures,
        "passed": [d.name for d in summary.details if d.status == "passed"],
    }
