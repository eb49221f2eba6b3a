"""Re-timing a video by a per-frame speedup S(t), with exact output timing.

Input frame t (of L, at ``fps``) is given u_t = 1 / S_t input-frame durations of output time, so the
output lasts D = sum u input-frame durations, i.e. D / fps seconds. It has N = round(D) frames (at
least 1) at the rational rate fps * N / D, so its duration is exactly D / fps; output frame k shows
the input frame whose output interval contains k * D / N. For uniform speedup R, u = 1 / R, D = L / R.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pipeline.atomic import atomic_path

# FFmpeg's muxer for an output file's suffix (the temporary name has none to guess from)
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi"}


def frame_sources(S, fps: float, rate: float | None = None) -> tuple[np.ndarray, Fraction]:
    """(input frame index of every output frame, output frame rate as an exact fraction).

    ``rate``: the overall speedup S was solved for; the output then lasts exactly L / rate input
    frames, with rate taken as the nearest fraction of denominator at most 1000 (S meets the rate
    to rounding error, and the difference is spread evenly). Without it, sum(1 / S) is taken, as a
    fraction with denominator at most 1000."""
    u = 1.0 / np.asarray(S, dtype=float)
    if u.ndim != 1 or len(u) == 0 or not np.isfinite(u).all() or u.min() <= 0:
        raise ValueError("S must be a non-empty vector of positive speedups")
    if rate is None:
        D = Fraction(float(u.sum())).limit_denominator(1000)
    else:
        if abs(len(u) / rate - u.sum()) > 1e-6 * len(u) / rate:
            raise ValueError(
                f"S does not meet the rate {rate}: it lasts {u.sum():.6f} input frames, not {len(u) / rate:.6f}"
            )
        D = Fraction(len(u)) / Fraction(rate).limit_denominator(1000)
    n = max(1, round(D))
    starts = np.concatenate([[0.0], np.cumsum(u)[:-1]]) * (float(D) / u.sum())  # when each input frame begins
    positions = np.arange(n) * float(D) / n
    # a frame that starts within rounding error after an instant starts at it: uniform 3x takes
    # frames 0, 3, 6, ..., not 0, 2, 5, ... where the float sum of thirds falls just short
    source = np.clip(np.searchsorted(starts, positions + 1e-9 * float(D), side="right") - 1, 0, len(u) - 1)
    return source, Fraction(fps).limit_denominator(1001) * n / D


def _repeat(frames: Iterable, source: np.ndarray) -> Iterator:
    """Each decoded input frame as many times as ``source`` (non-decreasing) names it."""
    counts = np.bincount(source)
    for t, frame in enumerate(frames):
        if t >= len(counts):
            break
        for _ in range(int(counts[t])):
            yield frame


def write(frames: Iterable[np.ndarray], source: np.ndarray, rate: Fraction, path: Path, crf: int = 20) -> int:
    """Encode the frames ``source`` picks from ``frames`` (the input's RGB frames in order) as H.264 at
    exactly ``rate``; written to a temporary name, then renamed. Returns the frames written."""
    path = Path(path)
    rate = Fraction(rate)
    period = 1 / rate  # seconds per frame; the time base makes every frame exactly `ticks` long
    ticks, base = period.numerator, period.denominator
    time_base = Fraction(1, base)  # (read back from the stream before the header, it is not this)
    written = 0
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format=CONTAINERS.get(path.suffix.lower(), "mp4")) as out:
        stream = None
        for frame in _repeat(frames, source):
            if stream is None:
                h, w = frame.shape[:2]
                stream = out.add_stream("libx264", rate=rate, options={"crf": str(crf)})
                stream.width, stream.height = w - w % 2, h - h % 2
                stream.pix_fmt = "yuv420p"
                stream.codec_context.time_base = time_base
                stream.time_base = time_base
            vf = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(frame[: stream.height, : stream.width]), format="rgb24"
            )
            vf.pts, vf.time_base = written * ticks, time_base
            out.mux(stream.encode(vf))
            written += 1
        if stream is not None:
            out.mux(stream.encode(None))
    return written
