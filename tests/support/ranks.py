"""The per-rank debug record of a pretraining run (``PRETRAIN_RANK_RECORD=1``, see
``jobs.pretrain.rank_record``) and the assertions the multi-process tests make on it."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path


def shard_keys(shards: Path) -> set[str]:
    """Every sample key in ``shards``, from the tar member names (independent of ``ShardIndex``)."""
    keys = set()
    for tar in sorted(Path(shards).glob("*.tar")):
        with tarfile.open(tar) as f:
            keys.update(name.split(".", 1)[0] for name in f.getnames())  # keys hold no dots
    return keys


def rank_records(run_dir: Path, world: int) -> list[list[dict]]:
    """The per-process debug record of a run (``PRETRAIN_RANK_RECORD=1``, see ``jobs.pretrain``)."""
    return [
        [json.loads(line) for line in (Path(run_dir) / "ranks" / f"rank-{r}.jsonl").read_text().splitlines()]
        for r in range(world)
    ]


def batch_samples(entry: dict) -> list[str]:
    """The sample keys of one recorded batch, one per sample (a sample's clips share its key)."""
    return list({s: k for s, k in zip(entry["sample"], entry["keys"])}.values())


def assert_ranks_split_each_epoch(records: list[list[dict]], all_keys: set[str], batch_size: int) -> None:
    """In every epoch, each rank reads whole batches of samples no other rank reads, none twice, and
    together they read every sample (the run must end on an epoch boundary, with world * batch_size
    dividing the set)."""
    read: dict[int, list[list[str]]] = {}
    for rank, record in enumerate(records):
        for entry in (e for e in record if "keys" in e):
            samples = batch_samples(entry)
            assert len(samples) == batch_size, (rank, entry["step"], samples)
            read.setdefault(entry["epoch"], [[] for _ in records])[rank] += samples
    assert read, "no batch recorded"
    for epoch, per_rank in read.items():
        for rank, samples in enumerate(per_rank):
            assert len(samples) == len(set(samples)) == len(all_keys) // len(records), (epoch, rank, samples)
        for a in range(len(per_rank)):
            for b in range(a + 1, len(per_rank)):
                assert not set(per_rank[a]) & set(per_rank[b]), (epoch, a, b)
        assert set().union(*map(set, per_rank)) == all_keys, epoch


def assert_ranks_hold_the_same_weights(records: list[list[dict]], steps: int) -> None:
    """Same initial weights on every rank; after every optimiser step the same weights again (the
    gradients were averaged), and not the weights of before (the step changed them)."""
    per_rank = [[e["weights"] for e in record if "start" in e or "after_step" in e] for record in records]
    assert all(len(w) == steps + 1 for w in per_rank), [len(w) for w in per_rank]
    assert all(w == per_rank[0] for w in per_rank[1:]), "the ranks' weights differ"
    assert len(set(per_rank[0])) == steps + 1, "a step left the weights as they were"
