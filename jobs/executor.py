"""Make submitit executors: the one place that decides how a job reaches SLURM.

The cluster is always named explicitly: submitit would otherwise pick SLURM by itself whenever
``srun`` is on PATH, and a user asking for a local run must get one. Both the shard job's arrays and
pretraining launches come through here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import submitit

# SIGUSR2 this long before the time limit: time to finish a step and write a checkpoint.
SIGNAL_DELAY_S = 120


def make_executor(
    cluster: str,
    folder: Path,
    *,
    name: str,
    time_min: int = 60,
    cpus_per_task: int = 1,
    mem_gb: float | None = None,
    partition: str | None = None,
    nodes: int = 1,
    tasks_per_node: int = 1,
    gpus_per_node: int = 0,
    array_parallelism: int = 256,
    signal_delay_s: int = SIGNAL_DELAY_S,
) -> submitit.Executor:
    """An executor for ``cluster`` ("slurm" or "local"), logging under ``folder/%j``."""
    if cluster not in ("slurm", "local"):
        raise ValueError(f"unknown cluster {cluster!r}: use slurm or local")
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise RuntimeError("SLURM is not reachable from here (no sbatch on PATH); use the local launcher")
    executor = submitit.AutoExecutor(folder=Path(folder) / "%j", cluster=cluster)
    params = {
        "name": name,
        "timeout_min": time_min,
        "cpus_per_task": cpus_per_task,
        "nodes": nodes,
        "tasks_per_node": tasks_per_node,
    }
    if gpus_per_node:
        params["gpus_per_node"] = gpus_per_node
    if mem_gb:
        params["mem_gb"] = mem_gb
    if cluster == "slurm":
        params["slurm_array_parallelism"] = array_parallelism
        params["slurm_signal_delay_s"] = signal_delay_s
        if partition:
            params["slurm_partition"] = partition
    executor.update_parameters(**params)
    return executor
