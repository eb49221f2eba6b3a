"""Where the commands' messages go: ``configure()``, called once at the start of every command's ``main``.

Modules log through ``logging.getLogger(__name__)``; this module routes what they say:

- INFO (what the command is doing, progress in log files) to stdout; WARNING and above to stderr, as
  ``warning: ...`` and ``error: ...``: one plain line each, for people and for log files alike;
- in a multi-process run only rank 0 prints INFO; the other ranks print their warnings and errors,
  prefixed ``[rank N]``. The rank (``rank()``) is Accelerate's once its state exists, else ``RANK``
  (torchrun, submitit), else ``SLURM_PROCID``, else 0;
- INFO comes from this project's packages (``PACKAGES``) only: other libraries speak from WARNING up.

A command's results (its tables, JSON and the figures it reports) are its output, not messages: they
stay ``print`` to stdout, and ``configure(quiet=True)`` (``--json``) keeps INFO off stdout so that it
holds the result alone. The handlers look ``sys.stdout`` and ``sys.stderr`` up at every write, so
redirections made after ``configure`` (pytest's capture, ``contextlib.redirect_stdout``) are followed.
"""

from __future__ import annotations

import logging
import os
import sys

from pipeline.extras import one_line_for_missing_extras

PACKAGES = ("__main__", "pipeline", "objectives", "models", "index", "jobs", "bench")


def rank() -> int:
    """This process's rank in a multi-process run, 0 when it runs alone."""
    state = sys.modules.get("accelerate.state")  # never imported here: its state exists only if imported
    if state is not None and state.PartialState._shared_state != {}:
        return state.PartialState().process_index
    for name in ("RANK", "SLURM_PROCID"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


class _StandardStream(logging.StreamHandler):
    """A handler writing to whatever ``sys.<name>`` is at the time of the write."""

    def __init__(self, name: str):
        logging.Handler.__init__(self)  # not StreamHandler's: it would bind today's stream
        self._name = name

    @property
    def stream(self):
        return getattr(sys, self._name)


class _Plain(logging.Formatter):
    """``message``; ``warning: message`` from WARNING up; ``[rank N] `` before either on ranks above 0."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname.lower()}: {text}"
        r = rank()
        return f"[rank {r}] {text}" if r else text


def _info_on_rank_zero(record: logging.LogRecord) -> bool:
    return record.levelno < logging.WARNING and rank() == 0


def configure(quiet: bool = False) -> None:
    """Route logging as the module says; ``quiet``: this project's INFO off too (WARNING and up only).
    Calling it again replaces what an earlier call installed; other handlers are left alone."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StandardStream)]:
        root.removeHandler(handler)
    out, err = _StandardStream("stdout"), _StandardStream("stderr")
    out.addFilter(_info_on_rank_zero)
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(_Plain())
        root.addHandler(handler)
    one_line_for_missing_extras()  # a missing DALI or FAISS ends a command in one line naming the extra
    root.setLevel(logging.WARNING)  # other libraries: warnings and errors
    for package in PACKAGES:
        logging.getLogger(package).setLevel(logging.WARNING if quiet else logging.INFO)
