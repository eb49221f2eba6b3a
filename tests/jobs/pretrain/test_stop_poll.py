"""When the ranks agree on a stop: not every step with several processes (each agreement is a
collective that waits on the GPU), but at the steps where the metrics are reduced anyway, the same
on every rank, and at the end."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jobs.pretrain.loop import polls_stop


@given(total=st.integers(1, 500), processes=st.integers(2, 16), every=st.integers(1, 50))
def test_several_processes_agree_every_log_step_and_at_the_last(total, processes, every):
    polled = [s for s in range(1, total + 1) if polls_stop(s, total, processes, every)]
    assert polled[-1] == total
    gaps = [b - a for a, b in zip([0, *polled], polled)]
    assert max(gaps) <= every and len(polled) <= total // every + 1


def test_alone_every_step_is_polled():
    assert all(polls_stop(s, 100, 1, 10) for s in range(1, 101))
    assert not polls_stop(1, 100, 2, 10) and polls_stop(10, 100, 2, 10)
