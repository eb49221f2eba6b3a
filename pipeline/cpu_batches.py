"""The CPU path of ``VideoLoader``: on a host without a GPU, DALI's CPU decoder cannot seek and its
CPU operators are not vectorised, so each step is decoded with keyframe seeks (``pipeline.seek_decode``)
and augmented with torch (``pipeline.torch_augment``), from the same feeds the DALI graph reads.

Steps are a webdataset pipeline of composable stages, run in DataLoader worker processes::

    (epoch, step) of this rank ──split_by_worker──► map(StepWork): prepare ─► decode ─► augment ─► Batch

The rank's share of each epoch is already cut by ``pipeline.order`` (the seeded per-epoch order both
paths share); workers take every n-th step, and the DataLoader hands their results back in step
order. In training the steps run on from epoch to epoch, so the workers live across epochs and the
next epoch's first batches are ready when one ends. Shards are read by the sample offsets of their
index (``pipeline.shards``), not streamed: that seeded order needs any sample at any step.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial

import av
import numpy as np
import torch
import webdataset as wds

from pipeline.batches import Batch, PreparedBatch
from pipeline.seek_decode import BadStream, PlannedDecode
from pipeline.steps import StepPlanner
from pipeline.torch_augment import augment_sample

CHUNK_FRAMES = 64  # decoded frames held at once per sample: bounds memory on long sliding-window plans


@dataclass
class StepResult:
    """What a worker returns for one step: its batch (None when every sample was too short), the
    samples left out as too short, the samples it found undecodable (key, reason), and how many
    frames it decoded."""

    epoch: int
    step: int
    batch: Batch | None
    too_short: list[str]
    dropped: list[tuple[str, str]] = field(default_factory=list)
    decoded: int = 0


@dataclass
class StepWork:
    """One step, start to end: prepared by the planner, decoded, augmented, laid out as a ``Batch``."""

    planner: StepPlanner
    normalise_pixels: bool
    blur: bool
    threads: int = 1  # decoder threads per video (worker processes each decode one video at a time)

    def __call__(self, task: tuple[int, int]) -> StepResult:
        epoch, step = task
        dropped = []
        while True:  # once, plus once more per undecodable sample
            prepared = self.planner.prepare(epoch, step)
            if not prepared.feeds["encoded"]:
                return StepResult(epoch, step, None, prepared.too_short, dropped)
            try:
                video, decoded = self.clips(prepared)
            except Undecodable as bad:
                self.planner.bad_keys.add(bad.key)
                dropped.append((bad.key, f"undecodable: {bad.reason}"))
                continue
            return StepResult(epoch, step, Batch.from_clips(video, prepared.info), prepared.too_short, dropped, decoded)

    def clips(self, prepared: PreparedBatch) -> tuple[torch.Tensor | list[torch.Tensor], int]:
        """The batch's video, laid out as the DALI path lays it out (normalised float (N, C, T, H, W),
        or uint8 (N, T, H, W, C); one tensor per sample when sizes differ), and the frames decoded."""
        feeds, info, augment = prepared.feeds, prepared.info, self.planner.augment
        per_sample = info["clips_per_sample"]
        T = len(info["indices"][0])
        sizes = [tuple(int(v) for v in size) for size in feeds["size"]]
        if len(set(sizes)) == 1:  # one batch tensor; each sample writes its clips into its slice
            video = self._empty(sum(per_sample), T, sizes[0])
            first = np.cumsum([0] + per_sample[:-1])
            views = [video[f : f + k] for f, k in zip(first, per_sample)]
        else:  # previews of stored frames: sizes differ
            video = views = [self._empty(k, T, size) for k, size in zip(per_sample, sizes)]
        decoded = 0
        for i, view in enumerate(views):
            mine = {name: values[i] for name, values in feeds.items()}
            try:
                decode = PlannedDecode(mine["encoded"].tobytes(), mine["frames"], info["video_frames"][i], self.threads)
                augment_sample(
                    decode.chunks(CHUNK_FRAMES),
                    mine,
                    view.transpose(1, 2) if self.normalise_pixels else view,  # (clips, T, ...)
                    antialias=augment.antialias,
                    colour=augment.colour,
                    blur_kernel=augment.blur_kernel if self.blur else None,
                )
            except (av.error.FFmpegError, BadStream) as error:
                key = info["keys"][int(np.sum(per_sample[:i]))]
                raise Undecodable(key, str(error).splitlines()[0][:200]) from error
            decoded += decode.decoded
        return video, decoded

    def _empty(self, clips: int, T: int, size: tuple[int, int]) -> torch.Tensor:
        if self.normalise_pixels:
            return torch.empty((clips, 3, T, *size), dtype=torch.float32)
        return torch.empty((clips, T, *size, 3), dtype=torch.uint8)


class Undecodable(Exception):
    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


def _leave_signals_to_the_trainer(_worker: int) -> None:
    """Workers ignore stop signals: SLURM's preemption SIGTERM and SIGUSR2, and Ctrl-C, reach every
    process of the job, and a worker killed by one would fail the trainer before it can checkpoint.
    The trainer handles them and shuts the workers down; they also exit when it dies."""
    for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)


def cpu_batches(loader) -> Iterator[Batch]:
    """The rest of ``loader``'s epoch from (``loader.epoch``, ``loader.step``); keeps its step,
    ``dropped`` and bad keys."""
    due = (loader.epoch, loader.step)
    if loader._stream is None or loader._stream.due != due:  # first use, or moved by load_state_dict
        loader._stream = _Stream(loader)
    stream = loader._stream
    for _ in range(loader.step, loader.steps_per_epoch):
        result = next(stream.results)
        if (result.epoch, result.step) != stream.due:  # the DataLoader returns results in task order
            raise RuntimeError(f"step {result.epoch, result.step} arrived where {stream.due} was due")
        stream.advance(loader.steps_per_epoch)
        for key, reason in result.dropped:
            if key not in loader.bad_keys:  # several workers may meet the same bad sample
                loader.drop([key], reason)
        loader.count_too_short(result.too_short)
        loader.decoded_frames += result.decoded
        if result.batch is not None:
            loader.step = result.step + 1
            yield result.batch
    if not loader.training:  # evaluation reads its epoch once: no workers left waiting
        loader._stream = None


class _Stream:
    """The steps from one (epoch, step) on, worked in DataLoader workers: through every later epoch
    in training, to the end of the epoch otherwise. ``due`` is the next result's (epoch, step)."""

    def __init__(self, loader):
        epoch, step, per_epoch = loader.epoch, loader.step, loader.steps_per_epoch
        tasks = (
            partial(_tasks, epoch, step, per_epoch)
            if loader.training
            else partial(iter, [(epoch, s) for s in range(step, per_epoch)])
        )
        single = not loader.training and per_epoch - step <= 1
        workers = 0 if single else loader.num_threads  # one batch: decoded here, not in a fork
        work = StepWork(
            loader.planner, loader.normalise_pixels, loader.blur, threads=loader.num_threads if single else 1
        )
        pipeline = wds.DataPipeline(tasks, wds.split_by_worker, wds.map(work))
        self.results = iter(
            wds.WebLoader(
                pipeline,
                batch_size=None,
                num_workers=workers,
                prefetch_factor=2 if workers else None,
                worker_init_fn=_leave_signals_to_the_trainer,
            )
        )
        self.due = (epoch, step)

    def advance(self, per_epoch: int) -> None:
        epoch, step = self.due
        self.due = (epoch, step + 1) if step + 1 < per_epoch else (epoch + 1, 0)


def _tasks(epoch: int, step: int, per_epoch: int) -> Iterator[tuple[int, int]]:
    while True:
        for s in range(step, per_epoch):
            yield epoch, s
        epoch, step = epoch + 1, 0
