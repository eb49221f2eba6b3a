"""Pretraining through submitit: submitted from the login node, run as one task per GPU (or per CPU
worker) on SLURM or on this machine, requeued on preemption. Kept apart from the training loop.

Job side (``PretrainJob``), in every task:
1. torch.distributed comes from SLURM's environment (submitit's ``TorchDistributedEnvironment``:
   MASTER_ADDR from the node list, RANK, WORLD_SIZE, LOCAL_RANK), NCCL on GPUs and gloo on CPUs;
   Accelerate then uses that process group (no ``accelerate launch`` inside the job).
2. ``jobs.pretrain.preemption.StopRequest`` replaces submitit's signal handlers; training always resumes from
   the newest checkpoint in the run folder, so a first start and a requeued start run the same code.
3. When a stop is requested, the loop checkpoints the step on which all tasks agree and returns; task
   0 alone then runs ``scontrol requeue`` (nothing collective happens in a signal handler), and every
   task exits without a result, so the job counts as running until its requeued self finishes. After
   ``max_requeues`` restarts (``SLURM_RESTART_COUNT``) the job fails with a message instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import submitit
import torch

from jobs.executor import make_executor
from jobs.pretrain import trackers
from jobs.pretrain.config import Config, from_dict
from jobs.pretrain.preemption import StopRequest
from pipeline import logs
from pipeline.device import local_rank, torch_device

log = logging.getLogger(__name__)


def _bound_gpu() -> dict:
    """The GPU this task is bound to, as run.json records it: index, name and UUID (the UUID tells
    GPUs apart across tasks that each see their own GPU as index 0)."""
    index = torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {"index": index, "name": props.name, "uuid": str(getattr(props, "uuid", "")), "local_rank": local_rank()}


class PretrainJob:
    """The submitted callable: picklable (a config dict and paths), identical on every restart.
    Subclasses change what a task does once its process group and stop handler exist (``work``)."""

    what = "pretraining"

    def __init__(
        self,
        config: dict,
        run_dir: str,
        max_requeues: int,
        command: list[str],
        report_to: tuple[str, ...] = trackers.DEFAULT,
        progress: bool = True,
    ):
        self.config, self.run_dir, self.max_requeues, self.command = config, run_dir, max_requeues, command
        self.report_to, self.progress = tuple(report_to), progress

    def __call__(self) -> dict:
        logs.configure()  # progress as whole lines into the task's log; INFO from rank 0 only
        env = submitit.JobEnvironment()
        # RANK, LOCAL_RANK, ... first; then torch_device() binds the local rank's GPU explicitly.
        # (Exporting CUDA_VISIBLE_DEVICES here would do nothing: torch has already looked at CUDA.)
        dist_env = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        cuda = torch_device() == "cuda"
        if dist_env.world_size > 1 and not torch.distributed.is_initialized():
            device_id = torch.device("cuda", torch.cuda.current_device()) if cuda else None
            torch.distributed.init_process_group(backend="nccl" if cuda else "gloo", device_id=device_id)
        launch = {
            "command": self.command,
            "job_id": env.job_id,
            "cluster": env.cluster,
            "restarts": int(os.environ.get("SLURM_RESTART_COUNT", 0)),
            "gpu": _bound_gpu() if cuda else None,
        }
        outcome, result = self.work(StopRequest(), launch, env.global_rank)
        if outcome.stopped:
            self._requeue(env, outcome.step)
        return result

    def work(self, stop: StopRequest, launch: dict, rank: int):
        """Train (always resuming: a first start and a requeued one run the same code); return the
        loop's ``Outcome`` and the job's result."""
        from jobs.pretrain.loop import train  # imported in the job, after the process group exists

        outcome = train(
            from_dict(self.config),
            Path(self.run_dir),
            resume=True,
            progress=self.progress,
            should_stop=stop,
            launch=launch,
            report_to=self.report_to,
        )
        return outcome, {"step": outcome.step, **outcome.metrics}

    def _requeue(self, env: submitit.JobEnvironment, step: int) -> None:
        where = f"checkpoint of step {step} in {self.run_dir}/checkpoints"
        restarts = int(os.environ.get("SLURM_RESTART_COUNT", 0))
        if env.cluster != "slurm":
            raise RuntimeError(f"stopped by a signal; {where}; continue with --resume")
        if restarts >= self.max_requeues:
            raise RuntimeError(f"stopped {restarts + 1} times, more than --max-requeues {self.max_requeues}; {where}")
        if env.global_rank == 0:
            subprocess.run(["scontrol", "requeue", env.job_id], check=True, timeout=60)
            log.warning(
                "requeued job %s after step %s (restart %s of at most %s)",
                env.job_id,
                step,
                restarts + 1,
                self.max_requeues,
            )
        raise SystemExit(0)  # no result: submitit keeps waiting for the requeued job


def submit(
    config: Config,
    run_dir: Path,
    *,
    launcher: str,
    job_type: type[PretrainJob] = PretrainJob,
    job_options: dict | None = None,
    report_to: tuple[str, ...] = trackers.DEFAULT,
    progress: bool = True,
    nodes: int = 1,
    gpus_per_node: int = 0,
    tasks_per_node: int | None = None,
    cpus_per_task: int = 4,
    partition: str | None = None,
    time_min: int = 60,
    mem_gb: float | None = None,
    max_requeues: int = 10,
) -> submitit.Job:
    """Submit ``job_type`` (pretraining, or a subclass given ``job_options``) as one task per GPU
    (``tasks_per_node`` defaults to ``gpus_per_node``, or 1 without GPUs); print where to follow it.
    ``report_to``: the run's experiment trackers; ``progress``: progress lines in the task's log."""
    tasks = tasks_per_node or max(1, gpus_per_node)
    run_dir = Path(run_dir).resolve()
    if Path(config.data.shards).exists():  # the job may start in another folder
        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, shards=str(Path(config.data.shards).resolve()))
        )
    executor = make_executor(
        launcher,
        run_dir / "submitit",
        name=f"{job_type.what}-{run_dir.name}",
        time_min=time_min,
        cpus_per_task=cpus_per_task,
        mem_gb=mem_gb,
        partition=partition,
        nodes=nodes,
        tasks_per_node=tasks,
        gpus_per_node=gpus_per_node,
    )
    job = executor.submit(
        job_type(
            config.to_dict(),
            str(run_dir),
            max_requeues,
            sys.argv,
            report_to=report_to,
            progress=progress,
            **(job_options or {}),
        )
    )
    print(f"submitted {job_type.what} job {job.job_id} ({launcher}: {nodes} node(s) x {tasks} task(s))")
    print(f"  run folder: {run_dir}  (run.json, metrics.jsonl, curves.png, checkpoints/)")
    print(f"  logs:       {job.paths.stdout} (progress), {job.paths.stderr} (warnings, errors)")
    follow = f"tail -f {job.paths.stdout} {job.paths.stderr}" + (
        f"   |   squeue -j {job.job_id}" if launcher == "slurm" else ""
    )
    print(f"  follow:     {follow}", flush=True)
    return job


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The launching options every submitting command shares (pretraining, fine-tuning)."""
    group = p.add_argument_group("launching (submitit)")
    group.add_argument(
        "--launcher",
        choices=("none", "local", "slurm"),
        default="none",
        help="none: train in this process (default); local: submitit's local executor; slurm: submit to SLURM",
    )
    group.add_argument("--nodes", type=int, default=1, help="nodes to run on")
    group.add_argument("--gpus-per-node", type=int, default=0, help="one task per GPU (default 0: CPU tasks)")
    group.add_argument("--tasks-per-node", type=int, help="processes per node (default: gpus-per-node, or 1)")
    group.add_argument("--cpus-per-task", type=int, default=4, help="CPU cores per task (its data loading)")
    group.add_argument("--partition", help="SLURM partition (default: the cluster's default partition)")
    group.add_argument("--time", type=int, default=60, metavar="MINUTES", help="time limit per start (default 60)")
    group.add_argument("--mem-gb", type=float, help="memory per node in GB (default: the partition's default)")
    group.add_argument("--max-requeues", type=int, default=10, help="restarts after preemption or timeout (default 10)")
    group.add_argument("--wait", action="store_true", help="block until the job ends and report how it ended")


