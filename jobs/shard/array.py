"""Run the shard job as a submitit job array on SLURM: the pending shards spread over array tasks.

Each task writes its own shards and done-records into the shared OUT folder, exactly as a local
run does; the submitting process waits and then builds each split's manifest from the records.
"""

from __future__ import annotations

import time
from pathlib import Path

from jobs.executor import make_executor
from jobs.shard.assignment import ShardAssignment
from jobs.shard.run import STATE_DIR, pending_shards, run_shards, split_paths
from pipeline import logs
from pipeline.progress import progress as progress_bar


def shard_task(out: str, work: list[tuple[str, int]], workers: int) -> int:
    """One array task: write the shards ``work`` names as (split, index). Returns how many it wrote."""
    logs.configure()  # its warnings into the task's log
    for split in dict.fromkeys(s for s, _ in work):
        assignment = ShardAssignment.load(split_paths(Path(out), split)["assignment"])
        run_shards(Path(out), assignment, [i for s, i in work if s == split], workers, progress=False)
    return len(work)


def submit(
    out: Path,
    assignments: list[ShardAssignment],
    *,
    cluster: str,
    tasks: int,
    workers: int,
    partition: str | None,
    time_min: int,
    mem_gb: float | None,
):
    """Submit one array over every pending shard of ``assignments``; returns the submitit jobs."""
    work = [(assignment.split, i) for assignment in assignments for i in pending_shards(assignment, out)]
    if not work:
        return []
    tasks = max(1, min(tasks, len(work)))
    groups = [work[t::tasks] for t in range(tasks)]  # round-robin: tasks get similar loads
    executor = make_executor(
        cluster,
        out / STATE_DIR / "slurm",
        name="shard",
        time_min=time_min,
        cpus_per_task=workers,
        mem_gb=mem_gb,
        partition=partition,
    )
    return executor.map_array(shard_task, [str(out)] * tasks, groups, [workers] * tasks)  # one task per group


def wait(jobs, poll_s: float = 5.0, progress: bool = True) -> list[str]:
    """Wait for ``jobs``, showing progress; return one line per failed job (error and log path)."""
    with progress_bar(total=len(jobs), unit="task", desc="array", enabled=progress) as bar:
        while (done := sum(j.done() for j in jobs)) < len(jobs):
            bar.update(done - bar.n)
            time.sleep(poll_s)
        bar.update(len(jobs) - bar.n)
    errors = []
    for job in jobs:
        if job.exception() is not None:
            last = str(job.exception()).strip().splitlines()[-1:] or ["failed"]
            errors.append(f"task {job.job_id}: {last[0]} (log: {job.paths.stderr})")
    return errors
