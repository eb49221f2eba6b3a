"""One step's batch, prepared in Python: the DALI feeds and the batch dict that describes them.

The batch dict (what the loader yields beside the video tensor) has one entry per clip, clips of a
sample adjacent, in sample order:

    keys        list[str]   sample key of each clip
    sample      (N,) int    which sample of the batch the clip comes from
    label       list[str | None];  label_index (N,) int (-1: unlabelled)
    role        list[str]   the plan's role (normal, sped_up, anchor, positive, negative, eval, window)
    speed       (N,) float  playback rate the clip shows
    aug_group   (N,) int    clips of a sample with the same value share their crop and flip
    indices     (N, T) int  frame indices of the stored video the clip holds
    epoch, step int         where this batch sits in the loader's order
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from pipeline.augment import AugmentConfig, batch_size_draw, sample_params
from pipeline.graph import FEEDS
from pipeline.plans import Clip, TooShort
from pipeline.shards import ShardIndex

SPARE_TRIES = 64  # spare samples tried for a batch none of whose own samples fit, before it is skipped
BLUR_OFF_SIGMA = 0.01  # DALI needs sigma > 0 per frame; this kernel is the identity in uint8


@dataclass
class PreparedBatch:
    feeds: dict[str, list[np.ndarray]]
    info: dict
    too_short: list[str] = field(default_factory=list)


def prepare_batch(index: ShardIndex, positions: np.ndarray, plan: Callable[[int, np.random.Generator], list[Clip]],
                  augment: AugmentConfig, rng: np.random.Generator, epoch: int, step: int,
                  fill_to: int = 0, spare: Iterator[int] = iter(())) -> PreparedBatch:
    """The batch of the samples at ``positions`` (those too short for the plan left out, in
    ``too_short``). ``fill_to``: when samples were left out (here, or by the caller), draw new clips
    of the batch's other samples, in turn, until it holds that many (or, when none is left, of the
    ``spare`` positions, in order); so in training every rank's batch keeps its size and no rank
    waits on another at a collective."""
    feeds: dict[str, list[np.ndarray]] = {name: [] for name in FEEDS}
    info: dict = {k: [] for k in ("keys", "sample", "label", "label_index", "role", "speed", "aug_group", "indices",
                                  "clips_per_sample")}
    too_short = []
    side = batch_size_draw(augment, rng)
    todo, used, own = [int(p) for p in positions], [], len(positions)
    spare = itertools.islice(spare, SPARE_TRIES)
    while todo:
        pos = todo.pop(0)
        meta, data = index.read(pos)
        try:
            clips = plan(meta.frames, rng)
            used.append(pos)
        except TooShort:
            clips = None
            if own > 0:  # a spare is counted at its own step
                too_short.append(meta.key)
        own -= 1
        if not todo and len(used) < fill_to:  # new draws of the samples that fit, in turn
            todo = used[: fill_to - len(used)] if used else [p for p in [next(spare, None)] if p is not None]
        if clips is None:
            continue
        params = sample_params(augment, meta.height, meta.width, clips, side, rng)
        wanted = np.concatenate([np.asarray(c.indices) for c in clips])
        frames, order = np.unique(wanted, return_inverse=True)  # decode each frame once
        sample = len(feeds["encoded"])
        info["clips_per_sample"].append(len(clips))
        feeds["encoded"].append(np.frombuffer(data, np.uint8))
        feeds["frames"].append(frames.astype(np.int32))
        feeds["order"].append(order.astype(np.int32).ravel())
        feeds["resize"].append(np.array(params.resize, np.float32))
        feeds["size"].append(np.array(params.out, np.float32))
        feeds["matrix"].append(params.matrix)
        for i, name in enumerate(("hue", "saturation", "value")):
            feeds[name].append(np.ascontiguousarray(params.hsv[:, i]))
        feeds["contrast"].append(params.contrast)
        feeds["sigma"].append(np.maximum(params.sigma, BLUR_OFF_SIGMA))
        for clip in clips:
            info["keys"].append(meta.key)
            info["sample"].append(sample)
            info["label"].append(meta.label)
            info["label_index"].append(meta.label_index)
            info["role"].append(clip.role)
            info["speed"].append(clip.speed)
            info["aug_group"].append(clip.aug_group)
            info["indices"].append(clip.indices)
    info.update(epoch=epoch, step=step)
    return PreparedBatch(feeds, info, too_short)
