"""Fine-tuning through submitit on a real one-node SLURM (the ``slurm`` fixture): one job per
official split, each tested inside its job, the mean written by whichever ends last."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("nvidia.dali")

from jobs.finetune.__main__ import main  # noqa: E402
from jobs.finetune.results import mean_over_folds  # noqa: E402
from tests.jobs.finetune.test_finetune import TINY  # noqa: E402

pytestmark = pytest.mark.slurm


def test_folds_as_slurm_jobs_test_themselves_and_write_the_mean(slurm, synthetic_splits, tiny_checkpoint, tmp_path):
    for fold in (1, 2):
        (tmp_path / f"data-fold{fold}").symlink_to(synthetic_splits)
    run = tmp_path / "run"
    launcher = ["--launcher", "slurm", "--cpus-per-task", "1", "--time", "10", "--wait"]
    args = [str(tiny_checkpoint), "--data", str(tmp_path / "data-fold{fold}"), "--folds", "1,2", "--run-dir", str(run)]
    assert main(args + TINY + launcher) == 0
    summary = json.loads((run / "results.json").read_text())
    folds = {int(f): json.loads((run / f"fold-{f}" / "results.json").read_text()) for f in ("1", "2")}
    assert summary["pending"] == [] and summary["mean"] == mean_over_folds(folds)
    for fold, result in folds.items():
        assert result["fold"] == fold and result["steps"] == 3 and result["clips"] == 2 * result["videos"]
        launches = json.loads((run / f"fold-{fold}" / "run.json").read_text())["launches"]
        assert launches[0]["cluster"] == "slurm" and launches[0]["job_id"]
