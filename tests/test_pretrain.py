"""The trainer end to end on synthetic shards: it learns, it resumes exactly after a kill, its
checkpoints load weights-only, and the evaluation reads them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("nvidia.dali")

from jobs import checkpoint  # noqa: E402
from jobs.config import load  # noqa: E402
from jobs.evaluate import main as evaluate_main, speed_accuracy  # noqa: E402
from jobs.logbook import read_metrics  # noqa: E402
from jobs.pretrain import main as pretrain_main, train  # noqa: E402
from tiny_configs import tiny  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_rspnet_killed_and_resumed_logs_the_same_losses_as_an_uninterrupted_run(synthetic_splits, tmp_path):
    shards = synthetic_splits / "train"
    sets = tiny("tiny_rspnet", shards, **{"optim.max_steps": 14, "optim.grad_accum": 2, "run.checkpoint_every": 3})
    train(load("tiny_rspnet", sets), tmp_path / "straight", progress=False)
    straight = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    assert [r["step"] for r in straight] == list(range(1, 15))

    run_dir = tmp_path / "killed"
    args = [sys.executable, "-m", "jobs.pretrain", "tiny_rspnet", "--run-dir", str(run_dir), "--no-progress"]
    args += [a for s in sets for a in ("--set", s)]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if checkpoint.all_steps(run_dir) and checkpoint.all_steps(run_dir)[-1] >= 6:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    killed_at = checkpoint.all_steps(run_dir)[-1]
    assert 6 <= killed_at < 14
    assert pretrain_main(["tiny_rspnet", "--run-dir", str(run_dir), "--resume", "--no-progress"]
                         + [a for s in sets for a in ("--set", s)]) == 0
    resumed = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in resumed] == list(range(1, 15))
    for a, b in zip(straight, resumed):
        for key in ("loss", "loss_m", "loss_a", "lr", "epoch"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (a["step"], key)
    launches = json.loads((run_dir / "run.json").read_text())["launches"]
    assert [launch["resume"] for launch in launches] == [False, True]
    assert (run_dir / "curves.png").stat().st_size > 0 and (run_dir / "tensorboard").is_dir()


def test_speednet_loss_falls_and_the_checkpoint_evaluates(synthetic_splits, tmp_path, capsys):
    shards = synthetic_splits / "train"
    sets = tiny("tiny_speednet", shards, **{"optim.max_steps": 120, "optim.lr": 0.1, "run.checkpoint_every": 60,
                                            "data.batch_size": 8})
    train(load("tiny_speednet", sets), tmp_path, progress=False)
    losses = [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < first - 0.02, losses
    path = checkpoint.latest(tmp_path)
    assert path.name == "step-00000120.pt"
    state = torch.load(path, weights_only=True)
    assert state["step"] == 120 and state["loader"]["seed"] == 0
    assert evaluate_main([str(path), "speed", "--shards", str(synthetic_splits / "test"), "--size", "64",
                          "--frames", "16", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["clips"] == 2 * 12 and 0.0 <= result["speed_accuracy"] <= 1.0
    # The scoring itself: a network that always says "sped up" is right on exactly the sped-up half,
    # one that reads the truth off the clip's motion would be right on all.
    always = speed_accuracy(lambda v: torch.ones(len(v)), synthetic_splits / "test", T=16, size=64)
    assert always["speed_accuracy"] == 0.5 and always["clips"] == 24
    truth = speed_accuracy(_frame_step_oracle, synthetic_splits / "test", T=16, size=64)
    assert truth["speed_accuracy"] > 0.9


def _frame_step_oracle(video: torch.Tensor) -> torch.Tensor:
    """Logit > 0 when consecutive frames differ more than the pair's mean: 2x clips move twice as
    far per frame as the same stretch at 1x, and each video's pair sits in the same batch."""
    motion = (video[:, :, 1:] - video[:, :, :-1]).abs().mean(dim=(1, 2, 3, 4))
    return torch.stack([m - pair.mean() for m, pair in zip(motion, motion.view(-1, 2).repeat_interleave(2, 0))])


def test_pretrain_cli_errors_are_one_line_and_nonzero(tmp_path, capsys):
    assert pretrain_main(["no_such_config"]) == 2
    assert pretrain_main(["tiny_speednet", "--set", "data.shards="]) == 2
    assert pretrain_main(["tiny_speednet", "--resume"]) == 2
    assert pretrain_main(["tiny_speednet", "--set", "optim.nonsense=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("error: ") for line in err)


def test_local_launcher_runs_two_gloo_processes_through_submitit(synthetic_splits, tmp_path, capsys):
    sets = tiny("tiny_rspnet", synthetic_splits / "train", **{"optim.max_steps": 2, "data.batch_size": 2})
    assert pretrain_main(["tiny_rspnet", "--launcher", "local", "--tasks-per-node", "2", "--wait",
                          "--run-dir", str(tmp_path)] + [a for s in sets for a in ("--set", s)]) == 0
    assert "finished: step=2" in capsys.readouterr().out
    launch = json.loads((tmp_path / "run.json").read_text())["launches"][0]
    assert launch["processes"] == 2 and launch["cluster"] == "local"
