"""Embeddings of videos in shards: what evaluation, the export job and ``index.query`` all compute.

- ``video_embeddings``: one unit vector per video, the VCOP retrieval protocol (``clips`` evenly
  spaced T-frame clips, the last conv features pooled per clip by ``pool_features``, averaged over
  clips).
- ``window_embeddings``: one unit vector per sliding window (T frames every ``stride`` frames at
  playback ``rate``), per video, for clip-level and within-video retrieval.
- ``windows_of_video``: the same windows of one video of any length, read a bounded chunk of
  windows at a time (``pipeline.windows``; the single-video tools: query, within-video search).

Both read through ``pipeline.loader.eval_loader`` (the evaluation transform: each frame's centre
square resized to ``size``, as both papers test), so a query clip and the collection it searches are
prepared identically. ``samples`` restricts a pass to those sample positions (one export unit).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from models.base import POOLS, Backbone, global_pool
from models.s3dg import speednet_pool
from pipeline.loader import eval_loader
from pipeline.progress import progress as progress_bar
from pipeline.windows import video_windows

EMBED_POOLS = (*POOLS, "speednet")


def pool_features(features: torch.Tensor, how: str = "avg") -> torch.Tensor:
    """(N, C, T', H', W') -> (N, C): ``global_pool``'s "avg" or "max", or "speednet", SpeedNet's own
    (``models.s3dg.speednet_pool``: max over space, then mean over time), so a SpeedNet backbone can
    be embedded the way SpeedNet pools it (its retrieval in section 5.4.2 uses those features)."""
    if how not in EMBED_POOLS:
        raise ValueError(f"pool must be one of {', '.join(EMBED_POOLS)}, not {how!r}")
    return speednet_pool(features) if how == "speednet" else global_pool(features, how)


def _pooled(backbone: Backbone, video: torch.Tensor, pool: str, device: str, max_clips: int) -> torch.Tensor:
    """Pooled features (N, C) float32 on the CPU, in forward passes of at most ``max_clips`` clips."""
    parts = [
        pool_features(backbone.forward_features(part.to(device)), pool).float().cpu()
        for part in torch.split(video, max_clips)
    ]
    return torch.cat(parts)


@torch.no_grad()
def video_embeddings(
    backbone: Backbone,
    shards,
    *,
    T: int = 16,
    clips: int = 10,
    size: int = 112,
    pool: str = "avg",
    batch_size: int = 4,
    device: str = "cpu",
    samples=None,
    max_clips: int = 64,
    progress: bool = False,
):
    """One unit embedding per video (VCOP protocol): (keys, labels, (V, C) float32)."""
    loader = eval_loader(
        shards, "eval", {"T": T, "n": clips}, size=size, batch_size=batch_size, device=device, samples=samples
    )
    keys, labels, rows = [], [], []
    for batch in progress_bar(loader, desc="embed videos", unit="batch", enabled=progress):
        features = _pooled(backbone, batch.video, pool, device, max_clips)
        sample = batch.sample
        for s in range(int(sample.max()) + 1):
            first = int((sample == s).nonzero()[0])
            keys.append(batch.keys[first])
            labels.append(batch.label[first])
            rows.append(features[sample == s].mean(0))
    if not rows:
        return keys, labels, np.zeros((0, backbone.out_channels), np.float32)
    embeddings = torch.nn.functional.normalize(torch.stack(rows), dim=1).numpy()
    return keys, labels, embeddings


@torch.no_grad()
def window_embeddings(
    backbone: Backbone,
    shards,
    *,
    T: int = 16,
    stride: int = 8,
    rate: float = 1.0,
    size: int = 112,
    pool: str = "avg",
    batch_size: int = 1,
    device: str = "cpu",
    samples=None,
    max_clips: int = 64,
    progress: bool = False,
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """Per video, in sample order: (key, (W, T) frame indices of its windows, (W, C) unit embeddings).

    All windows of a video are decoded in one loader batch (each frame once), so memory grows with a
    video's length: about windows x T x 3 x size^2 x 4 bytes for ``batch_size`` 1. Right for a
    collection of short clips; a long video is better read by ``windows_of_video`` (the export
    sends each video whose windows would not fit 512 MB there)."""
    options = {"T": T, "stride": stride, "rate": rate}
    loader = eval_loader(shards, "sliding", options, size=size, batch_size=batch_size, device=device, samples=samples)
    for batch in progress_bar(loader, desc="embed windows", unit="batch", enabled=progress):
        features = torch.nn.functional.normalize(_pooled(backbone, batch.video, pool, device, max_clips), dim=1).numpy()
        sample = batch.sample.numpy()
        indices = batch.indices.numpy()
        for s in range(int(sample.max()) + 1):
            rows = np.flatnonzero(sample == s)
            yield batch.keys[rows[0]], indices[rows], features[rows]


@torch.no_grad()
def windows_of_video(
    backbone: Backbone,
    shards,
    *,
    T: int = 16,
    stride: int = 8,
    rate: float = 1.0,
    size: int = 112,
    pool: str = "avg",
    device: str = "cpu",
    position: int = 0,
    max_clips: int = 64,
    memory_mb: float = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """(W, T) frame indices and (W, C) unit embeddings of every window of one video, chunk by chunk."""
    indices, rows = [], []
    for batch in video_windows(
        shards, T=T, stride=stride, rate=rate, size=size, device=device, position=position, memory_mb=memory_mb
    ):
        rows.append(
            torch.nn.functional.normalize(_pooled(backbone, batch.video, pool, device, max_clips), dim=1).numpy()
        )
        indices.append(batch.indices.numpy())
    if not rows:  # the loader dropped the video (undecodable)
        return np.zeros((0, T), np.int64), np.zeros((0, backbone.out_channels), np.float32)
    return np.concatenate(indices), np.concatenate(rows)
