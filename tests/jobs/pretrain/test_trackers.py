"""Experiment trackers (jobs/pretrain/trackers.py): ``--report-to`` read and checked before training,
and a short run's scalars in TensorBoard's event files (through Accelerate) beside metrics.jsonl."""

from __future__ import annotations

import importlib.util

import pytest

from jobs.finetune.__main__ import main as finetune_main
from jobs.pretrain import trackers
from jobs.pretrain.__main__ import main as pretrain_main
from jobs.pretrain.config import load
from jobs.pretrain.logbook import read_metrics
from jobs.pretrain.loop import train
from pipeline import logs
from tests.support.configs import tiny

# 3 steps of tiny SpeedNet at 8 frames, 32 px, 4 channels: seconds
QUICK = {
    "optim.max_steps": 3,
    "data.plan_options": "{ T = 8 }",
    "data.augment": '{ recipe = "speednet", speednet_sizes = [32, 32] }',
    "model.backbone_options": "{ width = 4, temporal_stride = false }",
}


def _missing_tracker() -> str:
    missing = [name for name in ("wandb", "mlflow") if importlib.util.find_spec(trackers.PACKAGES[name]) is None]
    if not missing:
        pytest.skip("wandb and mlflow are both installed")
    return missing[0]


def test_report_to_takes_repeats_and_commas_once_each_and_none_alone():
    assert trackers.parse_report_to(["tensorboard"]) == ("tensorboard",)
    assert trackers.parse_report_to(["tensorboard,wandb", "mlflow", " wandb"]) == ("tensorboard", "wandb", "mlflow")
    assert trackers.parse_report_to(["none"]) == ()
    with pytest.raises(ValueError, match="unknown tracker 'neptune'"):
        trackers.parse_report_to(["tensorboard,neptune"])
    with pytest.raises(ValueError, match="cannot be combined"):
        trackers.parse_report_to(["none", "tensorboard"])
    assert trackers.from_arguments(None) == ("tensorboard",)


def test_a_tracker_that_is_not_installed_is_one_line_naming_the_package_before_training(tmp_path, capsys):
    name = _missing_tracker()
    with pytest.raises(ValueError) as refused:
        trackers.require(["tensorboard", name])
    assert str(refused.value) == f"--report-to {name} needs the {name} package: pip install {name}"
    run = tmp_path / "run"
    for main, args in (
        (pretrain_main, ["tiny_speednet", "--set", f'data.shards="{tmp_path}"']),
        (
            pretrain_main,
            ["tiny_speednet", "--set", f'data.shards="{tmp_path}"', "--launcher", "local"],
        ),  # not submitted
        (finetune_main, ["none", "--data", str(tmp_path)]),
    ):
        assert main([*args, "--run-dir", str(run), "--report-to", f"tensorboard,{name}"]) == 2
        assert capsys.readouterr().err == f"error: {refused.value}\n"
    assert not run.exists()  # refused before anything was written


def test_the_config_goes_to_trackers_as_flat_scalars():
    config = {"optim": {"lr": 0.1, "milestones": [10, 20]}, "model": {"init": None, "options": {"dim": 16}}}
    assert trackers.flat_config(config) == {
        "optim.lr": 0.1,
        "optim.milestones": "[10, 20]",
        "model.init": "null",
        "model.options.dim": 16,
    }


def test_a_short_run_logs_its_scalars_to_tensorboard_and_jsonl_and_progress_as_lines(
    synthetic_splits, tmp_path, capsys
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = load("tiny_speednet", tiny("tiny_speednet", synthetic_splits / "train", **QUICK))
    logs.configure()
    train(config, tmp_path / "run", progress=True)
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3]

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert {"loss", "speed_acc", "lr", "epoch", "clips_per_s"} <= set(events.Tags()["scalars"])
    for key in ("loss", "speed_acc", "lr"):
        logged = events.Scalars(key)
        assert [e.step for e in logged] == [1, 2, 3], key
        assert [e.value for e in logged] == pytest.approx([r[key] for r in records], rel=1e-6), key

    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("pretrain: ")]
    assert [line.split(",")[0] for line in lines] == [
        "pretrain: 1/3 (33%)",
        "pretrain: 2/3 (67%)",
        "pretrain: 3/3 (100%)",
    ]
    assert "loss=" in lines[-1] and "\r" not in out + err

    train(config, tmp_path / "untracked", progress=False, report_to=())
    assert (tmp_path / "untracked" / "metrics.jsonl").is_file()
    assert not (tmp_path / "untracked" / "tensorboard").exists()
