"""jobs.finetune.results: the mean over official splits, and the summary the fold jobs share."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.finetune.results import fold_dir, mean_over_folds, summarise, table


def _result(clip1, clip5, video1, video5):
    return {"clip": {"top1": clip1, "top5": clip5}, "video": {"top1": video1, "top5": video5}, "classes": 3}


def test_the_three_fold_mean_by_hand():
    folds = {1: _result(0.5, 0.9, 0.6, 1.0), 2: _result(0.2, 0.6, 0.3, 0.7), 3: _result(0.2, 0.6, 0.3, 0.7)}
    mean = mean_over_folds(folds)
    assert mean["clip"] == pytest.approx({"top1": 0.3, "top5": 0.7})
    assert mean["video"] == pytest.approx({"top1": 0.4, "top5": 0.8})


@given(st.lists(st.tuples(*[st.floats(0, 1)] * 4), min_size=1, max_size=5))
def test_the_mean_lies_within_the_folds_and_equals_each_when_they_agree(values):
    folds = {i + 1: _result(*v) for i, v in enumerate(values)}
    mean = mean_over_folds(folds)
    for level in ("clip", "video"):
        for k in ("top1", "top5"):
            column = [r[level][k] for r in folds.values()]
            assert min(column) - 1e-12 <= mean[level][k] <= max(column) + 1e-12
    same = mean_over_folds({f: folds[1] for f in (1, 2, 3)})
    assert same["video"] == pytest.approx(folds[1]["video"])


def test_summary_waits_for_every_fold_before_the_mean(tmp_path):
    def finish(fold, result):
        fold_dir(tmp_path, fold).mkdir(parents=True, exist_ok=True)
        (fold_dir(tmp_path, fold) / "results.json").write_text(json.dumps(result))

    finish(2, _result(0.5, 0.9, 0.6, 1.0))
    partial = summarise(tmp_path, [1, 2, 3])
    assert partial["pending"] == [1, 3] and "mean" not in partial and list(partial["folds"]) == ["2"]
    finish(1, _result(0.1, 0.5, 0.2, 0.6))
    finish(3, _result(0.3, 0.7, 0.4, 0.8))
    whole = summarise(tmp_path, [1, 2, 3])
    assert whole == json.loads((tmp_path / "results.json").read_text())
    assert whole["pending"] == [] and whole["mean"]["video"]["top1"] == pytest.approx(0.4)
    printed = table({"split 1": whole["folds"]["1"], "mean": whole["mean"]}).splitlines()
    assert printed[1].split() == ["split", "1", "10.0", "50.0", "20.0", "60.0"]
    assert printed[2].split() == ["mean", "30.0", "70.0", "40.0", "80.0"]
