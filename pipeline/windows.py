"""The sliding windows of one video of any length, a bounded chunk at a time.

The single-video tools (query, speediness, speedup, CAM) read every T-frame window of a user's video
(``stride`` frames apart at playback ``rate``). A long video's windows would not fit memory in one
loader batch, so they come as loader batches of as many windows as fit ``memory_mb`` of float32.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipeline.batches import Batch
from pipeline.loader import eval_loader
from pipeline.plans import sliding_count
from pipeline.shards import ShardIndex, resolve_shards


def windows_in(memory_mb: float, *, T: int, size: int) -> int:
    """How many float32 windows of T frames at ``size`` x ``size`` fit ``memory_mb`` (at least one)."""
    return max(1, int(memory_mb * 2**20 // (T * 3 * size * size * 4)))


def video_windows(
    shards,
    *,
    T: int = 16,
    stride: int = 8,
    rate: float = 1.0,
    size: int = 112,
    device: str = "cpu",
    position: int = 0,
    memory_mb: float = 512,
) -> Iterator[Batch]:
    """The sliding windows of the video at ``position`` as loader batches of as many windows as
    fit ``memory_mb`` of float32, so memory stays bounded whatever its length. On the CPU path each
    chunk is one in-order pass from the keyframe before its first window, every frame decoded once
    (a chunk boundary re-decodes at most one keyframe interval); DALI's CPU decoder starts each chunk
    from the video's start."""
    index = ShardIndex(shards if isinstance(shards, list) else resolve_shards(shards))
    total = sliding_count(index.read_meta(position).frames, T=T, stride=stride, rate=rate)
    chunk = windows_in(memory_mb, T=T, size=size)
    for first in range(0, total, chunk):
        options = {"T": T, "stride": stride, "rate": rate, "first": first, "count": chunk}
        yield from eval_loader(index.tars, "sliding", options, size=size, device=device, samples=[position])
