"""Fine-tuning through submitit: the pretraining job (``jobs.pretrain.launch``: one task per GPU,
requeued from the last checkpoint on preemption) that also tests once training ends, on task 0,
and adds its fold to the run's summary (``results.summarise``)."""

from __future__ import annotations

from pathlib import Path

from jobs.finetune.results import LEVELS, summarise
from jobs.pretrain.config import from_dict
from jobs.pretrain.launch import PretrainJob
from jobs.pretrain.preemption import StopRequest


class FinetuneJob(PretrainJob):
    what = "finetune"

    def __init__(
        self, *args, test_shards: str, describe: dict, summary: tuple[str, list[int]] | None = None, **options
    ):
        super().__init__(*args, **options)
        self.test_shards, self.describe, self.summary = test_shards, describe, summary

    def work(self, stop: StopRequest, launch: dict, rank: int):
        from jobs.finetune.run import finetune  # imported in the job, after the process group exists

        outcome, result = finetune(
            from_dict(self.config),
            Path(self.run_dir),
            Path(self.test_shards),
            describe=self.describe,
            resume=True,
            progress=self.progress,
            should_stop=stop,
            launch=launch,
            test=rank == 0,
            report_to=self.report_to,
        )
        if result is None:
            return outcome, {"step": outcome.step}
        if self.summary is not None:
            summarise(Path(self.summary[0]), self.summary[1])
        flat = {f"{level}_{k}": v for level in LEVELS for k, v in result[level].items()}
        return outcome, {"step": outcome.step, **flat}
