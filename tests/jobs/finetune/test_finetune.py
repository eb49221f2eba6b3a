"""``python -m jobs.finetune``: a pretrained backbone fine-tuned on labelled shards, then tested."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("nvidia.dali")

from jobs.finetune.__main__ import main  # noqa: E402
from jobs.finetune.results import mean_over_folds  # noqa: E402
from jobs.pretrain.config import CONFIG_DIR  # noqa: E402

TINY = [
    "--set",
    "model.backbone_options={ width = 4 }",  # the tiny_checkpoint's backbone
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
    pretraining = str(CONFIG_DIR / "tiny_rspnet.toml")
    assert main(["none", "--data", str(synthetic_splits), "--config", pretraining, *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not the classifier" in err and err.count("\n") == 1


def test_a_checkpoint_of_another_architecture_is_refused_before_training(
    synthetic_splits, tiny_checkpoint, tmp_path, capsys
):
    run = tmp_path / "run"
    wide = [*TINY[2:], "--set", "model.backbone_options={ width = 8 }"]  # the tiny checkpoint has width 4
    assert main(["--init", str(tiny_checkpoint), "--data", str(synthetic_splits), "--run-dir", str(run), *wide]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'holds a r3d10 {"width": 4} backbone' in err and '{"width": 8}' in err
    assert "model.backbone_options={ width = 4 }" in err  # how to make it fit
    assert not run.exists()
    # a paper config names the backbones that fit it
    assert main([str(tiny_checkpoint), "--data", str(synthetic_splits), "--config", "rspnet_r3d18_ucf101", *TINY]) == 2
    assert "fine-tunes a r3d18" in capsys.readouterr().err


def test_folds_run_each_split_and_report_their_mean(synthetic_splits, tiny_checkpoint, tmp_path, capsys):
    for fold in (1, 2):  # two "official splits": the same shards under each split's name
        (tmp_path / f"data-fold{fold}").symlink_to(synthetic_splits)
    run = tmp_path / "run"
    data = str(tmp_path / "data-fold{fold}")
    args = [str(tiny_checkpoint), "--data", data, "--folds", "1,2", "--run-dir", str(run), *TINY]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == json.loads((run / "results.json").read_text()) and summary["pending"] == []
    folds = {int(f): json.loads((run / f"fold-{f}" / "results.json").read_text()) for f in ("1", "2")}
    assert {int(f): r for f, r in summary["folds"].items()} == folds
    assert folds[2]["data"].endswith("data-fold2") and folds[2]["fold"] == 2
    assert summary["mean"] == mean_over_folds(folds)
    # resumed: finished splits are kept, not trained again; the table prints each split and the mean
    assert main([a for a in args if a != "--json"] + ["--resume"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("finished before, kept") == 2  # INFO: on stdout (pipeline.logs)
    assert "split 1" in captured.out and "split 2" in captured.out and "mean" in captured.out
    # a data path without {fold}, and split numbers that are not: one line each
    assert main([str(tiny_checkpoint), "--data", str(synthetic_splits), "--folds", "1,2", *TINY]) == 2
    assert "{fold}" in capsys.readouterr().err
    assert main([str(tiny_checkpoint), "--data", data, "--folds", "1,x", *TINY]) == 2
    assert "not a list of split numbers" in capsys.readouterr().err


def _edited_copy(shards, out, edit):
    """``shards`` (train/ and test/) linked into ``out``, with ``edit`` applied to both manifests."""
    for split in ("train", "test"):
        (out / split).mkdir(parents=True)
        for part in (shards / split).iterdir():  # tars and their indexes
            if part.name != "manifest.json":
                (out / split / part.name).symlink_to(part)
        manifest = json.loads((shards / split / "manifest.json").read_text())
        edit(manifest)
        (out / split / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_classes_without_a_training_video_are_named(synthetic_splits, tmp_path, capsys):
    from jobs.finetune.setup import classes_of
    from pipeline import logs

    logs.configure()  # as the commands do: warnings to stderr
    # the same shards, with a class no video of the train split has
    data = _edited_copy(synthetic_splits, tmp_path / "data", lambda m: m["labels"].append("juggling"))
    assert classes_of(data)[-1] == "juggling"
    assert capsys.readouterr().err == "warning: classes without a training video: juggling\n"
    assert classes_of(synthetic_splits) and capsys.readouterr().err == ""


def test_shards_of_another_split_than_folds_says_are_refused(synthetic_splits, tiny_checkpoint, tmp_path, capsys):
    for fold in (1, 2):  # both folders hold split 1, as the shard job records it
        _edited_copy(synthetic_splits, tmp_path / f"ucf-fold{fold}", lambda m: m["settings"].update(fold=1))
    args = ["--data", str(tmp_path / "ucf-fold{fold}"), "--folds", "1,2", "--run-dir", str(tmp_path / "run")]
    assert main([str(tiny_checkpoint), *args, *TINY]) == 2
    assert capsys.readouterr().err.endswith("ucf-fold2 holds split 1 (its manifest), not split 2\n")
    assert not (tmp_path / "run").exists()  # refused before the first split trained
