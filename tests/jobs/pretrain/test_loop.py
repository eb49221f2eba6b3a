"""The trainer end to end on synthetic shards: it learns, it resumes exactly after a kill, its
checkpoints load weights-only, and the evaluation reads them."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("nvidia.dali")

from jobs.evaluate.__main__ import main as evaluate_main  # noqa: E402
from jobs.evaluate.speed_test import speed_accuracy  # noqa: E402
from jobs.pretrain import checkpoint  # noqa: E402
from jobs.pretrain.__main__ import main as pretrain_main  # noqa: E402
from jobs.pretrain.config import load  # noqa: E402
from jobs.pretrain.logbook import read_metrics  # noqa: E402
from jobs.pretrain.loop import train  # noqa: E402
from models.trained import load_trained  # noqa: E402
from tests.support.configs import sets_args, tiny  # noqa: E402
from tests.support.paths import REPO  # noqa: E402
from tests.support.ranks import (
    assert_ranks_hold_the_same_weights,
    assert_ranks_split_each_epoch,  # noqa: E402
    rank_records,
    shard_keys,
)


def test_rspnet_killed_and_resumed_logs_the_same_losses_as_an_uninterrupted_run(synthetic_splits, tmp_path):
    shards = synthetic_splits / "train"
    sets = tiny("tiny_rspnet", shards, **{"optim.max_steps": 14, "optim.grad_accum": 2, "run.checkpoint_every": 3})
    train(load("tiny_rspnet", sets), tmp_path / "straight", progress=False)
    straight = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    assert [r["step"] for r in straight] == list(range(1, 15))

    run_dir = tmp_path / "killed"
    args = [sys.executable, "-m", "jobs.pretrain", "tiny_rspnet", "--run-dir", str(run_dir), "--no-progress"]
    args += sets_args(sets)
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    assert pretrain_main(["tiny_rspnet", "--run-dir", str(run_dir), "--resume", "--no-progress"] + sets_args(sets)) == 0
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
    sets = tiny(
        "tiny_speednet",
        shards,
        **{"optim.max_steps": 120, "optim.lr": 0.1, "run.checkpoint_every": 60, "data.batch_size": 8},
    )
    train(load("tiny_speednet", sets), tmp_path, progress=False)
    losses = [r["loss"] for r in read_metrics(tmp_path / "metrics.jsonl")]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < first - 0.02, losses
    path = checkpoint.latest(tmp_path)
    assert path.name == "step-00000120.pt"
    state = torch.load(path, weights_only=True)
    assert state["step"] == 120 and state["loader"]["seed"] == 0
    assert (
        evaluate_main(
            [str(path), "speed", "--shards", str(synthetic_splits / "test"), "--size", "64", "--frames", "16"]
            + ["--positions", "2", "--json"]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["clips"] == 2 * 2 * 12  # 2 positions x (1x, 2x) x 12 videos
    # the command scores the checkpoint's own network: the same accuracy as scoring it directly
    model = load_trained(path).pretext
    assert (
        result["speed_accuracy"]
        == speed_accuracy(model.net, synthetic_splits / "test", T=16, size=64, positions=2)["speed_accuracy"]
    )
    # The scoring itself: a network that always says "sped up" is right on exactly the sped-up half,
    # one that reads the truth off the clip's motion would be right on all.
    always = speed_accuracy(lambda v: torch.ones(len(v)), synthetic_splits / "test", T=16, size=64, positions=2)
    assert always["speed_accuracy"] == 0.5 and always["clips"] == 48
    truth = speed_accuracy(_frame_step_oracle, synthetic_splits / "test", T=16, size=64, positions=2)
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


@pytest.fixture(scope="module")
def two_process_run(synthetic_splits, tmp_path_factory) -> tuple[Path, str]:
    """Tiny RSPNet for one epoch (24 videos: 2 steps of 6 per rank) in two gloo processes launched by
    submitit's local executor, each writing its debug record; the run folder and what was printed."""
    run_dir = tmp_path_factory.mktemp("two-processes")
    sets = tiny("tiny_rspnet", synthetic_splits / "train", **{"optim.max_steps": 2, "data.batch_size": 6})
    with pytest.MonkeyPatch.context() as env, contextlib.redirect_stdout(io.StringIO()) as out:
        env.setenv("PRETRAIN_RANK_RECORD", "1")  # the job's processes inherit the environment
        code = pretrain_main(
            ["tiny_rspnet", "--launcher", "local", "--tasks-per-node", "2", "--wait", "--run-dir", str(run_dir)]
            + sets_args(sets)
        )
    assert code == 0, out.getvalue()
    return run_dir, out.getvalue()


