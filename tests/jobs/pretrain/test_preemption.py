"""The stop request (jobs/pretrain/preemption.py): set by the scheduler's signals only."""

from __future__ import annotations


def test_stop_request_is_set_by_the_scheduler_signals_only():
    import os
    import signal

    from jobs.pretrain.preemption import StopRequest

    previous = {s: signal.getsignal(s) for s in (signal.SIGUSR2, signal.SIGTERM)}
    try:
        stop = StopRequest()
        assert not stop()
        os.kill(os.getpid(), signal.SIGUSR2)
        assert stop() and stop.signum == signal.SIGUSR2
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
