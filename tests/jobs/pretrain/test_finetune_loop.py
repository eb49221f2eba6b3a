"""The pretraining loop trains the fine-tuning task (``model.method = "classifier"``) unchanged:
supervised clips of labelled shards, the backbone from a checkpoint, exact resume."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("nvidia.dali")

from jobs.pretrain import checkpoint  # noqa: E402
from jobs.pretrain.config import load  # noqa: E402
from jobs.pretrain.logbook import read_metrics  # noqa: E402
from jobs.pretrain.loop import train  # noqa: E402
from models.trained import read_checkpoint  # noqa: E402
from tests.support.configs import tiny  # noqa: E402


def _finetune(shards, init, steps: int, **extra) -> list[str]:
    classes = len(json.loads((shards / "manifest.json").read_text())["labels"])
    return tiny(
        "tiny_rspnet",
        shards,
        **{
            "model.method": '"classifier"',
            "model.options": f"{{ classes = {classes} }}",
            "model.init": f'"{init}"',
            "data.plan_options": "{ T = 8 }",
            "data.augment": '{ recipe = "rspnet", base = 40, out = 32, scale = [0.25, 1.0], jitter_p = 0.0, '
            "gray_p = 0.0, blur_p = 0.0 }",
            "optim.max_steps": steps,
            "optim.lr": 0.01,
            **extra,
        },
    )


def test_a_killed_fine_tune_resumes_exactly(synthetic_splits, tiny_checkpoint, tmp_path):
    shards = synthetic_splits / "train"
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    # 24 videos in batches of 4: 6 steps an epoch, so a milestone at epoch 0.5 is step 3
    config = load("tiny_rspnet", _finetune(shards, tiny_checkpoint, 4, **{"optim.milestones": "[0.5]"}))
    train(config, whole, progress=False)
    answers = iter([False, True])  # a stop request (preemption) after the second step
    stopped = train(config, parts, progress=False, should_stop=lambda: next(answers))
    assert stopped.stopped and stopped.step == 2
    train(config, parts, resume=True, progress=False)
    a, b = read_metrics(whole / "metrics.jsonl"), read_metrics(parts / "metrics.jsonl")
    assert [r["step"] for r in a] == [1, 2, 3, 4] and {"loss", "acc"} <= set(a[-1])
    assert [r["loss"] for r in a] == pytest.approx([r["loss"] for r in b], abs=1e-6)
    lrs = [r["lr"] for r in a]  # the lr of each logged step: x 0.1 from step 3 (the fourth) on
    assert lrs[:3] == [lrs[0]] * 3 and lrs[3] == pytest.approx(0.1 * lrs[0]) and [r["lr"] for r in b] == lrs
    assert read_checkpoint(checkpoint.path_for(whole, 4))["config"]["model"]["method"] == "classifier"
