"""Atomic, pickle-free checkpoints (loaded with ``weights_only=True``): file I/O only.

A ``model.pt`` holds ``format``, ``model`` (the state_dict) and ``model_config``.
Format 4 also keeps the threshold chosen for the model (a buffer, 0 = none chosen);
format 3 keeps the pixel size the model was trained at (a buffer, 0 = unknown);
format 2 keeps the training data's histogram inside the state_dict (a U-Net buffer);
format 1 (no ``format`` entry) kept it beside, as ``data_histogram``, and still loads.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from gbmseg.data.atomic import write_bytes
from gbmseg.errors import CheckpointError
from gbmseg.model.unet import UNet, build

FORMAT = 4


def save(path: str | Path, state: dict[str, Any]) -> Path:
    """Serialise to memory, then temp file + fsync + rename: never a half-written file."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return write_bytes(path, buf.getvalue())


def load(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint; train one first (`gbmseg train` or `dvc repro`)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise CheckpointError(
            f"{path}: refused to load ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "a truncated or foreign file, or not plain tensors (weights_only=True)"
        ) from exc
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a gbmseg checkpoint (no 'model' entry)")
    return state


def model_state(model: UNet) -> dict[str, Any]:
    """What a published ``model.pt`` holds (CPU tensors, contiguous)."""
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return {"format": FORMAT, "model": weights, "model_config": model.cfg.to_dict()}


def upgrade(state: dict[str, Any], path: Path) -> dict[str, Any]:
    """A checkpoint of any earlier format in the current one."""
    version = int(state.get("format", 1))
    if version > FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint format {version} is newer than this gbmseg reads ({FORMAT}); "
            "upgrade gbmseg"
        )
    if version == 1:
        weights = dict(state["model"])
        hist = state.get("data_histogram")
        if "data_histogram" not in weights:
            weights["data_histogram"] = (
                torch.zeros(32, dtype=torch.float64)
                if hist is None
                else torch.as_tensor(hist, dtype=torch.float64)
            )
        state = {**state, "format": 2, "model": weights}
        state.pop("data_histogram", None)
    if int(state["format"]) < 3:  # format 3 records the pixel size trained at (0: unknown)
        weights = {"data_pixel_size_nm": torch.zeros((), dtype=torch.float64), **state["model"]}
        state = {**state, "format": 3, "model": weights}
    if int(state["format"]) < 4:  # format 4 records the threshold chosen (0: none)
        weights = {"data_threshold": torch.zeros((), dtype=torch.float64), **state["model"]}
        state = {**state, "format": FORMAT, "model": weights}
    return state


def load_model(path: str | Path) -> UNet:
    """A U-Net from a ``model.pt`` (or a folder holding one), in eval mode on the CPU."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    state = load(path)
    if "model_config" not in state:
        raise CheckpointError(f"{path}: no 'model_config' entry; was it written by gbmseg?")
    state = upgrade(state, path)
    try:
        model = build(state["model_config"])
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: weights do not fit the recorded model_config: {exc}"
        ) from exc
    return model.eval()
