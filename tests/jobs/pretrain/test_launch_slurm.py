"""Pretraining through submitit on a real one-node SLURM (started by the ``slurm`` fixture): multi-task
training, preemption with requeue and exact resume, time limits, errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("nvidia.dali")

from jobs.pretrain import checkpoint, launch  # noqa: E402
from jobs.pretrain.__main__ import main as pretrain_main  # noqa: E402
from jobs.pretrain.config import load  # noqa: E402
from jobs.pretrain.logbook import read_metrics  # noqa: E402
from jobs.pretrain.loop import train  # noqa: E402
from tests.support.configs import sets_args, tiny  # noqa: E402

pytestmark = pytest.mark.slurm


def test_two_task_pretraining_runs_to_the_end_with_gloo(slurm, synthetic_splits, tmp_path, capsys, monkeypatch):
    from tests.support.ranks import (
        assert_ranks_hold_the_same_weights,
        assert_ranks_split_each_epoch,
        rank_records,
        shard_keys,
    )

    # SpeedNet (RSPNet's two tasks run in the preemption tests): its one crop size per batch, drawn by
    # each rank, shows in the clips' shape. 24 videos in batches of 6 on 2 tasks: 2 epochs of 2 steps.
    sets = tiny(
        "tiny_speednet",
        synthetic_splits / "train",
        **{
            "optim.max_steps": 4,
            "data.batch_size": 6,
            "data.plan_options": "{ T = 8 }",
            "data.augment": '{ recipe = "speednet", speednet_sizes = [24, 40] }',
            "model.backbone_options": "{ width = 4, temporal_stride = false }",
        },
    )
    monkeypatch.setenv("PRETRAIN_RANK_RECORD", "1")  # sbatch hands the environment on to the tasks
    code = pretrain_main(
        [
            "tiny_speednet",
            "--launcher",
            "slurm",
            "--tasks-per-node",
            "2",
            "--cpus-per-task",
            "1",
            "--time",
            "10",
            "--run-dir",
            str(tmp_path),
            "--wait",
            "--no-progress",
        ]
        + sets_args(sets)
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "submitted pretraining job" in out and "follow:" in out and "finished" in out
    launches = json.loads((tmp_path / "run.json").read_text())["launches"]
    assert launches[0]["processes"] == 2 and launches[0]["cluster"] == "slurm" and launches[0]["job_id"]
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]
    assert checkpoint.all_steps(tmp_path)[-1] == 4

    records = rank_records(tmp_path, 2)
    assert [(r[0]["start"], r[0]["world"]) for r in records] == [(0, 2), (0, 2)]
    assert sorted({e["epoch"] for e in records[0] if "keys" in e}) == [0, 1]
    assert_ranks_split_each_epoch(records, shard_keys(synthetic_splits / "train"), batch_size=6)
    assert_ranks_hold_the_same_weights(records, steps=4)
    # Each rank draws its own clips (frame indices) and its own crop size at every step.
    draws = [[(e["indices"], e["shape"][-1]) for e in r if "keys" in e] for r in records]
    assert all(a[0] != b[0] for a, b in zip(*draws)), "both tasks drew the same clips"
    assert [d[1] for d in draws[0]] != [d[1] for d in draws[1]], "both tasks drew the same crop sizes"


def test_preempted_job_is_requeued_and_ends_with_the_uninterrupted_loss(slurm, synthetic_splits, tmp_path):
    sets = tiny("tiny_rspnet", synthetic_splits / "train", **{"optim.max_steps": 24, "run.checkpoint_every": 1000})
    config = load("tiny_rspnet", sets)
    straight = train(config, tmp_path / "straight", progress=False)

    run_dir = tmp_path / "preempted"
    job = launch.submit(config, run_dir, launcher="slurm", cpus_per_task=1, time_min=10, max_requeues=2)
    deadline = time.time() + 300
    while time.time() < deadline and not (run_dir / "metrics.jsonl").exists():
        time.sleep(0.2)
    while time.time() < deadline and len(read_metrics(run_dir / "metrics.jsonl")) < 3:
        time.sleep(0.1)
    job._interrupt()  # what SLURM sends on preemption: SIGTERM, then submitit's USR2
    _start_requeued_job_now(job.job_id, deadline)
    result = job.results()[0]  # raises if the job failed; returns once the requeued job has finished

    steps = checkpoint.all_steps(run_dir)
    assert steps[-1] == 24 and len(steps) == 2 and 3 <= steps[0] < 24  # saved when stopped, then at the end
    raw = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert raw == list(range(1, 25))  # each step exactly once: none lost, none repeated
    launches = json.loads((run_dir / "run.json").read_text())["launches"]
    assert [launch["restarts"] for launch in launches] == [0, 1]
    assert result["step"] == 24
    assert result["loss"] == pytest.approx(straight.metrics["loss"], rel=1e-5)
    resumed = read_metrics(run_dir / "metrics.jsonl")
    for a, b in zip(read_metrics(tmp_path / "straight" / "metrics.jsonl"), resumed):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6), a["step"]


def _start_requeued_job_now(job_id: str, deadline: float) -> None:
    """SLURM holds a requeued job for about two minutes (its begin time); a test need not wait."""
    while time.time() < deadline:
        state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout
        if state.strip() == "PENDING":
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], capture_output=True)
            return
        time.sleep(0.2)


def test_a_failing_job_reports_its_error_and_log_path(slurm, tmp_path, capsys):
    code = pretrain_main(
        [
            "tiny_speednet",
            "--launcher",
            "slurm",
            "--cpus-per-task",
            "1",
            "--time",
            "5",
            "--wait",
            "--run-dir",
            str(tmp_path),
            "--set",
            f"data.shards={tmp_path / 'no-such-shards'}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "failed" in err and "no-such-shards" in err
    log = Path(err.split("log:")[1].strip().split()[0])
    assert log.exists() and "no-such-shards" in log.read_text()


# Preemption and time limits. Each job waits on files the job writes, always with a deadline, and is
# cancelled in the end whatever happened, so that a broken stop path fails the test instead of hanging it.


def _raw_steps(run_dir: Path) -> list[int]:
    """Every step logged, in order, repeats kept (read_metrics would hide a repeated step)."""
    path = run_dir / "metrics.jsonl"
    text = path.read_text() if path.exists() else ""
    return [json.loads(line)["step"] for line in text.splitlines(keepends=True) if line.endswith("\n")]


def _job_state(job_id: str) -> str:
    """RUNNING, COMPLETING, PENDING (requeued), COMPLETED, FAILED...: scontrol, as squeue skips some states."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True).stdout
    return next(iter(re.findall(r"\bJobState=(\S+)", out)), "")


ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "")


