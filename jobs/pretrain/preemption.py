"""Stop requests from the scheduler, turned into a flag the training loop reads between steps.

SLURM signals a job before its time limit (``--signal=USR2@<s>``, which submitit sets) and when it is
preempted (SIGTERM, then USR2 from submitit's test helper, or the cluster's own grace period). The
handler only sets a flag: no I/O, no collective, nothing that could deadlock or tear a file in the
middle of a step. The loop then agrees across processes, checkpoints the step, and the launcher
requeues the job (``jobs.pretrain.launch``).
"""

from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGUSR2, signal.SIGTERM)


class StopRequest:
    """Callable flag: ``stop()`` is True once one of ``signals`` has arrived."""

    def __init__(self, signals=STOP_SIGNALS):
        self.signum: int | None = None
        for signum in signals:  # replaces submitit's own handlers, which requeue at once, mid-step
            signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def __call__(self) -> bool:
        return self.signum is not None
