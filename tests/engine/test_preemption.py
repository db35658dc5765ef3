"""SIGTERM while training asks for a stop instead of killing the process."""

import os
import signal

from gbmseg.engine.preemption import StopRequest


def test_sigterm_inside_is_a_request_and_the_old_handler_comes_back():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
    assert signal.getsignal(signal.SIGTERM) == before
