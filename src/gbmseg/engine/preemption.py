"""SIGTERM (a preempted GPU node, a pod being evicted) asks training to stop: the trainer
finishes the batch in hand, writes a checkpoint that records how far into the epoch it got,
and exits; ``--resume`` continues from that batch, with the same batch order and flips."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)
EXIT_CODE = 128 + signal.SIGTERM  # what a shell reports for a process ended by SIGTERM


class TrainingInterrupted(RuntimeError):
    """Training stopped on request; a checkpoint to resume from was written."""


class StopRequest:
    """While entered (in the main thread), SIGTERM sets ``requested`` instead of killing."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        log.warning("SIGTERM: stopping after this batch and writing a checkpoint")
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
