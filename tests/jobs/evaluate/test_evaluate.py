"""Evaluation (jobs/evaluate): the retrieval top-k against brute force, and the retrieval command against
a hand count. (SpeedNet's test plan is tested with the other plans, in tests/pipeline/test_plans.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.evaluate.__main__ import main as evaluate_main
from jobs.evaluate.retrieval import retrieval_topk


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

    loader = VideoLoader(
        resolve_shards(shards),
        plan="eval",
        plan_options={"T": T, "n": 10},
        augment=AugmentConfig("eval", out=size),
        batch_size=8,
        device="cpu",
        shuffle=False,
    )
    vectors, labels = [], []
    for batch in loader:
        clips = batch.video
        features = backbone.forward_features(clips).mean(dim=(2, 3, 4)).double().numpy()
        for s in np.unique(batch.sample.numpy()):  # the clips of one video
            rows = np.flatnonzero(batch.sample.numpy() == s)
            assert len(rows) == 10 and len({batch.keys[r] for r in rows}) == 1
            v = features[rows].mean(axis=0)
            vectors.append(v / np.linalg.norm(v))
            labels.append(truth["videos"][batch.keys[rows[0]]]["label"])
    return np.array(vectors), labels


def test_retrieval_command_counts_top_k_hits_as_a_hand_count(
    synthetic_kinetics, synthetic_splits, tiny_checkpoint, capsys
):
    pytest.importorskip("nvidia.dali")
    from models.trained import load_trained

    # a part of each split, to keep it quick: 8 test videos query 16 train videos
    test = str(synthetic_splits / "test" / "test-000000.tar")
    train = str(synthetic_splits / "train" / "train-00000[01].tar")
    assert (
        evaluate_main(
            [
                str(tiny_checkpoint),
                "retrieval",
                "--shards",
                test,
                "--gallery",
                train,
                "--frames",
                "8",
                "--size",
                "32",
                "--json",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    truth = json.loads((synthetic_kinetics / "synthetic.json").read_text())
    backbone = load_trained(tiny_checkpoint).backbone
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