def test_local_launcher_runs_two_gloo_processes_through_submitit(two_process_run):
    run_dir, out = two_process_run
    assert "finished: step=2" in out
    launch = json.loads((run_dir / "run.json").read_text())["launches"][0]
    assert launch["processes"] == 2 and launch["cluster"] == "local"
    # Both processes trained, each seeing a world of two (not two worlds of one).
    assert [(r[0]["start"], r[0]["world"]) for r in rank_records(run_dir, 2)] == [(0, 2), (0, 2)]
    state = torch.load(checkpoint.path_for(run_dir, 2), weights_only=True)
    assert state["world"] == 2 and state["loader"] == {"epoch": 0, "step": 2, "seed": 0}


def test_two_processes_read_disjoint_samples_that_cover_the_epoch(two_process_run, synthetic_splits):
    records = rank_records(two_process_run[0], 2)
    assert len(shard_keys(synthetic_splits / "train")) == 24  # so 2 ranks x 2 steps x 6 videos is one epoch
    assert_ranks_split_each_epoch(records, shard_keys(synthetic_splits / "train"), batch_size=6)


def test_two_processes_hold_identical_weights_after_every_step(two_process_run):
    assert_ranks_hold_the_same_weights(rank_records(two_process_run[0], 2), steps=2)


def test_two_processes_draw_different_clips_and_augmentation(two_process_run):
    # Each rank's plans and crops come from one generator per (seed, epoch, rank, step), plans first:
    # ranks that drew the same frame indices (all videos here have one length) drew the same crops.
    ranks = [[e["indices"] for e in record if "keys" in e] for record in rank_records(two_process_run[0], 2)]
    assert len(ranks[0]) == len(ranks[1]) == 2
    for step, (a, b) in enumerate(zip(*ranks)):
        assert a != b, f"step {step}: both ranks drew the same clips"


def test_resume_refuses_a_checkpoint_written_by_another_number_of_processes(
    two_process_run, synthetic_splits, tmp_path, capsys
):
    shutil.copytree(two_process_run[0] / "checkpoints", tmp_path / "checkpoints")
    sets = tiny("tiny_rspnet", synthetic_splits / "train", **{"optim.max_steps": 4, "data.batch_size": 6})
    assert (
        pretrain_main(["tiny_rspnet", "--run-dir", str(tmp_path), "--resume", "--no-progress"] + sets_args(sets)) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"error: {checkpoint.path_for(tmp_path, 2)} was written by 2 processes, this run has 1: "
        "the data order would not continue where it stopped"
    )
    assert checkpoint.all_steps(tmp_path) == [2] and not (tmp_path / "metrics.jsonl").exists()


def test_speednet_stopped_at_a_checkpoint_and_resumed_logs_the_same_losses_as_an_uninterrupted_run(
    synthetic_splits, tmp_path
):
    # 24 videos in batches of 4 are 6 steps an epoch: stopped at step 4, the resumed run continues
    # mid-epoch and then crosses into the next one. 8 frames at 32 px, 4 channels: seconds, not minutes.
    sets = tiny(
        "tiny_speednet",
        synthetic_splits / "train",
        **{
            "optim.max_steps": 8,
            "run.checkpoint_every": 1000,
            "data.plan_options": "{ T = 8 }",
            "data.augment": '{ recipe = "speednet", speednet_sizes = [32, 32] }',
            "model.backbone_options": "{ width = 4, temporal_stride = false }",
        },
    )
    config = load("tiny_speednet", sets)
    train(config, tmp_path / "straight", progress=False)
    polls = iter(range(1, 100))  # should_stop is polled once after every step: stop after the 4th
    first = train(config, tmp_path / "resumed", progress=False, should_stop=lambda: next(polls) >= 4)
    assert first.stopped and first.step == 4 and checkpoint.all_steps(tmp_path / "resumed") == [4]
    second = train(config, tmp_path / "resumed", resume=True, progress=False)
    assert second.step == 8 and not second.stopped

    straight = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    resumed = read_metrics(tmp_path / "resumed" / "metrics.jsonl")
    assert [r["step"] for r in straight] == [r["step"] for r in resumed] == list(range(1, 9))
    assert [r["epoch"] for r in resumed] == [0] * 6 + [1] * 2
    for a, b in zip(straight, resumed):
        for key in ("loss", "speed_acc", "lr"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), (a["step"], key)
    # And it ends with the same weights (a lost momentum buffer shows here more than in the loss).
    ends = [
        torch.load(checkpoint.path_for(tmp_path / run, 8), weights_only=True)["model"]
        for run in ("straight", "resumed")
    ]
    for name, tensor in ends[0].items():
        torch.testing.assert_close(ends[1][name], tensor, rtol=1e-5, atol=1e-6, msg=name)
