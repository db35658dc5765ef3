"""Checkpoints: loaded with weights_only (a pickle that runs code is refused); a model.pt
written by the first layout (models already in registries) still loads, gives the same
output and keeps its training histogram; the current format round-trips; a newer format is
refused with a clear message."""

import pickle

import numpy as np
import pytest
import torch

from gbmseg.engine import checkpoint
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures"


def test_first_format_loads_with_the_same_output_and_histogram(tmp_path):
    old = torch.load(FIXTURES / "model_format1.pt", weights_only=True)
    assert "format" not in old and "data_histogram" in old  # the first layout
    model = checkpoint.load_model(FIXTURES / "model_format1.pt")
    io = torch.load(FIXTURES / "model_format1_io.pt", weights_only=True)
    with torch.no_grad():
        assert torch.allclose(model(io["input"]), io["logits"], atol=1e-6)
    assert np.allclose(model.source_histogram(), old["data_histogram"].numpy())

    checkpoint.save(tmp_path / "model.pt", checkpoint.model_state(model))
    state = checkpoint.load(tmp_path / "model.pt")
    assert state["format"] == checkpoint.FORMAT and "data_histogram" in state["model"]
    again = checkpoint.load_model(tmp_path)
    for a, b in zip(again.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_newer_format_is_refused_by_name(tmp_path):
    state = checkpoint.load(FIXTURES / "model_format1.pt")
    checkpoint.save(tmp_path / "model.pt", {**state, "format": checkpoint.FORMAT + 1})
    with pytest.raises(checkpoint.CheckpointError, match="newer than this gbmseg reads"):
        checkpoint.load_model(tmp_path / "model.pt")


def test_the_model_checks_its_input_shape():
    model = checkpoint.load_model(FIXTURES / "model_format1.pt")
    with pytest.raises(ValueError, match=r"divisible by 4.*predict in tiles"):
        model(torch.zeros(1, 1, 30, 32))
    with pytest.raises(ValueError, match=r"must be \(N, 1, H, W\)"):
        model(torch.zeros(1, 3, 32, 32))


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"model": _Evil()}))
    with pytest.raises(checkpoint.CheckpointError, match="weights_only"):
        checkpoint.load(path)
