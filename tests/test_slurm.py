"""Pretraining and sharding through submitit on a real one-node SLURM (started by the ``slurm``
fixture): multi-task training, preemption with requeue and exact resume, errors, job arrays."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("nvidia.dali")

from jobs import checkpoint, launch_pretrain  # noqa: E402
from jobs.config import load  # noqa: E402
from jobs.logbook import read_metrics  # noqa: E402
from jobs.pretrain import main as pretrain_main, train  # noqa: E402
from jobs.shard.__main__ import main as shard_main  # noqa: E402
from tiny_configs import tiny  # noqa: E402

pytestmark = pytest.mark.slurm


def sets_args(sets: list[str]) -> list[str]:
    return [a for s in sets for a in ("--set", s)]


def test_two_task_pretraining_runs_to_the_end_with_gloo(slurm, synthetic_splits, tmp_path, capsys):
    sets = tiny("tiny_rspnet", synthetic_splits / "train", **{"optim.max_steps": 4, "data.batch_size": 2})
    code = pretrain_main(["tiny_rspnet", "--launcher", "slurm", "--tasks-per-node", "2", "--cpus-per-task", "1",
                          "--time", "10", "--run-dir", str(tmp_path), "--wait", "--no-progress"] + sets_args(sets))
    out = capsys.readouterr().out
    assert code == 0, out
    assert "submitted pretraining job" in out and "follow:" in out and "finished" in out
    launches = json.loads((tmp_path / "run.json").read_text())["launches"]
    assert launches[0]["processes"] == 2 and launches[0]["cluster"] == "slurm" and launches[0]["job_id"]
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4]
    assert checkpoint.all_steps(tmp_path)[-1] == 4


def test_preempted_job_is_requeued_and_ends_with_the_uninterrupted_loss(slurm, synthetic_splits, tmp_path):
    sets = tiny("tiny_rspnet", synthetic_splits / "train", **{"optim.max_steps": 24, "run.checkpoint_every": 1000})
    config = load("tiny_rspnet", sets)
    straight = train(config, tmp_path / "straight", progress=False)

    run_dir = tmp_path / "preempted"
    job = launch_pretrain.submit(config, run_dir, launcher="slurm", cpus_per_task=1, time_min=10, max_requeues=2)
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
    code = pretrain_main(["tiny_speednet", "--launcher", "slurm", "--cpus-per-task", "1", "--time", "5", "--wait",
                          "--run-dir", str(tmp_path), "--set", f"data.shards={tmp_path / 'no-such-shards'}"])
    err = capsys.readouterr().err
    assert code == 1
    assert "failed" in err and "no-such-shards" in err
    log = Path(err.split("log:")[1].strip().split()[0])
    assert log.exists() and "no-such-shards" in log.read_text()


def _comparable(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k != "created"}


def test_shard_job_array_on_slurm_writes_the_same_manifest_as_a_local_run(slurm, tmp_path):
    from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset

    root = tmp_path / "kinetics"
    make_kinetics_dataset(root, SyntheticConfig(videos_per_class={"train": 2, "val": 1, "test": 0}, duration_s=1.5))
    common = ["kinetics", "--root", str(root), "--splits", "train,val", "--videos-per-shard", "3", "--no-progress"]
    assert shard_main(common + ["--out", str(tmp_path / "local"), "--workers", "2"]) == 0
    assert shard_main(common + ["--out", str(tmp_path / "slurm"), "--workers", "1", "--executor", "slurm",
                                "--array-tasks", "3", "--time", "10"]) == 0
    for split in ("train", "val"):
        local = json.loads((tmp_path / "local" / split / "manifest.json").read_text())
        array = json.loads((tmp_path / "slurm" / split / "manifest.json").read_text())
        assert _comparable(local) == _comparable(array)
        for shard in local["shards"]:
            a = (tmp_path / "local" / split / shard["name"]).read_bytes()
            assert a == (tmp_path / "slurm" / split / shard["name"]).read_bytes()
