"""Properties of the frame-index plans (pipeline/plans.py) over random frame counts, T, seeds and policies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.plans import (
    PLANS,
    SHORT_POLICIES,
    Clip,
    TooShort,
    apply_short,
    clips_to_arrays,
    eval_plan,
    min_frames,
    rspnet_plan,
    sliding_count,
    sliding_plan,
    speed_test_plan,
    speednet_plan,
)

frames_st = st.integers(1, 2000)
T_st = st.integers(1, 64)
seed_st = st.integers(0, 2**32 - 1)
short_st = st.sampled_from(SHORT_POLICIES)
# Plan arguments beyond T; every rate here is >= 1, so ideal positions strictly increase within a clip.
kwargs_st = st.one_of(
    st.tuples(st.just("speednet"), st.just({})),
    st.tuples(
        st.just("rspnet"),
        st.fixed_dictionaries(
            {
                "speeds": st.sampled_from([(1, 2), (1, 1.5, 2, 4), (1, 2, 3), (2.5, 1.25)]),
                "mode": st.sampled_from(["rsp", "avid"]),
                "shared_start": st.booleans(),
            }
        ),
    ),
    st.tuples(st.just("eval"), st.fixed_dictionaries({"n": st.integers(1, 20)})),
    st.tuples(
        st.just("sliding"),
        st.fixed_dictionaries(
            {"stride": st.integers(1, 32), "rate": st.sampled_from([1.0, 1.5, 2.0] + [1.25**i for i in range(11)])}
        ),
    ),
    st.tuples(st.just("supervised"), st.fixed_dictionaries({"rate": st.sampled_from([1.0, 1.5, 2.0])})),
    st.tuples(
        st.just("speedtest"),
        st.fixed_dictionaries({"n": st.integers(1, 20), "rates": st.sampled_from([(1, 2), (1, 1.5, 2), (1, 4)])}),
    ),
)


def run(name: str, frames: int, seed: int, **kw) -> list[Clip]:
    if name in ("speednet", "rspnet", "supervised"):
        return PLANS[name](frames, np.random.default_rng(seed), **kw)
    return PLANS[name](frames, **kw)


def half_up(x) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=float) + 0.5).astype(int)


# --- the short-video policy -------------------------------------------------------------------------


@given(st.lists(st.integers(-3000, 5000), min_size=1, max_size=50), frames_st)
def test_apply_short(ideal, frames):
    ideal = np.array(ideal)
    assert np.array_equal(apply_short(ideal, frames, "pad"), np.clip(ideal, 0, frames - 1))
    assert np.array_equal(apply_short(ideal, frames, "loop"), ideal % frames)
    if ((ideal < 0) | (ideal >= frames)).any():
        with pytest.raises(TooShort):
            apply_short(ideal, frames, "skip")
    else:
        assert np.array_equal(apply_short(ideal, frames, "skip"), ideal)


# --- properties every plan has ----------------------------------------------------------------------


@given(kwargs_st, frames_st, T_st, seed_st, short_st)
def test_every_plan_in_range_length_T_and_deterministic(plan_kw, frames, T, seed, short):
    name, kw = plan_kw
    if short == "skip" and frames < min_frames(name, T, **kw):
        with pytest.raises(TooShort):
            run(name, frames, seed, T=T, short=short, **kw)
        return
    clips = run(name, frames, seed, T=T, short=short, **kw)
    assert clips and clips == run(name, frames, seed, T=T, short=short, **kw)
    for c in clips:
        assert len(c.indices) == T and all(type(i) is int and 0 <= i < frames for i in c.indices)


@given(kwargs_st, frames_st, T_st, seed_st)
def test_policies_differ_only_past_the_end(plan_kw, frames, T, seed):
    """The same seed gives the same ideal positions under every policy; pad repeats only the last
    frame, loop wraps exactly where pad clamps, and a long enough video is the same under all three."""
    name, kw = plan_kw
    pad, loop = (run(name, frames, seed, T=T, short=s, **kw) for s in ("pad", "loop"))
    if frames >= min_frames(name, T, **kw):
        assert pad == loop == run(name, frames, seed, T=T, short="skip", **kw)
    for p, q in zip(pad, loop, strict=True):
        assert (p.speed, p.role, p.aug_group) == (q.speed, q.role, q.aug_group)
        p_idx, q_idx = np.array(p.indices), np.array(q.indices)
        steps = np.diff(p_idx)
        assert (steps >= 0).all() and (p_idx[1:][steps == 0] == frames - 1).all()
        inside = p_idx < frames - 1
        assert np.array_equal(p_idx[inside], q_idx[inside])
        if frames >= min_frames(name, T, **kw):
            assert (steps > 0).all()


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        eval_plan(0)
    with pytest.raises(ValueError):
        eval_plan(100, short="black")
    with pytest.raises(ValueError):
        speednet_plan(100, rng, sped_up=(1.7, 3.5))
    with pytest.raises(ValueError):
        rspnet_plan(100, rng, speeds=(2, 2.0))
    with pytest.raises(ValueError):
        sliding_plan(100, stride=0)
    with pytest.raises(ValueError):
        min_frames("vcop", 16)
    with pytest.raises(TypeError):
        min_frames("eval", 16, stride=4)


# --- SpeedNet ---------------------------------------------------------------------------------------


@given(frames_st, T_st, seed_st)
def test_speednet_pair_from_one_window(frames, T, seed):
    normal, sped = speednet_plan(frames, np.random.default_rng(seed), T=T)
    assert (normal.role, sped.role, normal.aug_group, sped.aug_group) == ("normal", "sped_up", 0, 0)
    assert 1.0 <= normal.speed <= 1.2 and 1.7 <= sped.speed <= 2.2
    both = normal.indices + sped.indices
    assert max(both) - min(both) <= 3 * T - 1


def test_speednet_mean_gap_follows_f():
    """Kept frames are Bernoulli(1/f), so a gap averages f: over many draws the mean gap is close to
    E[f] (1.1 and 1.95) and to each clip's own f, and the steps vary (no fixed stride)."""
    rng = np.random.default_rng(2020)
    gaps = {"normal": [], "sped_up": []}
    error = {"normal": [], "sped_up": []}
    for _ in range(3000):
        for c in speednet_plan(10_000, rng, T=16):
            gaps[c.role].append(np.diff(c.indices))
            error[c.role].append(np.diff(c.indices).mean() - c.speed)
    assert abs(np.mean(gaps["normal"]) - 1.1) < 0.02
    assert abs(np.mean(gaps["sped_up"]) - 1.95) < 0.05
    assert abs(np.mean(error["normal"])) < 0.02 and abs(np.mean(error["sped_up"])) < 0.05
    assert set(np.unique(gaps["sped_up"])) >= {1, 2, 3, 4}


