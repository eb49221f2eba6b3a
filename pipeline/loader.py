"""``VideoLoader``: shards in, ``Batch`` out (``pipeline.batches``), decoded and augmented on either path.

    loader = VideoLoader("shards/train", plan="speednet", batch_size=8)
    for batch in loader:              # batch.video: float32 (N, C, T, H, W), N = clips in the batch
        ...                           # batch.role, batch.indices, ...: one entry per clip

What each rank reads at each step is a pure function of (seed, epoch, rank, step)
(``pipeline.order``), plans and augmentation are drawn from a generator seeded by the same four
numbers (``pipeline.steps``), so the same seed gives the same batches and ``VideoLoader(...,
epoch=e, step=s)`` continues exactly where a loader stopped (``state_dict``). A sample that cannot be
decoded is dropped, counted in ``dropped``, and the epoch goes on; in training (shuffled, the whole
set) the batch is topped up with new clips of its other samples, so every rank keeps the same batch
size and step count.

Two paths decode and augment the same prepared batches (``decoder``): DALI (``pipeline.dali_batches``;
NVDEC on a GPU) and the CPU path (``pipeline.cpu_batches``: PyAV with keyframe seeks, torch
augmentation). ``auto`` takes DALI on a GPU and the CPU path on a host without one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from pipeline import order
from pipeline.augment import AugmentConfig
from pipeline.batches import Batch
from pipeline.device import loader_device
from pipeline.extras import optional_import, require
from pipeline.nvdec import usable as nvdec_usable
from pipeline.plans import PLANS
from pipeline.shards import ShardIndex, resolve_shards
from pipeline.steps import Plan, StepPlanner

DEFAULT_AUGMENT = {
    "speednet": AugmentConfig("speednet"),
    "rspnet": AugmentConfig("rspnet"),
    "eval": AugmentConfig("eval", out=112),
    "sliding": AugmentConfig("eval", out=112),
    "speedtest": AugmentConfig("eval", out=224),
    # fine-tuning (RSPNet's released fine-tune configs): random resized crop, area 0.25 to 1, and flip
    "supervised": AugmentConfig("rspnet", scale=(0.25, 1.0), jitter_p=0.0, gray_p=0.0, blur_p=0.0),
}
DECODERS = ("auto", "dali", "pyav")


def loader_decoder(choice: str, device: str) -> str:
    """``dali`` or ``pyav`` for a choice and a loader device (``gpu`` or ``cpu``)."""
    if choice not in DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, not {choice!r}")
    if choice == "auto":
        return "dali" if device == "gpu" else "pyav"
    return choice


NVDEC_THREADS = 8  # DALI's mixed decoder runs one NVDEC session per thread; H100/H200 have 7 engines


def default_threads(nvdec: bool) -> int:
    """Decoding threads when none are asked for: enough NVDEC sessions to keep every engine of the
    GPU busy, else 2 (DALI's CPU threads, or the CPU path's worker processes; a 2-core host's count)."""
    return NVDEC_THREADS if nvdec else 2


class VideoLoader:
    """Batches of clips from shards. ``plan`` names a plan of ``pipeline.plans`` (its keyword
    arguments in ``plan_options``); ``augment`` defaults to the paper recipe for the plan; ``rank`` and
    ``world`` split every epoch across processes; ``epoch`` and ``step`` say where to start.
    ``samples`` (positions in the shards' sample order) reads exactly those, in that order, once per
    epoch, instead of the epoch order: how the export job reads one unit of videos. ``decoder``:
    ``auto``, ``dali`` or ``pyav`` (the CPU path; its tensors stay on the CPU). ``num_threads``: DALI's
    threads, or the CPU path's worker processes; 0 chooses (``default_threads``)."""

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
        num_threads: int = 0,
        shuffle: bool = True,
        normalise_pixels: bool = True,
        samples: list[int] | None = None,
        decoder: str = "auto",
    ):
        if plan not in PLANS:
            raise ValueError(f"unknown plan {plan!r}; choose from {', '.join(PLANS)}")
        self.index = ShardIndex(resolve_shards(shards) if not isinstance(shards, list) else shards)
        self._plan = Plan(plan, dict(plan_options or {}))
        self.plan_name = plan
        self.augment = augment or DEFAULT_AUGMENT[plan]
        self.batch_size, self.rank, self.world, self.seed = batch_size, rank, world, seed
        self.epoch, self.step, self.shuffle, self.normalise_pixels = epoch, step, shuffle, normalise_pixels
        self.device = loader_device(device)
        self.decoder = loader_decoder(decoder, self.device)
        if self.decoder == "dali":  # before any work: a missing DALI is one line naming the extra
            require(optional_import("nvidia.dali", "DALI (GPU decoding, or decoder='dali')"))
        # Where DALI decodes: NVDEC on a GPU that has it, else the CPU, with the augmentation still on
        # the GPU. Batches with a sample too small for NVDEC decode on the CPU too (``cpu_decoded``).
        self.nvdec = self.decoder == "dali" and self.device == "gpu" and nvdec_usable()
        self.cpu_decoded: list[str] = []  # keys of samples DALI decoded on the CPU although on a GPU
        self.num_threads = num_threads or default_threads(self.nvdec)
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
        self.decoded_frames = 0  # frames the CPU path decoded (DALI's CPU decoder: every frame to the last planned)
        self.planner = StepPlanner(
            self.index,
            self._plan,
            self.augment,
            batch_size,
            seed,
            rank,
            world,
            shuffle,
            self.samples,
            self.bad_keys,  # shared: a sample found bad is left out from then on
        )
        self._stream = None  # the CPU path's workers, kept from one training epoch to the next

    def __len__(self) -> int:
        return self.steps_per_epoch

    @property
    def training(self) -> bool:
        """Shuffled epochs of the whole set: batches are topped up to ``batch_size`` when samples are
        dropped (``pipeline.batches.prepare_batch``), so ranks stay in step."""
        return self.shuffle and self.samples is None

    def close(self) -> None:
        """Stop the CPU path's worker processes now (they also stop when the loader is collected)."""
        self._stream = None

    @property
    def blur(self) -> bool:
        return self.augment.colour and self.augment.blur_p > 0

    def state_dict(self) -> dict:
        """Where the next batch comes from: pass these to a new loader to resume."""
        return {"epoch": self.epoch, "step": self.step, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.step, self.seed = state["epoch"], state["step"], state["seed"]
        if self.step >= self.steps_per_epoch:  # stopped after an epoch's last batch: the next begins
            self.epoch, self.step = self.epoch + 1, 0

    def __iter__(self) -> Iterator[Batch]:
        """One epoch from the current position; the position then moves to the next epoch."""
        if self.decoder == "dali":
            from pipeline.dali_batches import dali_batches as batches
        else:
            from pipeline.cpu_batches import cpu_batches as batches
        yield from batches(self)
        self.epoch, self.step = self.epoch + 1, 0

    def count_too_short(self, keys: list[str]) -> None:
        self.dropped.extend({"key": k, "reason": "too short for the plan"} for k in keys)

    def drop(self, keys: list[str], reason: str) -> None:
        """Leave ``keys`` out from now on, and say why in ``dropped``."""
        self.dropped.extend({"key": k, "reason": reason} for k in keys)
        self.bad_keys.update(keys)


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
