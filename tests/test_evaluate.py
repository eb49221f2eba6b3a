"""Evaluation's exact parts: SpeedNet's test plan and the retrieval top-k against brute force."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.evaluate import main as evaluate_main
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


@torch.no_grad()
def _video_vectors(backbone, shards: str, truth: dict, T: int, size: int) -> tuple[np.ndarray, list[str]]:
    """A plain loop for the VCOP protocol: each video's 10 evaluation clips through the backbone, the
    last conv features averaged over time and space, then over clips, made unit. Labels come from
    the synthetic dataset's own ground truth, by key."""
    from pipeline.augment import AugmentConfig
    from pipeline.loader import VideoLoader
    from pipeline.shards import resolve_shards

    loader = VideoLoader(resolve_shards(shards), plan="eval", plan_options={"T": T, "n": 10},
                         augment=AugmentConfig("eval", out=size), batch_size=8, device="cpu", shuffle=False)
    vectors, labels = [], []
    for clips, batch in loader:
        features = backbone.forward_features(clips).mean(dim=(2, 3, 4)).double().numpy()
        for s in np.unique(batch["sample"].numpy()):  # the clips of one video
            rows = np.flatnonzero(batch["sample"].numpy() == s)
            assert len(rows) == 10 and len({batch["keys"][r] for r in rows}) == 1
            v = features[rows].mean(axis=0)
            vectors.append(v / np.linalg.norm(v))
            labels.append(truth["videos"][batch["keys"][rows[0]]]["label"])
    return np.array(vectors), labels


def test_retrieval_command_counts_top_k_hits_as_a_hand_count(synthetic_kinetics, synthetic_splits, tiny_checkpoint,
                                                            capsys):
    pytest.importorskip("nvidia.dali")
    from jobs.checkpoint import load_pretext

    # a part of each split, to keep it quick: 8 test videos query 16 train videos
    test = str(synthetic_splits / "test" / "test-000000.tar")
    train = str(synthetic_splits / "train" / "train-00000[01].tar")
    assert evaluate_main([str(tiny_checkpoint), "retrieval", "--shards", test, "--gallery", train,
                          "--frames", "8", "--size", "32", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    truth = json.loads((synthetic_kinetics / "synthetic.json").read_text())
    backbone = load_pretext(tiny_checkpoint)[0].backbone.eval()
    queries, query_labels = _video_vectors(backbone, test, truth, T=8, size=32)
    gallery, gallery_labels = _video_vectors(backbone, train, truth, T=8, size=32)
    assert len(queries) == 8 and len(gallery) == 16  # every video, none dropped
    expected = {"queries": len(queries)}
    for k in (1, 5, 10, 20, 50):
        if k > len(gallery):
            continue  # no top-20 of 16 videos
        hits = 0
        for q, label in zip(queries, query_labels):
            nearest = sorted(range(len(gallery)), key=lambda j: -float(gallery[j] @ q))[:k]
            hits += any(gallery_labels[j] == label for j in nearest)
        expected[f"top{k}"] = hits / len(queries)
    assert printed == pytest.approx(expected, abs=1e-9)
