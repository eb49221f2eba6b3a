"""Speed curves (jobs/speed/speed_curves.py): the speed-up vector, the choice of rho, frame curves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.speed import speed_curves
from jobs.speed.solver import overall_rate

curves_st = (
    st.integers(2, 60)
    .flatmap(lambda L: st.lists(st.lists(st.floats(0, 1), min_size=L, max_size=L), min_size=11, max_size=11))
    .map(np.array)
)


@given(curves_st, st.sampled_from(speed_curves.RHOS), st.sampled_from(speed_curves.RHOS))
def test_speedup_vector_is_the_largest_normal_rate_and_falls_with_rho(curves, r1, r2):
    factors = speed_curves.rates()
    V = speed_curves.speedup_vector(curves, factors, r1)
    for t in range(curves.shape[1]):
        normal = factors[curves[:, t] > r1]
        assert V[t] == (normal.max() if len(normal) else 1.0)
    if r2 > r1:
        assert (speed_curves.speedup_vector(curves, factors, r2) <= V).all()


@given(curves_st, st.floats(1, 9))
def test_choose_rho_is_closest_to_the_target(curves, rate):
    factors = speed_curves.rates()
    rho, V = speed_curves.choose_rho(curves, factors, rate)
    gaps = [abs(overall_rate(speed_curves.speedup_vector(curves, factors, r)) - rate) for r in speed_curves.RHOS]
    assert abs(overall_rate(V) - rate) == pytest.approx(min(gaps)) and rho in speed_curves.RHOS


def test_frame_curve_interpolates_between_window_middles():
    assert np.allclose(speed_curves.frame_curve([2, 6], [1.0, 0.0], 9), [1, 1, 1, 0.75, 0.5, 0.25, 0, 0, 0])