def _wait_until(condition, deadline: float, what: str) -> None:
    while not condition():
        if time.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _task_pid(job_id: str, rank: int) -> int:
    """The process of task ``rank`` of a running job: SLURM signals a job's tasks only all together, so
    one task is found by the environment slurmstepd gave it."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = dict(kv.split(b"=", 1) for kv in (proc / "environ").read_bytes().split(b"\0") if b"=" in kv)
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # not a process, or one that ended meanwhile
        if (
            b"submitit.core._submit" in cmd
            and b"python" in Path(cmd[0].decode()).name.encode()
            and env.get(b"SLURM_JOB_ID") == job_id.encode()
            and env.get(b"SLURM_PROCID") == str(rank).encode()
        ):
            found[int(proc.name)] = parent
    tops = [pid for pid, parent in found.items() if parent not in found]  # not a worker forked by the task
    assert len(tops) == 1, f"task {rank} of job {job_id}: processes {found}"
    return tops[0]


def _cancel(job_id: str) -> None:
    subprocess.run(["scancel", job_id], capture_output=True)


def _task_logs(job) -> str:
    return "".join(p.read_text() for p in sorted(job.paths.folder.glob(f"{job.job_id}_*_log.err")))


def _record_scontrol(folder: Path, monkeypatch) -> Path:
    """Put an ``scontrol`` first on PATH (jobs inherit it) that notes each call's task and arguments,
    then runs the real one: which task asked for a requeue is otherwise gone with the task."""
    real, calls = shutil.which("scontrol"), folder / "scontrol-calls"
    folder.mkdir()
    (folder / "scontrol").write_text(f'#!/bin/sh\necho "task=$SLURM_PROCID $*" >> {calls}\nexec {real} "$@"\n')
    (folder / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    return calls


def test_two_tasks_stop_at_one_step_when_only_one_task_is_signalled(slurm, synthetic_splits, tmp_path, monkeypatch):
    # Preemption reaches the tasks of a job at different moments; the extreme case is one task only.
    # Both must checkpoint the same step (else one waits in a collective the other never joins), task 0
    # alone requeues, and the resumed job runs every step exactly once.
    calls = _record_scontrol(tmp_path / "bin", monkeypatch)
    sets = tiny(
        "tiny_rspnet",
        synthetic_splits / "train",
        **{"optim.max_steps": 12, "data.batch_size": 2, "run.checkpoint_every": 1000},
    )
    run_dir = tmp_path / "run"
    job = launch.submit(
        load("tiny_rspnet", sets),
        run_dir,
        launcher="slurm",
        tasks_per_node=2,
        cpus_per_task=1,
        time_min=10,
        max_requeues=2,
    )
    try:
        deadline = time.time() + 300
        _wait_until(lambda: len(_raw_steps(run_dir)) >= 2 or _job_state(job.job_id) in ENDED, deadline, "step 2")
        os.kill(_task_pid(job.job_id, 1), signal.SIGTERM)
        _wait_until(lambda: _job_state(job.job_id) in ("PENDING", *ENDED), deadline, "the requeue")
        assert _job_state(job.job_id) == "PENDING", "not requeued: " + _task_logs(job)[-3000:]
        stop = checkpoint.all_steps(run_dir)
        assert len(stop) == 1 and 2 <= stop[0] < 12, stop  # one checkpoint: the step both tasks stopped at
        _start_requeued_job_now(job.job_id, deadline)
        _wait_until(lambda: _job_state(job.job_id) in ENDED, deadline, "the requeued job to finish")
        result = job.results()[0]
    finally:
        _cancel(job.job_id)

    assert result["step"] == 12
    assert checkpoint.all_steps(run_dir) == [stop[0], 12]
    assert _raw_steps(run_dir) == list(range(1, 13))  # each step exactly once: none lost, none repeated
    launches = json.loads((run_dir / "run.json").read_text())["launches"]
    assert [(launch["restarts"], launch["processes"]) for launch in launches] == [(0, 2), (1, 2)]
    # one requeue, by task 0, of the step that was saved
    requeues = [line for line in calls.read_text().splitlines() if " requeue " in f"{line} "]
    assert requeues == [f"task=0 requeue {job.job_id}"]
    assert f"requeued job {job.job_id} after step {stop[0]} (restart 1 of at most 2)" in job.paths.stderr.read_text()
    assert _task_logs(job).count("requeued job") == 1


def test_time_limit_signal_requeues_until_max_requeues_runs_out(slurm, synthetic_splits, tmp_path, capsys):
    # USR2 is what --signal=USR2@120 sends to every task before the time limit (scancel without
    # --batch signals the tasks, as the time limit does). With --max-requeues 1 the first stop
    # requeues and the second fails the job with a message; each stop leaves a checkpoint of its step.
    sets = tiny("tiny_rspnet", synthetic_splits / "train", **{"optim.max_steps": 500, "run.checkpoint_every": 1000})
    run_dir = tmp_path / "run"
    job = launch.submit(
        load("tiny_rspnet", sets), run_dir, launcher="slurm", cpus_per_task=1, time_min=10, max_requeues=1
    )
    usr2 = ["scancel", "--signal=USR2", job.job_id]
    try:
        deadline = time.time() + 300
        _wait_until(lambda: len(_raw_steps(run_dir)) >= 2 or _job_state(job.job_id) in ENDED, deadline, "step 2")
        subprocess.run(usr2, check=True)
        _wait_until(lambda: _job_state(job.job_id) in ("PENDING", *ENDED), deadline, "the requeue")
        assert _job_state(job.job_id) == "PENDING", "not requeued: " + _task_logs(job)[-3000:]
        first = checkpoint.all_steps(run_dir)
        assert len(first) == 1 and first[0] >= 2 and _raw_steps(run_dir) == list(range(1, first[0] + 1))
        _start_requeued_job_now(job.job_id, deadline)
        # the restarted run has installed its handler once it logs a step
        _wait_until(
            lambda: len(_raw_steps(run_dir)) >= first[0] + 2 or _job_state(job.job_id) in ENDED, deadline, "the restart"
        )
        subprocess.run(usr2, check=True)
        _wait_until(lambda: _job_state(job.job_id) in ("PENDING", *ENDED), deadline, "the job to end")
        assert _job_state(job.job_id) == "FAILED", "requeued more than --max-requeues 1 times"
        code = launch.wait(job)
    finally:
        _cancel(job.job_id)

    steps = checkpoint.all_steps(run_dir)
    assert len(steps) == 2 and steps[0] == first[0] < steps[1] < 500
    assert _raw_steps(run_dir) == list(range(1, steps[1] + 1))  # each step once, up to the second stop
    launches = json.loads((run_dir / "run.json").read_text())["launches"]
    assert [launch["restarts"] for launch in launches] == [0, 1]
    message = (
        f"stopped 2 times, more than --max-requeues 1; checkpoint of step {steps[1]} in {run_dir.resolve()}/checkpoints"
    )
    assert code == 1
    assert (
        f"error: job {job.job_id} failed: RuntimeError: {message}\n  log: {job.paths.stderr}\n"
        in capsys.readouterr().err
    )
    assert message in job.paths.stderr.read_text()
