"""``python -m jobs.finetune``: a pretrained backbone fine-tuned on labelled shards, then tested."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("nvidia.dali")

from jobs.finetune.__main__ import main  # noqa: E402

TINY = [
    "--set",
    "data.batch_size=4",
    "--set",
    "data.plan_options={ T = 8 }",
    "--set",
    "optim.max_steps=3",
    "--set",
    'data.augment={ recipe = "rspnet", base = 40, out = 32, scale = [0.25, 1.0], jitter_p = 0.0, '
    "gray_p = 0.0, blur_p = 0.0 }",
    "--test-clips",
    "2",
    "--no-progress",
    "--json",
]


def test_finetune_trains_from_the_checkpoint_and_reports_clip_and_video_accuracy(
    synthetic_splits, tiny_checkpoint, tmp_path, capsys
):
    run = tmp_path / "run"
    assert main([str(tiny_checkpoint), "--data", str(synthetic_splits), "--run-dir", str(run), *TINY]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((run / "results.json").read_text())
    labels = json.loads((synthetic_splits / "train" / "manifest.json").read_text())["labels"]
    test_videos = json.loads((synthetic_splits / "test" / "manifest.json").read_text())["ok"]
    assert printed["classes"] == len(labels) and printed["steps"] == 3
    assert printed["videos"] == test_videos and printed["clips"] == 2 * test_videos
    for level in ("clip", "video"):
        assert 0 <= printed[level]["top1"] <= printed[level]["top5"] <= 1
    saved = json.loads((run / "run.json").read_text())["config"]["model"]
    assert saved["method"] == "classifier" and saved["options"]["classes"] == len(labels)
    assert saved["init"] == str(tiny_checkpoint.resolve())  # the backbone came from the checkpoint


def test_finetune_from_random_weights_and_bad_input(synthetic_splits, tmp_path, capsys):
    assert main(["none", "--data", str(synthetic_splits), "--run-dir", str(tmp_path / "r"), *TINY]) == 0
    assert json.loads(capsys.readouterr().out)["init"] == "none"
    # a folder without shards, and a pretraining config: one line each, before any training
    assert main(["none", "--data", str(tmp_path), *TINY]) == 2
    assert "no manifest" in capsys.readouterr().err
    assert main(["none", "--data", str(synthetic_splits), "--config", "tiny_rspnet", *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not the classifier" in err and err.count("\n") == 1
