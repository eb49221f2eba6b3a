"""When the ranks agree on a stop: not every step with several processes (each agreement is a
collective that waits on the GPU), but often, at the same steps on every rank, and at the end."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jobs.pretrain.loop import STOP_POLL_EVERY, polls_stop


@given(total=st.integers(1, 500), processes=st.integers(2, 16))
def test_several_processes_agree_every_few_steps_and_at_the_last(total, processes):
    polled = [s for s in range(1, total + 1) if polls_stop(s, total, processes)]
    assert polled[-1] == total
    gaps = [b - a for a, b in zip([0, *polled], polled)]
    assert max(gaps) <= STOP_POLL_EVERY and len(polled) <= total // STOP_POLL_EVERY + 1


def test_alone_every_step_is_polled():
    assert all(polls_stop(s, 100, 1) for s in range(1, 101))
    assert STOP_POLL_EVERY > 1 and not polls_stop(1, 100, 2)
