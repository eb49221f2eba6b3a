"""The epoch order: which samples each rank reads, as a pure function."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pipeline.order import epoch_order, steps_per_epoch


@given(st.integers(0, 500), st.integers(1, 8), st.integers(0, 3), st.integers(0, 2**31))
def test_training_order_is_an_equal_split_of_a_permutation(n, world, epoch, seed):
    parts = [epoch_order(n, epoch, seed, r, world) for r in range(world)]
    flat = np.concatenate(parts)
    assert len(set(flat.tolist())) == len(flat) == (n // world) * world  # disjoint, equal, remainder left out
    assert all(len(p) == n // world for p in parts)
    assert np.array_equal(parts[0], epoch_order(n, epoch, seed, 0, world))  # deterministic


@given(st.integers(0, 500), st.integers(1, 8))
def test_evaluation_order_reads_every_sample_once(n, world):
    parts = [epoch_order(n, 0, 0, r, world, shuffle=False) for r in range(world)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(n))
    assert sum(steps_per_epoch(len(p), 4, drop_last=False) * 4 >= len(p) for p in parts) == world


def test_epochs_reshuffle():
    assert not np.array_equal(epoch_order(100, 0, 1), epoch_order(100, 1, 1))
