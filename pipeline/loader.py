"""``VideoLoader``: shards in, ``Batch`` out (``pipeline.batches``), decoded and augmented by DALI.

    loader = VideoLoader("shards/train", plan="speednet", batch_size=8)
    for batch in loader:              # batch.video: float32 (N, C, T, H, W), N = clips in the batch
        ...                           # batch.role, batch.indices, ...: one entry per clip

What each rank reads at each step is a pure function of (seed, epoch, rank, step)
(``pipeline.order``), plans and augmentation are drawn from a generator seeded by the same four
numbers, so the same seed gives the same batches and ``VideoLoader(..., epoch=e, step=s)`` continues
exactly where a loader stopped (``state_dict``). A sample DALI cannot decode is dropped, counted in
``dropped``, and the epoch goes on; in training (shuffled, the whole set) the batch is topped up
with new clips of its other samples, so every rank keeps the same batch size and step count.
"""

from __future__ import annotations

import collections
import io
import itertools
from collections.abc import Iterator
from functools import partial

import numpy as np
import torch

from pipeline import graph, order
from pipeline.augment import AugmentConfig
from pipeline.batches import Batch, PreparedBatch, prepare_batch
from pipeline.device import loader_device
from pipeline.plans import PLANS
from pipeline.shards import ShardIndex, resolve_shards

DEFAULT_AUGMENT = {
    "speednet": AugmentConfig("speednet"),
    "rspnet": AugmentConfig("rspnet"),
    "eval": AugmentConfig("eval", out=112),
    "sliding": AugmentConfig("eval", out=112),
    "speedtest": AugmentConfig("eval", out=224),
    # fine-tuning (RSPNet's released fine-tune configs): random resized crop, area 0.25 to 1, and flip
    "supervised": AugmentConfig("rspnet", scale=(0.25, 1.0), jitter_p=0.0, gray_p=0.0, blur_p=0.0),
}
RNG_PLANS = {"speednet", "rspnet", "supervised"}  # the others are deterministic and take no generator


class _Source:
    """DALI's batch callable: prepares step after step of one epoch and remembers each batch dict.

    DALI calls it batches ahead of the one being yielded, so a batch's too-short samples travel
    with it (``too_short``) and are counted by the loader only when the batch is yielded; those of
    steps whose samples were all too short ride with the next batch, or with the epoch's end
    (``skipped``)."""

    def __init__(self, loader: VideoLoader):
        self.loader = loader
        self.pending: collections.deque[PreparedBatch] = collections.deque()
        self.skipped: list[str] = []
        self.step = loader.step
        self.feeds = graph.feeds_for(loader.augment.antialias, loader.augment.colour, loader._blur)

    def __call__(self, _info=None):
        loader = self.loader
        while self.step < loader.steps_per_epoch:
            positions = [
                p for p in order.batch_positions(loader._order, self.step, loader.batch_size) if loader._usable(p)
            ]
            rng = order.step_rng(loader.seed, loader.epoch, loader.rank, self.step)
            after = (self.step + 1) * loader.batch_size  # a batch with no usable sample borrows the next ones
            spare = (int(p) for p in itertools.chain(loader._order[after:], loader._order[:after]) if loader._usable(p))
            batch = prepare_batch(
                loader.index,
                np.array(positions, int),
                loader._plan,
                loader.augment,
                rng,
                loader.epoch,
                self.step,
                fill_to=loader.batch_size if loader.training else 0,
                spare=spare,
            )
            self.step += 1
            if not batch.feeds["encoded"]:
                self.skipped.extend(batch.too_short)
                continue
            batch.too_short, self.skipped = self.skipped + batch.too_short, []
            self.pending.append(batch)
            return tuple(batch.feeds[name] for name in self.feeds)
        raise StopIteration