def test_speednet_window_and_offset_cover_every_start():
    """With f = 1 every frame is kept, so the normal clip's first frame is window start (0..frames-3T)
    plus offset (0..2T): over seeds it takes every value from 0 to frames - T."""
    T, frames = 2, 8
    firsts = {
        speednet_plan(frames, np.random.default_rng(seed), T=T, normal=(1.0, 1.0))[0].indices[0] for seed in range(400)
    }
    assert firsts == set(range(frames - T + 1))


class _KeepNothing:
    """A generator whose masks keep no frame, to reach SpeedNet's deterministic fallback."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def random(self, n):
        return np.ones(n)

    def __getattr__(self, name):
        return getattr(self.rng, name)


@pytest.mark.parametrize("T", [1, 2, 16, 64])
def test_speednet_fallback_is_even_subsampling(T):
    for c in speednet_plan(10 * T, _KeepNothing(T), T=T, sped_up=(1.7, 3.0)):
        start = c.indices[0]
        assert np.array_equal(np.array(c.indices) - start, half_up(np.arange(T) * c.speed))


# --- RSPNet -----------------------------------------------------------------------------------------


@given(frames_st, T_st, seed_st, short_st, st.sampled_from([(1, 2), (1, 2, 3), (1, 1.5, 2, 4)]))
def test_rspnet_triplet(frames, T, seed, short, speeds):
    if short == "skip" and frames < min_frames("rspnet", T, speeds=speeds):
        return
    a, p, n = rspnet_plan(frames, np.random.default_rng(seed), T=T, speeds=speeds, short=short)
    assert (a.role, p.role, n.role) == ("anchor", "positive", "negative")
    assert (a.aug_group, p.aug_group, n.aug_group) == (0, 1, 1)
    assert a.speed == p.speed != n.speed and {a.speed, n.speed} <= set(speeds)
    for c in (a, p, n):
        ideal = c.indices[0] + half_up(np.arange(T) * c.speed)
        if ideal[-1] <= frames - 1:
            assert np.array_equal(c.indices, ideal)
            if c.speed == int(c.speed):
                assert (np.diff(c.indices) == c.speed).all()


@given(st.integers(31, 2000), seed_st, st.sampled_from([(1, 2), (1, 2, 3), (4, 1.5)]))
def test_rspnet_shared_start_negative_differs_from_positive_in_speed_only(frames, seed, speeds):
    T = 16
    a, p, n = rspnet_plan(frames, np.random.default_rng(seed), T=T, speeds=speeds, shared_start=True)
    assert p.indices[0] == n.indices[0] and p.speed != n.speed
    if frames >= min_frames("rspnet", T, speeds=speeds):  # both fit: neither was padded
        assert max(p.indices[-1], n.indices[-1]) == p.indices[0] + max(half_up((T - 1) * np.array([p.speed, n.speed])))
        assert max(p.indices[-1], n.indices[-1]) <= frames - 1


def test_rspnet_draws_cover_speeds_and_starts():
    """Over seeds, rsp draws both orders of (a, b), avid draws equal and unequal speeds, and a clip's
    start takes every position where it fits."""
    T, frames = 16, 31 + 3  # at speed 2 the last frame is start + 30: starts 0..3 fit
    pairs, avid_same, starts = set(), set(), set()
    for seed in range(300):
        a, _, n = rspnet_plan(frames, np.random.default_rng(seed), T=T)
        pairs.add((a.speed, n.speed))
        starts.update(c.indices[0] for c in (a, n) if c.speed == 2)
        clips = rspnet_plan(frames, np.random.default_rng(seed), T=T, mode="avid")
        avid_same.add(len({c.speed for c in clips}) == 1)
    assert pairs == {(1.0, 2.0), (2.0, 1.0)} and avid_same == {True, False} and starts == {0, 1, 2, 3}


# --- evaluation and sliding windows -----------------------------------------------------------------


@given(frames_st, T_st, st.integers(1, 20))
def test_eval_evenly_spaced(frames, T, n):
    clips = eval_plan(frames, T=T, n=n)
    starts = [c.indices[0] for c in clips]
    assert len(clips) == n and starts[0] == 0 and starts == sorted(starts)
    assert all((c.role, c.speed, c.aug_group) == ("eval", 1.0, 0) for c in clips)
    if frames >= T:
        assert n == 1 or starts[-1] == frames - T
        assert all(c.indices == tuple(range(c.indices[0], c.indices[0] + T)) for c in clips)
    else:
        assert eval_plan(frames, T=T, n=n, short="loop")[0].indices == tuple(k % frames for k in range(T))


@given(frames_st, T_st, st.integers(1, 32), st.sampled_from([1.0, 2.0, 1.5] + [1.25**i for i in range(11)]))
def test_sliding_windows(frames, T, stride, rate):
    clips = sliding_plan(frames, T=T, stride=stride, rate=rate, short="loop")
    expected = 0
    while half_up(expected * stride + (T - 1) * rate) <= frames - 1:
        expected += 1
    assert len(clips) == max(1, expected)
    for w, c in enumerate(clips):
        ideal = half_up(w * stride + np.arange(T) * rate)
        assert np.array_equal(c.indices, ideal % frames) and (c.role, c.speed) == ("window", rate)
        if rate in (1.0, 2.0) and ideal[-1] <= frames - 1:
            assert (np.diff(c.indices) == rate).all()
    assert sliding_count(frames, T=T, stride=stride, rate=rate, short="loop") == len(clips)


@given(frames_st, T_st, st.integers(1, 32), st.integers(1, 50))
def test_sliding_chunks_cover_the_windows_once_in_order(frames, T, stride, chunk):
    whole = sliding_plan(frames, T=T, stride=stride)
    chunks = [
        sliding_plan(frames, T=T, stride=stride, first=first, count=chunk)
        for first in range(0, sliding_count(frames, T=T, stride=stride), chunk)
    ]
    assert [c for part in chunks for c in part] == whole and all(1 <= len(part) <= chunk for part in chunks)
    with pytest.raises(ValueError):
        sliding_plan(frames, T=T, stride=stride, first=len(whole))


# --- registry and serialisation ---------------------------------------------------------------------


def test_min_frames_values():
    assert min_frames("speednet", 16) == 48
    assert min_frames("rspnet", 16) == 31
    assert min_frames("rspnet", 16, speeds=(1, 1.5, 2, 4), mode="avid") == 61
    assert min_frames("eval", 16, n=10) == 16
    assert min_frames("supervised", 16, rate=2) == 31
    assert min_frames("sliding", 16, rate=1.25**10) == 1 + int(half_up(15 * 1.25**10))


@given(frames_st, T_st, seed_st, st.sampled_from([1.0, 1.5, 2.0]))
def test_supervised_one_clip_of_consecutive_steps_from_a_start_where_it_fits(frames, T, seed, rate):
    (clip,) = run("supervised", frames, seed, T=T, rate=rate)
    span = min_frames("supervised", T, rate=rate)
    assert clip.role == "train" and clip.speed == rate and clip.aug_group == 0
    ideal = clip.indices[0] + half_up(np.arange(T) * rate)
    assert list(clip.indices) == list(np.clip(ideal, 0, frames - 1))
    assert 0 <= clip.indices[0] <= max(frames - span, 0)  # whole clip inside the video whenever it can be


def test_supervised_starts_cover_every_fitting_start():
    frames, T = 40, 16
    starts = {run("supervised", frames, seed, T=T)[0].indices[0] for seed in range(2000)}
    assert starts == set(range(frames - T + 1))


def test_clips_to_arrays():
    arrays = clips_to_arrays(rspnet_plan(100, np.random.default_rng(0), T=8))
    assert arrays["indices"].shape == (3, 8) and arrays["indices"].dtype == np.int32
    assert arrays["speed"].dtype == np.float32 and arrays["aug_group"].tolist() == [0, 1, 1]
    assert arrays["role"] == ["anchor", "positive", "negative"]


@given(frames=st.integers(48, 400), seed=st.integers(0, 2**32 - 1), T=st.sampled_from([4, 8, 16]))
def test_speednet_uniform_versions_step_evenly_inside_the_window(frames, seed, T):
    clips = speednet_plan(frames, np.random.default_rng(seed), T=T, uniform_p=1.0)
    start = min(min(c.indices) for c in clips)
    for clip in clips:
        steps = np.diff(clip.indices)
        assert set(steps) <= {int(np.floor(clip.speed)), int(np.ceil(clip.speed))}  # round(k f): even steps
        assert max(clip.indices) - start < 3 * T and max(clip.indices) < frames


def test_speednet_uniform_p_zero_keeps_the_papers_draws():
    a = speednet_plan(300, np.random.default_rng(7))
    b = speednet_plan(300, np.random.default_rng(7), uniform_p=0.0)
    assert [list(c.indices) for c in a] == [list(c.indices) for c in b]
    with pytest.raises(ValueError):
        speednet_plan(300, np.random.default_rng(7), uniform_p=1.5)


# --- SpeedNet's test plan (jobs.evaluate speed) --------------------------------------------------


@given(frames=st.integers(1, 400), n=st.integers(1, 25), T=st.sampled_from([1, 8, 16]))
def test_speed_test_positions_are_evenly_spaced_across_the_whole_video_once_each(frames, n, T):
    """Starts run from the first frame to where the 2x clip ends on the last, evenly spaced, each
    distinct start once (min(n, frames - span + 1) of them), the 1x and the 2x clip from each."""
    clips = speed_test_plan(frames, T=T, n=n)
    span = min_frames("speedtest", T)
    assert len(clips) % 2 == 0
    starts = [normal.indices[0] for normal in clips[0::2]]
    assert starts[0] == 0 and starts == sorted(set(starts))  # from the start, increasing, none twice
    assert len(starts) == min(n, max(frames - span, 0) + 1)
    if frames >= span:
        if n > 1:
            assert clips[-1].indices[-1] == frames - 1  # the last 2x clip ends on the video's last frame
        if len(starts) > 1:
            gap = (frames - span) / (len(starts) - 1)  # rounding leaves each gap within a frame of it
            assert set(np.diff(starts)) <= {int(np.floor(gap)), int(np.ceil(gap))}
        if n > frames - span:  # more positions than the video has: every start, once
            assert starts == list(range(frames - span + 1))
    for normal, fast in zip(clips[0::2], clips[1::2]):
        assert (normal.role, fast.role, normal.speed, fast.speed) == ("normal", "sped_up", 1.0, 2.0)
        assert normal.indices[0] == fast.indices[0]  # the same stretch at both rates
        assert all(0 <= i < frames for i in normal.indices + fast.indices)
        if frames >= span:  # no padding: consecutive at 1x, every second frame at 2x
            assert set(np.diff(normal.indices)) <= {1} and set(np.diff(fast.indices)) <= {2}


def test_speed_test_positions_of_a_typical_and_a_short_video():
    # 65 frames (2.6 s at 25 fps), T = 16: the 2x clip spans 31 frames, starts 0 .. 34
    assert [c.indices[0] for c in speed_test_plan(65, T=16)[0::2]] == [0, 4, 8, 11, 15, 19, 23, 26, 30, 34]
    assert [c.indices[0] for c in speed_test_plan(35, T=16)[0::2]] == [0, 1, 2, 3, 4]  # 5 distinct, not 10
    assert len(speed_test_plan(65, T=16, n=1)) == 2 and speed_test_plan(65, T=16, n=1)[0].indices[0] == 0


def test_speed_test_plan_never_reads_past_the_end_of_short_videos():
    clips = speed_test_plan(20, T=16)
    assert len(clips) == 2 and all(max(c.indices) <= 19 for c in clips)  # one padded pair, not black
