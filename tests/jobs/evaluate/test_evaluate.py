"""Evaluation (jobs/evaluate): the retrieval top-k against brute force, its poolings, the retrieval
command against a hand count under each pooling, and the speed command's positions per video.
(SpeedNet's test plan is tested with the other plans, in tests/pipeline/test_plans.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from index.embed import pool_features
from jobs.evaluate.__main__ import main as evaluate_main
from jobs.evaluate.retrieval import retrieval, retrieval_topk

# Each pooling written out plainly, to check the code's against: (N, C, T, H, W) -> (N, C).
BY_HAND = {
    "avg": lambda f: f.mean(dim=(2, 3, 4)),
    "speednet": lambda f: f.amax(dim=(3, 4)).mean(dim=2),  # max over space, then mean over time
}


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


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), shape=st.tuples(*(st.integers(1, 4) for _ in range(5))))
def test_speednet_pooling_agrees_with_average_exactly_where_space_is_constant(seed, shape):
    """Max over space then mean over time equals the global average when each frame's map is
    constant over space, and exceeds it by the mean over time of (max - mean) over space otherwise."""
    features = torch.from_numpy(np.random.default_rng(seed).normal(size=shape))
    flat = features[..., :1, :1].expand_as(features)  # every position shows its frame's first value
    assert torch.allclose(pool_features(flat, "speednet"), pool_features(flat, "avg"))
    for how, pool in BY_HAND.items():
        assert torch.allclose(pool_features(features, how), pool(features))
    excess = (features.amax(dim=(3, 4)) - features.mean(dim=(3, 4))).mean(dim=2)
    assert torch.allclose(pool_features(features, "speednet") - pool_features(features, "avg"), excess)
    if shape[3] * shape[4] > 1:  # a varying map: the poolings differ in every channel
        assert (pool_features(features, "speednet") > pool_features(features, "avg")).all()


def test_speednet_pooling_by_hand():
    # one channel, two frames of 2 x 2: frame 0 peaks at 1 top left, frame 1 at 3 bottom right
    features = torch.tensor([[[[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 3.0]]]]])
    assert pool_features(features, "speednet").item() == 2.0  # (1 + 3) / 2: each frame's peak, averaged
    assert pool_features(features, "avg").item() == 0.5 and pool_features(features, "max").item() == 3.0
    with pytest.raises(ValueError, match="speednet"):
        pool_features(features, "min")
    with pytest.raises(ValueError, match="pooling"):
        retrieval(None, "q", "g", pooling="max")  # retrieval offers avg and speednet only


@torch.no_grad()
def _video_vectors(
    backbone, shards: str, truth: dict, T: int, size: int, pooling: str = "avg"
) -> tuple[np.ndarray, list[str]]:
    """A plain loop for the VCOP protocol: each video's 10 evaluation clips through the backbone, the
    last conv features pooled by ``BY_HAND[pooling]``, then averaged over clips, made unit. Labels
    come from the synthetic dataset's own ground truth, by key."""
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
        features = BY_HAND[pooling](backbone.forward_features(clips)).double().numpy()
        for s in np.unique(batch.sample.numpy()):  # the clips of one video
            rows = np.flatnonzero(batch.sample.numpy() == s)
            assert len(rows) == 10 and len({batch.keys[r] for r in rows}) == 1
            v = features[rows].mean(axis=0)
            vectors.append(v / np.linalg.norm(v))
            labels.append(truth["videos"][batch.keys[rows[0]]]["label"])
    return np.array(vectors), labels


def _hand_count(queries, query_labels, gallery, gallery_labels) -> dict:
    """Top-k hits counted one query at a time, as the retrieval command should report them."""
    counted = {"queries": len(queries)}
    for k in (1, 5, 10, 20, 50):
        if k > len(gallery):
            continue  # no top-20 of 16 videos
        hits = 0
        for q, label in zip(queries, query_labels):
            nearest = sorted(range(len(gallery)), key=lambda j: -float(gallery[j] @ q))[:k]
            hits += any(gallery_labels[j] == label for j in nearest)
        counted[f"top{k}"] = hits / len(queries)
    return counted


@pytest.mark.parametrize("pooling", [None, "speednet"])
def test_retrieval_command_counts_top_k_hits_as_a_hand_count(
    synthetic_kinetics, synthetic_splits, tiny_checkpoint, capsys, pooling
):
    pytest.importorskip("nvidia.dali")
    from models.trained import load_trained

    # a part of each split, to keep it quick: 8 test videos query 16 train videos
    test = str(synthetic_splits / "test" / "test-000000.tar")
    train = str(synthetic_splits / "train" / "train-00000[01].tar")
    flags = ["--frames", "8", "--size", "32", "--json"] + (["--pooling", pooling] if pooling else [])
    assert evaluate_main([str(tiny_checkpoint), "retrieval", "--shards", test, "--gallery", train, *flags]) == 0
    printed = json.loads(capsys.readouterr().out)
    truth = json.loads((synthetic_kinetics / "synthetic.json").read_text())
    backbone = load_trained(tiny_checkpoint).backbone
    counts = {}
    for how in BY_HAND:
        queries, query_labels = _video_vectors(backbone, test, truth, T=8, size=32, pooling=how)
        gallery, gallery_labels = _video_vectors(backbone, train, truth, T=8, size=32, pooling=how)
        assert len(queries) == 8 and len(gallery) == 16  # every video, none dropped
        counts[how] = _hand_count(queries, query_labels, gallery, gallery_labels)
    # the two poolings rank differently here, so a command that ignored --pooling would fail one case
    assert counts["avg"] != counts["speednet"]
    assert printed == pytest.approx(counts[pooling or "avg"], abs=1e-9)


