"""Which samples each rank reads at each step: a pure function of (seed, epoch, rank, step).

Every training epoch is a fresh seeded permutation of all samples, cut into equal parts per rank
(the few samples that do not divide evenly are left out of that epoch, so every rank runs the same
number of steps); evaluation order covers every sample once. A loader resumed at (epoch, step) reads
exactly what an uninterrupted one would have read.
"""

from __future__ import annotations

import numpy as np


def epoch_order(n: int, epoch: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True) -> np.ndarray:
    """Sample positions this rank reads in ``epoch``, in order.

    Training (``shuffle``) gives every rank the same number of samples, leaving out the remainder;
    evaluation reads every sample exactly once, round-robin, so ranks may differ by one.
    """
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} outside world size {world}")
    if not shuffle:
        return np.arange(n)[rank::world]
    order = np.random.default_rng([seed, epoch]).permutation(n)
    per_rank = n // world
    return order[rank * per_rank : (rank + 1) * per_rank]


def steps_per_epoch(samples: int, batch_size: int, drop_last: bool = True) -> int:
    """Steps over this rank's ``samples``: full batches only when training, all of them otherwise."""
    return samples // batch_size if drop_last else -(-samples // batch_size)


def batch_positions(order: np.ndarray, step: int, batch_size: int) -> np.ndarray:
    return order[step * batch_size : (step + 1) * batch_size]


def step_rng(seed: int, epoch: int, rank: int, step: int) -> np.random.Generator:
    """The generator for one batch's plans and augmentation: independent of what ran before."""
    return np.random.default_rng([seed, epoch, rank, step, 0x5EED])
