"""Frames of a stored video's bytes decoded in order with PyAV: for writing videos out (the speedup,
contact sheets of results), where every frame is wanted once. Training and embedding decode
through DALI (``pipeline.loader``) instead."""

from __future__ import annotations

import io
from collections.abc import Iterator

import av
import numpy as np


def decoded_frames(data: bytes) -> Iterator[np.ndarray]:
    """RGB frames of an encoded video, in order (PyAV)."""
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def frames_at(data: bytes, indices) -> np.ndarray:
    """RGB frames ``indices`` of an encoded video (sequential decode), (len, H, W, 3) uint8."""
    wanted, last = {int(i) for i in indices}, int(max(indices))
    found: dict[int, np.ndarray] = {}
    for i, frame in enumerate(decoded_frames(data)):
        if i in wanted:
            found[i] = frame
        if i >= last:
            break
    fallback = found[max(found)]  # a stored video shorter than its metadata says: repeat its end
    return np.stack([found.get(int(i), fallback) for i in indices])
