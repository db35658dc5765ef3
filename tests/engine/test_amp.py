"""The precision choice: bf16 autocast only where it pays, measured once per CPU."""

import json

import pytest
import torch

from gbmseg.engine import amp
from gbmseg.engine.amp import choose_precision


def test_explicit_precisions_are_taken_as_asked():
    assert choose_precision("cpu", "bf16").dtype == torch.bfloat16
    assert choose_precision("cpu", "fp32").dtype is None


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """A CPU of the test's choosing: AMX or not, its flags, and a bf16 speed-up to measure
    (counted); the measurement kept under tmp_path."""
    monkeypatch.setenv("GBMSEG_CACHE", str(tmp_path))
    state = {"amx": False, "flags": {"avx512f", "avx512_bf16"}, "speedup": 1.6, "measured": 0}

    def measure() -> float:
        state["measured"] += 1
        return state["speedup"]

    monkeypatch.setattr(amp, "cpu_has_amx", lambda: state["amx"])
    monkeypatch.setattr(amp, "cpu_info", lambda: ("a CPU", state["flags"]))
    monkeypatch.setattr(amp, "bf16_speedup", measure)
    return state


def test_amx_means_bf16_and_no_native_bf16_means_fp32_without_measuring(cpu):
    cpu["amx"] = True
    assert choose_precision("cpu", "auto").dtype == torch.bfloat16
    cpu["amx"], cpu["flags"] = False, {"avx2", "avx512f"}
    assert choose_precision("cpu", "auto").dtype is None
    assert cpu["measured"] == 0


def test_avx512_bf16_alone_is_measured_once_and_the_figure_kept(cpu, tmp_path):
    assert choose_precision("cpu", "auto").dtype == torch.bfloat16  # 1.6x: faster
    assert choose_precision("cpu", "auto").dtype == torch.bfloat16
    assert cpu["measured"] == 1
    (entry,) = json.loads((tmp_path / "amp.json").read_text()).values()
    assert entry["bf16_speedup"] == 1.6


def test_where_bf16_measured_slower_it_stays_fp32(cpu):
    cpu["speedup"] = 0.8
    assert choose_precision("cpu", "auto").dtype is None


def test_a_damaged_record_is_measured_again_and_an_unwritable_one_is_not_fatal(
    cpu, tmp_path, monkeypatch
):
    (tmp_path / "amp.json").write_text("{not json")
    assert choose_precision("cpu", "auto").dtype == torch.bfloat16 and cpu["measured"] == 1
    blocked = tmp_path / "file"
    blocked.write_text("")
    cpu["speedup"] = 0.5
    monkeypatch.setenv("GBMSEG_CACHE", str(blocked / "sub"))  # a folder under a file
    assert choose_precision("cpu", "auto").dtype is None and cpu["measured"] == 2


def test_the_measurement_itself_times_both_precisions():
    ratio = amp.bf16_speedup(steps=1, repeats=1)
    assert 0.01 < ratio < 100
