"""Evaluation's exact parts: SpeedNet's test plan and the retrieval top-k against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.evaluate import retrieval_topk
from pipeline.plans import min_frames, speed_test_plan


@given(frames=st.integers(31, 400), n=st.integers(1, 5), T=st.sampled_from([8, 16]))
def test_speed_test_plan_plays_the_same_stretch_at_1x_and_uniformly_at_2x(frames, n, T):
    clips = speed_test_plan(frames, T=T, n=n)
    assert len(clips) == 2 * n
    for normal, fast in zip(clips[0::2], clips[1::2]):
        assert (normal.role, fast.role, normal.speed, fast.speed) == ("normal", "sped_up", 1.0, 2.0)
        assert normal.indices[0] == fast.indices[0]
        assert np.all(np.diff(normal.indices) == 1) or frames < min_frames("speedtest", T)
        if frames >= min_frames("speedtest", T):
            assert np.all(np.diff(fast.indices) == 2) and fast.indices[-1] < frames


def test_speed_test_plan_never_reads_past_the_end_of_short_videos():
    clips = speed_test_plan(20, T=16)
    assert all(max(c.indices) <= 19 for c in clips)  # padded with the last frame, not black


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), q=st.integers(1, 20), g=st.integers(1, 40), classes=st.integers(1, 5))
def test_retrieval_topk_matches_brute_force(seed, q, g, classes):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(q, 8))
    gallery = rng.normal(size=(g, 8))
    query /= np.linalg.norm(query, axis=1, keepdims=True)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    ql, gl = list(rng.integers(0, classes, q)), list(rng.integers(0, classes, g))
    result = retrieval_topk(query, ql, gallery, gl, ks=(1, 5, 10))
    for k, value in result.items():
        hits = 0
        for i in range(q):
            sims = [(float(query[i] @ gallery[j]), j) for j in range(g)]
            nearest = [j for _, j in sorted(sims, key=lambda s: -s[0])[:k]]
            hits += any(gl[j] == ql[i] for j in nearest)
        assert value == pytest.approx(hits / q)
    assert set(result) == {k for k in (1, 5, 10) if k <= g}
