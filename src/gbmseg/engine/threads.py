"""CPU threads that give way to other work.

PyTorch's OpenMP threads wait for each other at every parallel region; when another process
holds one of two cores, each region waits for the preempted thread and training falls to a
tenth of its speed (``benchmarks/busy.py``).  One thread per core that is free loses far
less.  ``Governor`` reads how much CPU other processes used since its last look (the
machine's busy time from ``/proc/stat`` minus this process's own) and sets the thread count
to the cores they left, between 1 and the cores there are.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy_s() -> float | None:
    """Seconds of CPU time every process on the machine used since boot (None: unknown)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / TICK


def _own_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def available_cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Governor:
    """Adapts ``torch.set_num_threads`` to the cores other processes leave (``fixed`` > 0:
    that many threads, never changed)."""

    def __init__(self, fixed: int = 0, cores: int | None = None):
        self.fixed = fixed
        self.cores = cores or available_cores()
        self.last = self._sample()
        if fixed:
            torch.set_num_threads(fixed)
        else:  # a first look before the first step: a quarter second of the others' load
            time.sleep(0.25)
            self.adjust()

    def _sample(self) -> tuple[float, float | None, float]:
        return time.monotonic(), _machine_busy_s(), _own_s()

    def others(self) -> float | None:
        """Cores other processes kept busy since the last call (None: unknown here)."""
        now = self._sample()
        (t0, busy0, own0), (t1, busy1, own1) = self.last, now
        self.last = now
        if busy0 is None or busy1 is None or t1 - t0 < 0.2:
            return None
        return max(0.0, (busy1 - busy0) - (own1 - own0)) / (t1 - t0)

    def adjust(self) -> int:
        """Set and return the thread count for the next stretch of work."""
        current = torch.get_num_threads()
        if self.fixed:
            return current
        others = self.others()
        if others is None:
            return current
        wanted = max(1, min(self.cores, self.cores - round(others)))
        if wanted != current:
            log.info("threads: %d -> %d (other processes use %.1f of %d cores)",
                     current, wanted, others, self.cores)  # fmt: skip
            torch.set_num_threads(wanted)
        return wanted
