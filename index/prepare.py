"""A query video made ready for the model: normalised as the indexed collection was, as a one-video
shard. The CPU-heavy half of a query (decode, resample, re-encode), kept free of torch and FAISS so
a service can run it in light worker processes.

A video is a file path, its bytes, or uint8 (T, H, W, 3) RGB frames. Anything that is not a usable
video (missing, empty, not a video, no video stream, truncated, corrupt) raises ``QueryError`` with
one line saying why; one longer than ``max_seconds`` raises ``TooLong``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.loose_videos import shard_video
from pipeline.normalise import EncodeSettings
from pipeline.shards import ShardIndex

Video = str | Path | bytes | np.ndarray


class QueryError(Exception):
    """A problem with the user's input or the index: one line, for a person."""


class TooLong(QueryError):
    """The video is longer than the caller's bound."""


def encode_settings(sidecar: dict) -> EncodeSettings:
    """How a query is normalised: as the collection was, but any length (a clip shorter than the
    model's T is padded by the plan with its last frame)."""
    return EncodeSettings(**{**sidecar.get("encode", {}), "min_frames": 1})


def prepare_video(
    video: Video, settings: EncodeSettings, work: Path, fps: float | None = None, max_seconds: float | None = None
) -> list[Path]:
    """``video`` normalised with ``settings`` as a one-video shard under ``work`` (its tar paths).
    Bytes are written to a file first; frames are encoded losslessly (FFV1) at ``fps`` (default the
    collection's) first. ``max_seconds``: refuse longer videos, by their declared duration before
    the transcode (cheap) and by the frames decoded after it (declarations can lie)."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    if isinstance(video, bytes):
        if not video:
            raise QueryError("the video is empty (0 bytes)")
        path = work / "upload.video"
        path.write_bytes(video)
    elif isinstance(video, np.ndarray):
        path = _frames_file(video, work / "frames.mkv", fps or settings.fps)
    else:
        path = Path(video)
    if max_seconds is not None:
        _check_duration(declared_seconds(path), max_seconds)
    try:
        tars = shard_video(path, work / "shard", settings)
    except ValueError as e:
        raise QueryError(str(e)) from None
    if max_seconds is not None:
        meta = ShardIndex(tars).read_meta(0)
        _check_duration(meta.frames / meta.fps, max_seconds)
    return tars


def declared_seconds(path: Path) -> float | None:
    """The duration a file declares (container, else its first video stream); None if unknown or unreadable."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            if c.duration:
                return c.duration / av.time_base
            s = c.streams.video[0] if c.streams.video else None
            return float(s.duration * s.time_base) if s is not None and s.duration else None
    except (av.error.FFmpegError, OSError):
        return None  # normalise says what is wrong with it


def _check_duration(seconds: float | None, max_seconds: float) -> None:
    if seconds is not None and seconds > max_seconds:
        raise TooLong(f"the video lasts {seconds:.1f} s, over the {max_seconds:g} s limit on video duration")


def _frames_file(frames: np.ndarray, out: Path, fps: float) -> Path:
    import av

    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise QueryError(f"frames must be a non-empty uint8 (T, H, W, 3) array, got {frames.dtype} {frames.shape}")
    even = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]  # the encoder wants even sizes
    if even.shape[1] == 0 or even.shape[2] == 0:
        raise QueryError(f"frames of {frames.shape[1]}x{frames.shape[2]} pixels are too small")
    with av.open(str(out), "w") as container:
        stream = container.add_stream("ffv1", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = even.shape[2], even.shape[1], "yuv444p"
        for frame in even:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
    return out
