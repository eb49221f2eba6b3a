"""The analysis of a video (jobs/speed/analysis.py) with a network of known answer: the slow motion
is found in the slowed half."""

from __future__ import annotations

from jobs.speed import speed_curves


def test_slow_motion_is_found_in_the_slowed_half(slow_motion_video, oracle_analysis):
    truth = slow_motion_video
    _, a = oracle_analysis
    assert a.curves.shape == (11, truth["frames"])
    segments = speed_curves.slow_segments(a.curves, a.factors, 1.9, min_frames=8)
    start, end = segments[-1]
    assert abs(start - truth["slow_start"]) <= 16 and end == truth["frames"]  # within one window
    # the pan eases in from rest (at most a second): the only other slow motion there may be
    assert all(e <= 25 for _, e in segments[:-1])
    s = speed_curves.speediness(a.curves, a.factors)
    assert s[25 : truth["slow_start"] - 16].mean() > 0.6 > 0.5 > s[truth["slow_start"] + 16 :].mean()
