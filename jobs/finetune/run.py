"""One fine-tuning run, start to end: the pretraining loop on the classifier config, then the test
of the last checkpoint (``jobs.evaluate.recognition``), written to ``RUN/results.json``. The same
function runs in this process (``--launcher none``) and inside a submitted job (``launch.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from jobs.evaluate.recognition import recognition_accuracy
from jobs.pretrain import checkpoint, trackers
from jobs.pretrain.config import Config
from jobs.pretrain.loop import Outcome, train
from models.trained import load_trained
from pipeline.atomic import atomic_write_text
from pipeline.device import torch_device


def finetune(
    config: Config,
    run_dir: Path,
    test_shards: Path,
    *,
    describe: dict,
    resume: bool = False,
    progress: bool = True,
    should_stop: Callable[[], bool] | None = None,
    launch: dict | None = None,
    test: bool = True,
    report_to: Iterable[str] = trackers.DEFAULT,
) -> tuple[Outcome, dict | None]:
    """Train ``config`` into ``run_dir``, then (unless stopped, or ``test`` is False: the other
    ranks of a multi-process job) score ``test_shards`` with ``config.data.test_clips`` clips per
    video. The result, ``describe`` (what was fine-tuned on what) first, goes to results.json.
    ``report_to``: the experiment trackers of the training (``jobs.pretrain.trackers``)."""
    outcome = train(
        config,
        run_dir,
        resume=resume,
        progress=progress,
        should_stop=should_stop,
        launch=launch,
        report_to=report_to,
    )
    if outcome.stopped or not test:
        return outcome, None
    device = torch_device()
    classifier = load_trained(checkpoint.path_for(run_dir, outcome.step)).pretext.to(device)
    scores = recognition_accuracy(
        classifier,
        test_shards,
        T=config.data.plan_options.get("T", 16),
        size=config.data.augment.get("out", 112),
        clips=config.data.test_clips,
        device=device,
        progress=progress,
    )
    result = {**describe, "classes": config.model.options["classes"], "steps": outcome.step, **scores}
    atomic_write_text(Path(run_dir) / "results.json", json.dumps(result, indent=1) + "\n")
    return outcome, result
