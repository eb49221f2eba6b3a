"""The batch the loader hands the trainer (``Batch``), and how one step's batch is prepared in Python
(``prepare_batch``: the feeds both decoders read, and the per-clip fields the ``Batch`` is made from).

The feeds, one array per sample each (``FEEDS``), are the contract between the Python side and the
two paths that apply them, the DALI graph (``pipeline.graph``) and the CPU path
(``pipeline.torch_augment``):

- ``encoded`` uint8: the stored video's bytes;
- ``frames`` int32: the sorted distinct frame indices its clips need (each decoded once);
- ``order`` int32: for each output frame, clip after clip, its position in ``frames``;
- ``resize`` float (2,): (height, width) of the antialiased resize of the whole frame;
- ``size`` float (2,): (height, width) of every output frame;
- ``matrix`` float (frames out, 2, 3): destination -> source affine map of each output frame;
- ``hue`` (degrees), ``saturation``, ``value``, ``contrast``, ``sigma`` float (frames out,): colour
  and blur of each output frame (sigma ``BLUR_OFF_SIGMA``: no blur).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from pipeline.augment import AugmentConfig, batch_size_draw, sample_params
from pipeline.plans import Clip, TooShort
from pipeline.shards import ShardIndex

FEEDS = ("encoded", "frames", "order", "resize", "size", "matrix", "hue", "saturation", "value", "contrast", "sigma")
SPARE_TRIES = 64  # spare samples tried for a batch none of whose own samples fit, before it is skipped
BLUR_OFF_SIGMA = 0.01  # DALI needs sigma > 0 per frame; this kernel is the identity in uint8


@dataclass
class Batch:
    """One step's clips and, per clip, where it comes from: what ``VideoLoader`` yields.

    Clips of a sample are adjacent, samples in order; every per-clip field has one entry per clip
    (N in all)."""

    video: torch.Tensor | list[torch.Tensor]  # float32 (N, C, T, H, W), normalised pixels; with
    #   normalise_pixels=False uint8 (N, T, H, W, C); a list of per-sample tensors when sizes differ
    keys: list[str]  # sample key of each clip
    sample: torch.Tensor  # (N,) long: which sample of the batch the clip comes from
    label: list[str | None]
    label_index: torch.Tensor  # (N,) long; -1: unlabelled
    role: list[str]  # the plan's role: normal, sped_up, anchor, positive, negative, eval, window, train
    speed: torch.Tensor  # (N,) float32: playback rate the clip shows
    aug_group: torch.Tensor  # (N,) long: clips of a sample with the same value share all augmentation
    indices: torch.Tensor  # (N, T) long: frame indices of the stored video the clip holds
    epoch: int = 0  # where this batch sits in the loader's order
    step: int = 0

    def __len__(self) -> int:
        return len(self.role)

    @classmethod
    def from_clips(cls, video: torch.Tensor, info: dict) -> Batch:
        """A batch of ``video`` described by ``prepare_batch``'s per-clip lists (``PreparedBatch.info``)."""
        return cls(
            video=video,
            keys=list(info["keys"]),
            sample=torch.tensor(info["sample"], dtype=torch.long),
            label=list(info["label"]),
            label_index=torch.tensor(info["label_index"], dtype=torch.long),
            role=list(info["role"]),
            speed=torch.tensor(info["speed"], dtype=torch.float32),
            aug_group=torch.tensor(info["aug_group"], dtype=torch.long),
            indices=torch.tensor(np.array(info["indices"]), dtype=torch.long).reshape(len(info["role"]), -1),
            epoch=int(info["epoch"]),
            step=int(info["step"]),
        )

    @classmethod
    def of_roles(cls, video: torch.Tensor, roles: list[str], speeds=None, epoch: int = 0, step: int = 0) -> Batch:
        """Clips that did not come from shards (a test's tensors): one unlabelled sample per clip."""
        n, t = len(roles), video.shape[2]
        speeds = [1.0] * n if speeds is None else speeds
        return cls(
            video=video,
            keys=[f"clip{i}" for i in range(n)],
            sample=torch.arange(n),
            label=[None] * n,
            label_index=torch.full((n,), -1),
            role=list(roles),
            speed=torch.tensor(speeds, dtype=torch.float32),
            aug_group=torch.zeros(n, dtype=torch.long),
            indices=torch.arange(t).repeat(n, 1),
            epoch=epoch,
            step=step,
        )


@dataclass
class PreparedBatch:
    """One step before decoding: the feeds, the per-clip lists ``Batch.from_clips`` reads (the
    ``Batch`` fields; and per sample ``clips_per_sample``, ``video_frames`` (its stored frame count),
    ``video_codec`` and ``video_size`` (width, height)), and the samples left out as too short."""

    feeds: dict[str, list[np.ndarray]]
    info: dict
    too_short: list[str] = field(default_factory=list)


def prepare_batch(
    index: ShardIndex,
    positions: np.ndarray,
    plan: Callable[[int, np.random.Generator], list[Clip]],
    augment: AugmentConfig,
    rng: np.random.Generator,
    epoch: int,
    step: int,
    fill_to: int = 0,
    spare: Iterator[int] | None = None,
) -> PreparedBatch:
    """The batch of the samples at ``positions`` (those too short for the plan left out, in
    ``too_short``). ``fill_to``: when samples were left out (here, or by the caller), draw new clips
    of the batch's other samples, in turn, until it holds that many (or, when none is left, of the
    ``spare`` positions, in order); so in training every rank's batch keeps its size and no rank
    waits on another at a collective."""
    feeds: dict[str, list[np.ndarray]] = {name: [] for name in FEEDS}
    info: dict = {
        k: []
        for k in (
            "keys",
            "sample",
            "label",
            "label_index",
            "role",
            "speed",
            "aug_group",
            "indices",
            "clips_per_sample",
            "video_frames",
            "video_codec",
            "video_size",
        )
    }
    too_short = []
    side = batch_size_draw(augment, rng)
    todo, used, own = [int(p) for p in positions], [], len(positions)
    spare = itertools.islice(spare or (), SPARE_TRIES)
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
        info["video_frames"].append(meta.frames)
        info["video_codec"].append(meta.codec)
        info["video_size"].append((meta.width, meta.height))
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
