"""Threads that give way: another process's load is seen, and the thread count follows it."""

import subprocess
import sys
import time

import pytest
import torch

from gbmseg.engine.threads import Governor


@pytest.fixture(autouse=True)
def _keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_fixed_count_is_kept():
    g = Governor(fixed=1, cores=2)
    assert torch.get_num_threads() == 1 and g.adjust() == 1


def test_another_process_on_a_core_is_seen():
    """(Other tests may run beside this one: the busy loop only adds to what is seen.)"""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        g = Governor(cores=2)
        time.sleep(0.5)
        seen = g.others()
    finally:
        busy.kill()
        busy.wait()
    assert seen is not None and seen > 0.6, seen
    assert torch.get_num_threads() == 1  # the first look already gave the core up


class _Load(Governor):
    """The policy alone, on given loads of other processes."""

    def __init__(self, loads: list[float], cores: int):
        self.loads = loads
        super().__init__(cores=cores)

    def others(self) -> float | None:
        return self.loads.pop(0)


@pytest.mark.parametrize(
    ("cores", "loads", "counts"),
    [
        (2, [0.0, 1.1, 0.9, 0.1], [2, 1, 1, 2]),  # a core taken, then given back
        (4, [0.0, 2.4, 5.0, None], [4, 2, 1, 1]),  # never below 1; unknown: unchanged
    ],
)
def test_the_count_is_the_cores_the_others_leave(cores, loads, counts):
    g = _Load(list(loads), cores)  # its first look takes the first load
    assert torch.get_num_threads() == counts[0]
    assert [g.adjust() for _ in loads[1:]] == counts[1:]
