"""The submitit launcher (jobs/pretrain/launch.py): a failed job's error reduced to its raised line."""

from __future__ import annotations


def test_job_errors_are_reduced_to_the_raised_line():
    from jobs.pretrain.launch import _last_exception_line

    trace = """Job (task=0) failed during processing with trace:
----------------------
Traceback (most recent call last):
  File "x.py", line 1, in f
FileNotFoundError: no shards found at /nowhere (give a split folder)

----------------------
You can check full logs at paths:
  - /tmp/1_0_log.err"""
    assert _last_exception_line(trace) == "FileNotFoundError: no shards found at /nowhere (give a split folder)"
    assert _last_exception_line("") == "no message"
