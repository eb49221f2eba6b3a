"""Which video goes into which shard: pure functions, and the assignment file that makes runs resumable.

The assignment is a seeded shuffle of the usable keys cut into equal runs, so every shard mixes
classes and the same inputs always give the same shards. The assignment is written once, before any
shard; a run that is killed and started again reads it back and redoes only the shards whose tar
is not complete, so no sample is lost or written twice.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.atomic import atomic_write_bytes

ASSIGNMENT_VERSION = 1


def assign_shards(keys: list[str], videos_per_shard: int, seed: int) -> list[list[str]]:
    """Shuffle ``keys`` with ``seed`` and cut them into shards of ``videos_per_shard`` (the last may be short).

    Independent of the input order: keys are sorted before the shuffle.
    """
    if videos_per_shard < 1:
        raise ValueError("videos_per_shard must be at least 1")
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    return [order[i : i + videos_per_shard] for i in range(0, len(order), videos_per_shard)]


def videos_per_shard_for(target_bytes: int, mean_video_bytes: float) -> int:
    """How many videos make a shard of about ``target_bytes``, given the mean stored video size."""
    return max(1, round(target_bytes / max(mean_video_bytes, 1.0)))


@dataclass
class ShardAssignment:
    """What one split's job will write. ``identity`` holds every setting that changes the output."""

    split: str
    identity: dict
    videos_per_shard: int
    shards: list[list[str]]  # keys, in tar order
    entries: dict[str, dict]  # key -> what the worker needs: path, id, label, label_index, times
    failed_before: list[dict]  # annotation rows unusable before any decoding: {key, path, reason}
    missing: list[dict]  # annotated but absent: {key, path}
    version: int = ASSIGNMENT_VERSION

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(asdict(self), indent=1).encode())

    @classmethod
    def load(cls, path: Path) -> ShardAssignment:
        return cls(**json.loads(path.read_text()))
