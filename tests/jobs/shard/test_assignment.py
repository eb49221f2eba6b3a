"""Which video goes into which shard (jobs/shard/assignment.py): a seeded partition that mixes classes,
the shard size rule, and the job's tars following the assignment."""

from __future__ import annotations

import tarfile
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from jobs.shard.assignment import assign_shards, videos_per_shard_for
from pipeline.shard_format import index_path
from tests.support.shards import read_split


@given(
    st.lists(st.text("abcdefgh", min_size=1, max_size=6), unique=True, max_size=200),
    st.integers(1, 30),
    st.integers(0, 2**32),
)
def test_assign_shards_is_a_seeded_partition(keys, per_shard, seed):
    shards = assign_shards(keys, per_shard, seed)
    flat = [k for s in shards for k in s]
    assert Counter(flat) == Counter(keys)  # every key exactly once
    assert all(len(s) == per_shard for s in shards[:-1]) and all(0 < len(s) <= per_shard for s in shards)
    assert shards == assign_shards(list(reversed(keys)), per_shard, seed)  # input order does not matter


def test_shards_mix_classes():
    keys = [f"{label}{i:03d}" for label in "abcde" for i in range(40)]  # listed class by class
    shards = assign_shards(keys, 20, seed=0)
    assert all(len({k[0] for k in s}) >= 3 for s in shards)
    assert assign_shards(keys, 20, seed=1) != shards


@given(st.integers(1, 1 << 40), st.floats(1, 1 << 30))
def test_videos_per_shard_for(target, mean):
    n = videos_per_shard_for(target, mean)
    assert n >= 1
    if target >= mean:
        assert abs(n * mean - target) <= mean / 2 + 1e-6 * target


def test_shards_follow_the_seeded_shuffle_with_dali_indexes(sharded):
    from jobs.shard.assignment import ShardAssignment, assign_shards

    manifest, samples = read_split(sharded / "train")
    assignment = ShardAssignment.load(sharded / "train" / ".shard-job" / "assignment.json")
    assert assignment.shards == assign_shards(list(assignment.entries), 5, seed=0)  # the seeded shuffle
    assert assignment.shards != assign_shards(list(assignment.entries), 5, seed=1)
    written = [
        [n.split(".")[0] for n in tarfile.open(sharded / "train" / s["name"]).getnames()[0::2]]
        for s in manifest["shards"]
    ]
    assigned = [kept for shard in assignment.shards if (kept := [k for k in shard if k in samples])]
    assert written == assigned  # tar by tar, in assignment order; only failed videos are missing
    for shard in manifest["shards"]:
        lines = index_path(sharded / "train" / shard["name"]).read_text().splitlines()
        assert lines[0] == f"v1.2 {shard['samples']}"