class VideoLoader:
    """Batches of clips from shards. ``plan`` names a plan of ``pipeline.plans`` (its keyword
    arguments in ``plan_options``); ``augment`` defaults to the paper recipe for the plan; ``rank`` and
    ``world`` split every epoch across processes; ``epoch`` and ``step`` say where to start.
    ``samples`` (positions in the shards' sample order) reads exactly those, in that order, once per
    epoch, instead of the epoch order: how the export job reads one unit of videos."""

    def __init__(
        self,
        shards,
        plan: str = "rspnet",
        plan_options: dict | None = None,
        augment: AugmentConfig | None = None,
        batch_size: int = 8,
        device: str = "auto",
        rank: int = 0,
        world: int = 1,
        seed: int = 0,
        epoch: int = 0,
        step: int = 0,
        num_threads: int = 2,
        shuffle: bool = True,
        normalise_pixels: bool = True,
        samples: list[int] | None = None,
    ):
        if plan not in PLANS:
            raise ValueError(f"unknown plan {plan!r}; choose from {', '.join(PLANS)}")
        self.index = ShardIndex(resolve_shards(shards) if not isinstance(shards, list) else shards)
        fn = partial(PLANS[plan], **(plan_options or {}))
        self._plan = fn if plan in RNG_PLANS else (lambda frames, rng: fn(frames))
        self.plan_name = plan
        self.augment = augment or DEFAULT_AUGMENT[plan]
        self.batch_size, self.rank, self.world, self.seed = batch_size, rank, world, seed
        self.epoch, self.step, self.shuffle, self.normalise_pixels = epoch, step, shuffle, normalise_pixels
        self.device = loader_device(device)
        self.num_threads = num_threads
        self.samples = None if samples is None else np.asarray(samples, dtype=np.int64)
        if (
            self.samples is not None
            and len(self.samples)
            and not (0 <= self.samples.min() and self.samples.max() < len(self.index))
        ):
            raise ValueError(f"samples must be positions below {len(self.index)}")
        mine = (
            len(self.samples)
            if self.samples is not None
            else len(order.epoch_order(len(self.index), 0, seed, rank, world, shuffle))
        )
        self.steps_per_epoch = order.steps_per_epoch(mine, batch_size, drop_last=self.training)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{len(self.index)} samples make no batch of {batch_size} on {world} ranks")
        self.dropped: list[dict] = []
        self.bad_keys: set[str] = set()

    def __len__(self) -> int:
        return self.steps_per_epoch

    @property
    def training(self) -> bool:
        """Shuffled epochs of the whole set: batches are topped up to ``batch_size`` when samples are
        dropped (``pipeline.batches.prepare_batch``), so ranks stay in step."""
        return self.shuffle and self.samples is None

    def _usable(self, position: int) -> bool:
        return self.index.samples[position].key not in self.bad_keys

    @property
    def _blur(self) -> bool:
        return self.augment.colour and self.augment.blur_p > 0

    def state_dict(self) -> dict:
        """Where the next batch comes from: pass these to a new loader to resume."""
        return {"epoch": self.epoch, "step": self.step, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.step, self.seed = state["epoch"], state["step"], state["seed"]
        if self.step >= self.steps_per_epoch:  # stopped after an epoch's last batch: the next begins
            self.epoch, self.step = self.epoch + 1, 0

    def _build(self):
        self._order = (
            self.samples
            if self.samples is not None
            else order.epoch_order(len(self.index), self.epoch, self.seed, self.rank, self.world, self.shuffle)
        )
        self._source = _Source(self)
        device_id = None if self.device == "cpu" else torch.cuda.current_device()
        self._pipe = graph.build(
            self._source,
            batch_size=self.batch_size,
            device_id=device_id,
            num_threads=self.num_threads,
            antialias=self.augment.antialias,
            colour=self.augment.colour,
            blur=self._blur,
            blur_kernel=self.augment.blur_kernel,
            normalise_pixels=self.normalise_pixels,
        )

    def __iter__(self) -> Iterator[Batch]:
        """One epoch from the current position; the position then moves to the next epoch."""
        self._build()
        try:
            while True:
                try:
                    (out,) = self._pipe.run()
                except StopIteration:
                    self._count_too_short(self._source.skipped)
                    break
                except RuntimeError as error:  # a sample DALI cannot decode
                    self._drop_undecodable(self._source.pending.popleft(), error)
                    continue
                batch = self._source.pending.popleft()
                self._count_too_short(batch.too_short)
                self.step = batch.info["step"] + 1
                yield Batch.from_clips(self._to_torch(out, batch.info), batch.info)
        finally:
            self._pipe = None
        self.epoch, self.step = self.epoch + 1, 0

    def _count_too_short(self, keys: list[str]) -> None:
        self.dropped.extend({"key": k, "reason": "too short for the plan"} for k in keys)

    def _drop_undecodable(self, batch: PreparedBatch, error: Exception) -> None:
        """Drop the samples of ``batch`` that an independent decoder cannot read either, and restart
        at its step. If they all decode, the error is not the data's: it is raised."""
        first_clips = np.cumsum([0] + batch.info["clips_per_sample"][:-1])
        keys = [batch.info["keys"][i] for i in first_clips]  # one per sample, repeats kept
        bad = list(dict.fromkeys(k for k, data in zip(keys, batch.feeds["encoded"]) if not _decodes(data.tobytes())))
        if not bad:
            raise error
        self.dropped.extend({"key": k, "reason": f"undecodable: {_dali_reason(error)}"} for k in bad)
        self.bad_keys.update(bad)
        self.step = batch.info["step"]
        self._build()

    def _to_torch(self, out, info: dict):
        per_sample = info["clips_per_sample"]
        if self.device == "gpu":
            samples = [_gpu_tensor(out[i]) for i in range(len(per_sample))]
        elif out.is_dense_tensor():  # one copy out of DALI's buffer for the whole batch
            dense = torch.from_numpy(np.array(out.as_tensor()))
            samples = list(dense) if len(set(per_sample)) > 1 else [dense.reshape(-1, *dense.shape[2:])]
            per_sample = per_sample if len(set(per_sample)) > 1 else [sum(per_sample)]
        else:
            samples = [torch.from_numpy(np.array(out[i])) for i in range(len(per_sample))]
        clips = [x.reshape(k, -1, *x.shape[1:]) for x, k in zip(samples, per_sample)]  # (K, T, ...) each
        if len({c.shape[1:] for c in clips}) > 1:
            return [_layout(c, self.normalise_pixels) for c in clips]  # sizes differ (preview without augmentation)
        return _layout(clips[0] if len(clips) == 1 else torch.cat(clips), self.normalise_pixels)


def _layout(x: torch.Tensor, normalised: bool) -> torch.Tensor:
    # normalised: (N, T, C, H, W) -> (N, C, T, H, W); uint8 previews stay (N, T, H, W, C)
    return x.permute(0, 2, 1, 3, 4).contiguous() if normalised else x


def _gpu_tensor(tensor) -> torch.Tensor:
    """Copy one DALI GPU sample into a new torch tensor, ordered after DALI's work on its stream."""
    from nvidia.dali import types
    from nvidia.dali.plugin.pytorch import feed_ndarray

    dtype = torch.float32 if tensor.dtype == types.FLOAT else torch.uint8
    out = torch.empty(tensor.shape(), dtype=dtype, device="cuda")
    feed_ndarray(tensor, out, cuda_stream=torch.cuda.current_stream())
    return out


def eval_loader(
    shards, plan: str, plan_options: dict, *, size: int, batch_size: int = 1, device: str = "cpu", samples=None
) -> VideoLoader:
    """The loader of every evaluation and embedding pass: the plan's clips of each sample once, in
    sample order, with the evaluation transform (the centre square, resized to ``size``: both papers' test),
    so a query clip and the collection it searches are prepared identically. ``device`` is a torch
    or a loader device name."""
    return VideoLoader(
        shards,
        plan=plan,
        plan_options=plan_options,
        augment=AugmentConfig("eval", out=size),
        batch_size=batch_size,
        device=loader_device(device),
        shuffle=False,
        samples=samples,
    )


def _dali_reason(error: Exception) -> str:
    """The line of a DALI error that says what went wrong (it comes after 'encountered:')."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    after = lines[lines.index("encountered:") + 1 :] if "encountered:" in lines else lines
    return (after or ["unknown DALI error"])[0][:200]


def _decodes(data: bytes) -> bool:
    import av

    try:
        with av.open(io.BytesIO(data)) as c:
            for _ in c.decode(video=0):
                pass
        return True
    except (av.error.FFmpegError, IndexError):
        return False
