"""``progress(...)``: a tqdm bar on a terminal, whole log lines everywhere else.

tqdm redraws its bar with carriage returns: in a terminal that is one line, in a log file (SLURM's,
``cmd > run.log``) it is one line of megabytes. So when stderr is not a terminal the same calls
report through ``logging`` (INFO, rank 0 only: ``pipeline.logs``) one whole line each time another
5% is done, at least every 5 minutes, and once at the end:

    pretrain: 150/3000 (5%), 2.31 step/s, 1:05 elapsed, 20:33 left, loss=0.693

Both kinds take the part of tqdm's interface the commands use: iterate, ``update``, ``set_postfix``,
``n``, ``close`` and ``with``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable

from tqdm import tqdm

log = logging.getLogger(__name__)


def progress(
    iterable: Iterable | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    initial: int = 0,
    enabled: bool = True,
    terminal: bool | None = None,
):
    """A tqdm bar when stderr is a terminal (``terminal`` overrides the check), else ``LogProgress``;
    nothing shown when not ``enabled`` (``--no-progress``, ranks above 0). ``total`` defaults to the
    iterable's length where it has one."""
    if not enabled:
        return tqdm(iterable, total=total, disable=True)
    if terminal if terminal is not None else sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, dynamic_ncols=True)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, initial=initial)


class LogProgress:
    """Progress as log lines: one when the count crosses another ``every_percent`` of ``total``, one
    when ``every_s`` seconds passed since the last (so a run without a total, or a slow one, still
    says it is alive), and one on ``close`` unless the last line already said it all."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
        every_percent: float = 5,
        every_s: float = 300,
        clock=time.monotonic,
    ):
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n = self._start = self._said = initial
        self.every_percent, self.every_s, self._clock = every_percent, every_s, clock
        self._began = self._last = clock()
        self._postfix = ""
        self._closed = False

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self._clock()
        if self._step(self.n) > self._step(self._said) or now - self._last >= self.every_s:
            self._say(now)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **values) -> None:
        """Values shown at the end of the next line, as tqdm shows them beside its bar."""
        values = {**(ordered_dict or {}), **values}
        self._postfix = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.n != self._said:
                self._say(self._clock())

    def _step(self, count: int) -> int:
        """How many ``every_percent`` parts of the total ``count`` completes (0 without a total)."""
        return int(100 * count / self.total // self.every_percent) if self.total else 0

    def _say(self, now: float) -> None:
        self._said, self._last = self.n, now
        log.info("%s", self.line(now))

    def line(self, now: float) -> str:
        elapsed = now - self._began
        rate = (self.n - self._start) / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.n}/{self.total} ({100 * self.n / self.total:.0f}%)" if self.total else f"{self.n} {self.unit}"]
        parts.append(f"{rate:.3g} {self.unit}/s" if rate >= 1 or rate == 0 else f"{1 / rate:.3g} s/{self.unit}")
        parts.append(f"{_clock_time(elapsed)} elapsed")
        if self.total and rate > 0 and self.n < self.total:
            parts.append(f"{_clock_time((self.total - self.n) / rate)} left")
        if self._postfix:
            parts.append(self._postfix)
        return f"{self.desc}: " * bool(self.desc) + ", ".join(parts)


def _clock_time(seconds: float) -> str:
    """``1:05``, ``1:02:05``: minutes and seconds, hours when there are any."""
    minutes, s = divmod(int(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"
