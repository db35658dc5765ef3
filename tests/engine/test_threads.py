"""Threads that give way: another process's load is seen, and the thread count follows it."""

import subprocess
import sys
import time

import torch

from gbmseg.engine.threads import Governor


def test_a_fixed_count_is_kept():
    before = torch.get_num_threads()
    try:
        g = Governor(fixed=1, cores=2)
        assert torch.get_num_threads() == 1 and g.adjust() == 1
    finally:
        torch.set_num_threads(before)


def test_a_busy_core_is_given_up_and_taken_back_when_it_frees():
    before = torch.get_num_threads()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        g = Governor(cores=2)  # looks for a quarter second before the first step
        others = [g.others() for _ in range(3) if time.sleep(0.4) is None]
        assert all(o is not None and o > 0.6 for o in others), others
        time.sleep(0.4)
        assert g.adjust() == 1
    finally:
        busy.kill()
        busy.wait()
    try:
        time.sleep(0.5)
        g.others()  # forget the interval the other process was in
        time.sleep(0.5)
        assert g.adjust() == 2
    finally:
        torch.set_num_threads(before)
