"""Re-timing (jobs/speed/retime.py): which input frame each output frame shows, and exact durations."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from jobs.speed.retime import frame_sources
from jobs.speed.solver import smooth_speedup
from tests.support.speed import assert_follows_integral, speedups


@given(speedups, st.floats(0, 1), st.sampled_from([24, 25, 30, 29.97]))
def test_frame_sources_last_exactly_input_over_rate(V, where, fps):
    rate = 1 + where * (V.max() - 1)  # any float: e.g. 1.23456 must work
    S = smooth_speedup(V, rate, 10)
    source, fps_out = frame_sources(S, fps, rate=rate)
    L = len(V)
    assert len(source) == max(1, round(Fraction(L) / Fraction(rate).limit_denominator(1000)))
    assert Fraction(len(source)) / fps_out == Fraction(L) / Fraction(fps).limit_denominator(1001) / Fraction(
        rate
    ).limit_denominator(1000)
    assert (np.diff(source) >= 0).all() and 0 <= source.min() and source.max() < L
    assert_follows_integral(source, S, rate)  # and each output frame is the one S's integral picks


@given(st.lists(st.floats(1, 8), min_size=1, max_size=60))
def test_frame_sources_without_a_rate_follow_the_integral_of_1_over_S(S):
    source, fps_out = frame_sources(np.array(S), 25)
    assert_follows_integral(source, S)
    D = Fraction(float(np.sum(1 / np.array(S)))).limit_denominator(1000)
    assert fps_out == 25 * len(source) / D  # N frames lasting exactly D input frames


def test_uniform_frame_sources_take_every_rate_th_frame():
    source, fps_out = frame_sources(np.full(100, 2.0), 25, rate=2.0)
    assert list(source) == list(range(0, 100, 2)) and fps_out == 25
    # 3x is frames 0, 3, 6, ...: where the float sum of thirds falls short of 3, frame 3 still starts at 1
    assert list(frame_sources(np.full(99, 3.0), 25, rate=3.0)[0]) == list(range(0, 99, 3))


@given(st.floats(1, 10), st.integers(1, 3000))
def test_uniform_frame_sources_show_frame_floor_k_times_L_over_N(rate, L):
    source, fps_out = frame_sources(np.full(L, rate), 25, rate=rate)
    N = len(source)
    assert N == max(1, round(L / Fraction(rate).limit_denominator(1000)))
    assert list(source) == [k * L // N for k in range(N)]  # exact: k * L / N input frames in


def test_frame_sources_skip_frames_only_where_S_is_fast():
    # 40 frames at 1x, then 60 at 3x: 40 + 20 output frames, rate 5/3
    S = np.r_[np.ones(40), np.full(60, 3.0)]
    assert list(frame_sources(S, 25, rate=5 / 3)[0]) == list(range(40)) + list(range(40, 100, 3))
    assert list(frame_sources(S[::-1], 25, rate=5 / 3)[0]) == list(range(0, 60, 3)) + list(range(60, 100))
    # 1/S, not S: at 4x then 1x, the fast half gives a quarter of the frames
    S = np.r_[np.full(40, 4.0), np.ones(40)]
    source = frame_sources(S, 25)[0]
    assert list(source) == list(range(0, 40, 4)) + list(range(40, 80))
