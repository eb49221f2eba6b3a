"""One step's ``PreparedBatch`` as a pure function of the loader's settings, its epoch order and the
samples known to be bad: what both decoding paths read, so that they see the same batches.

``StepPlanner`` is small and picklable: the CPU path's worker processes each hold a copy.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from pipeline import order
from pipeline.augment import AugmentConfig
from pipeline.batches import PreparedBatch, prepare_batch
from pipeline.plans import PLANS
from pipeline.shards import ShardIndex

RNG_PLANS = {"speednet", "rspnet", "supervised"}  # the others are deterministic and take no generator


@dataclass(frozen=True)
class Plan:
    """A named plan of ``pipeline.plans`` with its keyword arguments, called as (frames, rng)."""

    name: str
    options: dict = field(default_factory=dict)

    def __call__(self, frames: int, rng: np.random.Generator):
        fn = partial(PLANS[self.name], **self.options)
        return fn(frames, rng) if self.name in RNG_PLANS else fn(frames)


@dataclass
class StepPlanner:
    """Prepares any (epoch, step) of one rank's run: the epoch's order (``pipeline.order``, or the
    fixed ``samples``), the step's positions less the known bad samples, its generator."""

    index: ShardIndex
    plan: Plan
    augment: AugmentConfig
    batch_size: int
    seed: int
    rank: int
    world: int
    shuffle: bool
    samples: np.ndarray | None = None  # read exactly these, in order, every epoch
    bad_keys: set[str] = field(default_factory=set)
    _orders: dict = field(default_factory=dict, repr=False)

    @property
    def training(self) -> bool:
        """Shuffled epochs of the whole set: batches are topped up to ``batch_size`` when samples are
        left out (``pipeline.batches.prepare_batch``), so ranks stay in step."""
        return self.shuffle and self.samples is None

    def order(self, epoch: int) -> np.ndarray:
        """This rank's sample positions in ``epoch``, in order."""
        if self.samples is not None:
            return self.samples
        if epoch not in self._orders:
            self._orders = {
                epoch: order.epoch_order(len(self.index), epoch, self.seed, self.rank, self.world, self.shuffle)
            }
        return self._orders[epoch]

    def usable(self, position: int) -> bool:
        return self.index.samples[position].key not in self.bad_keys

    def prepare(self, epoch: int, step: int) -> PreparedBatch:
        """The batch of ``step``: its samples that are not known bad, drawn from the step's own generator."""
        positions = self.order(epoch)
        mine = [p for p in order.batch_positions(positions, step, self.batch_size) if self.usable(p)]
        after = (step + 1) * self.batch_size  # a batch with no usable sample borrows the next ones
        spare = (int(p) for p in itertools.chain(positions[after:], positions[:after]) if self.usable(p))
        return prepare_batch(
            self.index,
            np.array(mine, int),
            self.plan,
            self.augment,
            order.step_rng(self.seed, epoch, self.rank, step),
            epoch,
            step,
            fill_to=self.batch_size if self.training else 0,
            spare=spare,
        )
