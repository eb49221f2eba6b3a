"""Decode only the planned frames of a stored video, with PyAV, seeking to keyframes: the CPU path's decoder.

A stored video is demuxed once (cheap: no decoding) into its packets; frame i is the packet with the
i-th smallest timestamp, as a sequential decoder would number it. ``decode_runs`` then says where
decoding must start: from the last keyframe at or before a wanted frame, but only when that keyframe
lies past the frames already decoded; otherwise decoding simply goes on. So overlapping or nearby
clips cost one pass, distant ones one seek each, and no frame is decoded twice.

Frames come out as their decoded planes (8-bit 4:2:0, what the shard format stores), unconverted:
colour conversion happens after cropping, at the output size (``pipeline.torch_augment``). A stream
whose timestamps cannot number its frames (missing or repeated, or a packet count that disagrees
with the metadata) is decoded from its start and numbered by counting, as DALI's decoder does.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np


class BadStream(Exception):
    """The stream does not hold the planned frames: it has no video, or it ends before them."""


@dataclass(frozen=True)
class Run:
    """One stretch of decoding: from the keyframe ``start`` on, until ``frames`` (wanted, ascending) are out."""

    start: int
    frames: tuple[int, ...]


def decode_runs(wanted, keyframes) -> list[Run]:
    """Where to seek for the sorted distinct frame indices ``wanted``, given the sorted keyframe indices.

    A new run starts at the last keyframe k at or before the next wanted frame exactly when k lies
    beyond the frame after the last one decoded: seeking then skips frames that going on would
    decode. This decodes the fewest frames a keyframe-seeking decoder can. ``keyframes`` must hold 0.
    """
    if not len(keyframes) or keyframes[0] != 0:
        raise ValueError("the first frame of a stream is a keyframe")
    runs: list[tuple[int, list[int]]] = []
    last = -1  # the last frame decoded so far
    for f in wanted:
        f = int(f)
        if f <= last:
            raise ValueError(f"wanted frames must be sorted and distinct, got {f} after {last}")
        k = keyframes[bisect.bisect_right(keyframes, f) - 1]
        if not runs or k > last + 1:
            runs.append((k, []))
        runs[-1][1].append(f)
        last = f
    return [Run(start, tuple(frames)) for start, frames in runs]


def decoded_count(runs: list[Run]) -> int:
    """Frames a decoder decodes for ``runs`` (each from its start to its last wanted frame)."""
    return sum(r.frames[-1] - r.start + 1 for r in runs)


@dataclass
class Planes:
    """Decoded frames as planes: ``y`` (n, H, W) and ``uv`` (n, 2, H/2, W/2), uint8."""

    y: np.ndarray
    uv: np.ndarray
    full_range: bool  # JPEG range (MJPEG shards), else limited (16 to 235)


class StreamIndex:
    """A video's packets in decode order, and the number of the frame each one shows."""

    def __init__(self, container: av.container.InputContainer, expected_frames: int):
        if not container.streams.video:
            raise BadStream("no video stream")
        self.stream = container.streams.video[0]
        self.packets = [p for p in container.demux(self.stream) if p.size]
        pts = [p.pts for p in self.packets]
        self.numbered = (
            None not in pts and len(set(pts)) == len(pts) and len(pts) == expected_frames
        )  # else: decode from the start and count
        if self.numbered:
            self.frame_of = {t: i for i, t in enumerate(sorted(pts))}
            self.first_packet = {}  # frame index of a keyframe -> its packet's position in decode order
            for position, packet in enumerate(self.packets):
                if packet.is_keyframe:
                    self.first_packet.setdefault(self.frame_of[packet.pts], position)
            self.keyframes = sorted(self.first_packet)
        if not self.numbered or not self.keyframes or self.keyframes[0] != 0:
            self.numbered, self.keyframes, self.first_packet = False, [0], {0: 0}


class PlannedDecode:
    """The frames ``wanted`` (sorted, distinct) of an encoded video of ``expected_frames`` frames.

    ``decoded`` says how many frames the decoder decodes for them; ``chunks(n)`` yields their planes,
    n frames at a time, in order, so a long plan never holds more than n decoded frames. Decoding
    raises ``av.error.FFmpegError`` for a stream FFmpeg cannot read and ``BadStream`` for one
    that ends before its planned frames. ``seek=False`` decodes from the start, as DALI's CPU decoder
    does (for comparisons)."""

    def __init__(self, data: bytes, wanted, expected_frames: int, threads: int = 1, seek: bool = True):
        self.wanted = [int(f) for f in wanted]
        self._container = av.open(io.BytesIO(data))
        try:
            self._index = StreamIndex(self._container, expected_frames)
        except BaseException:
            self._container.close()
            raise
        self._codec = self._index.stream.codec_context
        self._codec.thread_count = threads
        self._codec.thread_type = "NONE" if threads == 1 else "AUTO"
        self.runs = decode_runs(self.wanted, self._index.keyframes if seek else [0])
        self.decoded = decoded_count(self.runs)

    def chunks(self, size: int | None = None) -> Iterator[Planes]:
        size = size or len(self.wanted)
        done, pending = 0, []
        try:
            for run in self.runs:
                for planes in _decode_run(self._index, self._codec, run):
                    pending.append(planes)
                    if len(pending) == size:
                        yield _stack(pending)
                        done, pending = done + size, []
            if done + len(pending) < len(self.wanted):
                raise BadStream(
                    f"the stream ended before frame {self.wanted[done + len(pending)]} of {len(self.wanted)} planned"
                )
            if pending:
                yield _stack(pending)
        finally:
            self._container.close()

    def all(self) -> Planes:
        """Every wanted frame at once."""
        return next(self.chunks())


def _stack(frames: list[tuple[np.ndarray, np.ndarray, bool]]) -> Planes:
    return Planes(np.stack([y for y, _, _ in frames]), np.stack([uv for _, uv, _ in frames]), frames[0][2])


def _decode_run(index: StreamIndex, codec, run: Run) -> Iterator[tuple[np.ndarray, np.ndarray, bool]]:
    """Feed packets from the run's keyframe on until its frames are out; yields their planes in order."""
    todo = set(run.frames)
    codec.flush_buffers()  # a jump: nothing decoded before may reference what comes next
    counted = run.start - 1  # frames numbered by counting (streams without usable timestamps)
    for frames in _fed(codec, index.packets[index.first_packet[run.start] :]):
        for frame in frames:
            if index.numbered:
                number = index.frame_of.get(frame.pts)
                if number is None:
                    raise BadStream(f"a decoded frame has timestamp {frame.pts}, which no packet has")
            else:
                counted += 1
                number = counted
            if number in todo:
                todo.discard(number)
                yield planes_of(frame)
                if not todo:
                    return


def _fed(codec, packets) -> Iterator[list[av.VideoFrame]]:
    """What the decoder returns for each packet, then for the end of the stream (its held-back frames)."""
    for packet in packets:
        yield codec.decode(packet)
    yield codec.decode(None)


def planes_of(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, bool]:
    """Copies of a decoded frame's Y plane (H, W) and U, V planes (2, H/2, W/2), and whether its
    range is full (4:2:0; other layouts are converted to it)."""
    full = frame.format.name == "yuvj420p" or getattr(frame, "color_range", 0) == 2
    if frame.format.name not in ("yuv420p", "yuvj420p"):
        frame = frame.reformat(format="yuv420p")
    y, u, v = (np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in frame.planes[:3])
    return y.copy(), np.stack([u, v]), full