def resources(args: argparse.Namespace) -> dict:
    """``submit``'s keywords from the options of ``add_arguments``."""
    return {
        "nodes": args.nodes,
        "gpus_per_node": args.gpus_per_node,
        "tasks_per_node": args.tasks_per_node,
        "cpus_per_task": args.cpus_per_task,
        "partition": args.partition,
        "time_min": args.time,
        "mem_gb": args.mem_gb,
        "max_requeues": args.max_requeues,
    }


def wait(job: submitit.Job) -> int:
    """Block until ``job`` ends; 0 when it finished, 1 with its error and log path when it failed."""
    try:
        result = job.results()[0]  # task 0's; every task returns the same reduced metrics
    except Exception as error:  # noqa: BLE001 - submitit raises the job's error with its traceback as text
        print(
            f"error: job {job.job_id} failed: {_last_exception_line(str(error))}\n  log: {job.paths.stderr}",
            file=sys.stderr,
        )
        return 1
    print(
        f"job {job.job_id} finished: "
        + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items())
    )
    return 0


def _last_exception_line(trace: str) -> str:
    """``FileNotFoundError: no shards found at ...`` out of submitit's error text (a traceback
    between dashed lines, then log paths)."""
    lines = [line.strip() for line in trace.splitlines()]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*", line)]
    return raised[-1] if raised else next((line for line in lines if line), "no message")
