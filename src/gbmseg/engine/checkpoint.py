"""Atomic, pickle-free checkpoints (loaded with ``weights_only=True``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from gbmseg.data.atomic import write_bytes


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or not a gbmseg checkpoint."""


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
            f"{path}: no such checkpoint; train one first (`gbmseg train` or `dvc repro train`)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError...
        raise CheckpointError(
            f"{path}: refused to load ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "only plain tensors and containers are accepted (weights_only=True)"
        ) from exc
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a gbmseg checkpoint (no 'model' entry)")
    return state


def load_model(path: str | Path) -> torch.nn.Module:
    """A U-Net from a ``model.pt`` (or a folder holding one), in eval mode on the CPU."""
    from gbmseg.model.unet import build

    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    state = load(path)
    if "model_config" not in state:
        raise CheckpointError(f"{path}: no 'model_config' entry; was it written by gbmseg?")
    model = build(state["model_config"])
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: weights do not fit the recorded model_config: {exc}"
        ) from exc
    model.data_histogram = state.get("data_histogram")  # the training data's intensities
    return model.eval()


def load_model_ref(ref: str | Path) -> torch.nn.Module:
    """A U-Net from a path (folder or model.pt) or an MLflow URI (models:/NAME@ALIAS, runs:/)."""
    text = str(ref)
    if text.startswith(("models:/", "runs:/")) or "://" in text:
        from gbmseg import tracking

        return load_model(tracking.download_weights(text))
    return load_model(text)