def test_speed_command_scores_each_position_of_each_video(synthetic_splits, tiny_speednet_checkpoint, capsys):
    """A 1x and a 2x clip at each of --positions positions of each video (default 10): the 8 videos
    of 65 frames have 51 distinct starts for T = 8, so every position asked for is scored."""
    pytest.importorskip("nvidia.dali")
    from jobs.evaluate.speed_test import speed_accuracy
    from models.trained import load_trained

    test = str(synthetic_splits / "test" / "test-000000.tar")
    common = [str(tiny_speednet_checkpoint), "speed", "--shards", test, "--frames", "8", "--size", "32", "--json"]
    results = {}
    for positions in (None, 3):
        assert evaluate_main(common + (["--positions", str(positions)] if positions else [])) == 0
        results[positions] = json.loads(capsys.readouterr().out)
    assert results[None]["clips"] == 2 * 10 * 8 and results[3]["clips"] == 2 * 3 * 8
    net = load_trained(tiny_speednet_checkpoint).pretext.net
    direct = speed_accuracy(net, test, T=8, size=32, positions=3, max_clips=6)  # passes of 3 pairs
    assert results[3] == direct | {"speed_accuracy": pytest.approx(direct["speed_accuracy"])}


def test_evaluate_refuses_an_option_of_the_other_task(tmp_path, capsys):
    missing = str(tmp_path / "never-read.pt")  # refused before the checkpoint is opened
    assert evaluate_main([missing, "retrieval", "--shards", "s", "--gallery", "g", "--positions", "3"]) == 2
    assert evaluate_main([missing, "speed", "--shards", "s", "--pooling", "speednet"]) == 2
    assert evaluate_main([missing, "speed", "--shards", "s", "--positions", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)


class _MotionOracle(torch.nn.Module):
    """An "RSPNet" whose embedding is the clip's motion per frame: [1, mean |frame difference|]. A 2x
    clip moves twice as far per frame as a 1x clip of the same video, so this embedding puts two
    clips at one speed nearer each other than a clip at the other speed."""

    motion = "rsp"

    def __init__(self, constant: bool = False):
        super().__init__()
        self.constant = constant
        self.g_m = torch.nn.Identity()

    def backbone(self, video: torch.Tensor) -> torch.Tensor:
        step = (video[:, :, 1:] - video[:, :, :-1]).abs().mean(dim=(1, 2, 3, 4))
        return torch.stack([torch.ones_like(step), torch.zeros_like(step) if self.constant else step], 1)


def test_rsp_test_scores_the_plans_triplets(synthetic_splits):
    """The relative-speed test reads each video's anchor, positive and negative in the plan's order: a
    motion oracle gets nearly all right, an embedding that cannot tell clips apart gets none (ties
    are not right)."""
    pytest.importorskip("nvidia.dali")
    from jobs.evaluate.rsp_test import rsp_accuracy

    test = synthetic_splits / "test"
    oracle = rsp_accuracy(_MotionOracle(), test, T=8, size=32)
    assert oracle["videos"] == 12 and oracle["dropped"] == 0 and oracle["rsp_accuracy"] > 0.9
    assert rsp_accuracy(_MotionOracle(constant=True), test, T=8, size=32)["rsp_accuracy"] == 0.0


def test_rsp_command_scores_an_rspnet_and_refuses_a_speednet(
    synthetic_splits, tiny_checkpoint, tiny_speednet_checkpoint, capsys
):
    pytest.importorskip("nvidia.dali")
    from jobs.evaluate.rsp_test import rsp_accuracy
    from models.trained import load_trained

    test = str(synthetic_splits / "test" / "test-000000.tar")
    assert (
        evaluate_main([str(tiny_checkpoint), "rsp", "--shards", test, "--frames", "8", "--size", "32", "--json"]) == 0
    )
    printed = json.loads(capsys.readouterr().out)
    direct = rsp_accuracy(load_trained(tiny_checkpoint).pretext, test, T=8, size=32)
    assert printed == direct | {"rsp_accuracy": pytest.approx(direct["rsp_accuracy"])} and printed["videos"] == 8
    assert evaluate_main([str(tiny_speednet_checkpoint), "rsp", "--shards", test]) == 2
    assert "motion 'rsp'" in capsys.readouterr().err
