"""Normalise one video file into the bytes stored in a shard.

Every stored video has a constant frame rate (frame i is shown at i / fps, so "2x" means the same
thing in every video), a capped short side, square pixels, rotation applied, 8-bit 4:2:0 and no
audio. The work runs in FFmpeg's own filters (through PyAV), so it is the same resampling a user's
``ffmpeg -vf fps=25,scale=...`` would do, at the same speed, without a system ffmpeg.

A file that cannot be normalised raises ``Rejected`` whose message is the reason a person reads in
the manifest; nothing here stops the job for bad input.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from pipeline.shard_format import SourceInfo


class Rejected(Exception):
    """This input cannot be sharded; ``str(exc)`` says why, for a person."""


@dataclass(frozen=True)
class Codec:
    """How one output codec is encoded and stored."""

    encoder: str  # FFmpeg encoder name
    name: str  # the codec's name in the stored stream (what a decoder reports)
    container: str
    pix_fmt: str
    default_quality: int


CODECS: dict[str, Codec] = {
    # Decoded by DALI's CPU and GPU (NVDEC) backends alike: one pipeline graph everywhere.
    "vp9": Codec("libvpx-vp9", "vp9", "mp4", "yuv420p", default_quality=32),
    # NVDEC only in DALI (its CPU backend refuses H.264); smallest files, PyAV decodes it on CPU.
    "h264": Codec("libx264", "h264", "mp4", "yuv420p", default_quality=23),
    # All-intra: largest files, fastest CPU decode, any frame is a random-access point.
    "mjpeg": Codec("mjpeg", "mjpeg", "mkv", "yuvj420p", default_quality=4),
}


@dataclass(frozen=True)
class EncodeSettings:
    """What every stored video is normalised to. Part of the shard plan: changing it is a new job."""

    fps: int = 25
    # SpeedNet trains at random sizes up to 336 px: stored at 336, no training size needs upscaling.
    short_side: int = 336  # cap on the shorter side; smaller videos are never upscaled; 0 = keep
    codec: str = "vp9"
    gop: int = 32  # keyframe interval in frames (ignored by mjpeg: every frame is a keyframe)
    quality: int | None = None  # CRF for vp9/h264, qscale for mjpeg; None = the codec's default
    min_frames: int = 32  # shorter outputs are rejected: a 16-frame clip at 2x needs 32
    threads: int = 1  # codec threads per video; the job parallelises across videos instead

    def __post_init__(self):
        if self.codec not in CODECS:
            raise ValueError(f"unknown codec {self.codec!r}; choose from {', '.join(CODECS)}")
        if self.fps <= 0 or self.short_side < 0 or self.gop <= 0 or self.min_frames < 1:
            raise ValueError(f"invalid encode settings: {self}")


@dataclass(frozen=True)
class Normalised:
    data: bytes
    width: int
    height: int
    frames: int
    source: SourceInfo


def output_size(width: int, height: int, sar: Fraction, rotation: int, short_side: int) -> tuple[int, int]:
    """Output (width, height): square pixels, rotated, short side capped at ``short_side``, even.

    Pure, so the sizing rule is tested on its own. Never upscales the short side; 4:2:0 needs even
    sides, so each side is rounded to the nearest even number (at least 2).
    """
    display_w = width * (sar if sar > 0 else 1)
    display_h = Fraction(height)
    if rotation % 180:
        display_w, display_h = display_h, display_w
    scale = Fraction(1)
    if short_side and min(display_w, display_h) > short_side:
        scale = Fraction(short_side) / min(display_w, display_h)

    def even(x: Fraction) -> int:
        return max(2, 2 * round(x / 2))

    return even(display_w * scale), even(display_h * scale)


def _rotation_filters(rotation: int) -> list[tuple[str, str]]:
    # PyAV reports the angle the display matrix rotates counter-clockwise; undo it as ffmpeg's
    # autorotate does.
    return {
        90: [("transpose", "cclock")],
        180: [("hflip", ""), ("vflip", "")],
        270: [("transpose", "clock")],
    }.get(rotation % 360, [])


def _build_graph(
    frame: av.VideoFrame, time_base: Fraction, rotation: int, size: tuple[int, int], settings: EncodeSettings
):
    graph = av.filter.Graph()
    chain = [graph.add_buffer(width=frame.width, height=frame.height, format=frame.format, time_base=time_base)]
    steps = _rotation_filters(rotation) + [
        ("fps", str(settings.fps)),
        ("scale", f"{size[0]}:{size[1]}:flags=area"),
        ("format", CODECS[settings.codec].pix_fmt),
        ("setsar", "1"),
    ]
    for name, args in steps:
        chain.append(graph.add(name, args))
    chain.append(graph.add("buffersink"))
    for a, b in zip(chain, chain[1:]):
        a.link_to(b)
    graph.configure()
    return graph


def encoder_options(settings: EncodeSettings) -> dict[str, str]:
    """The encoder's AVOptions: the single definition, also what a plain ``ffmpeg`` gets as ``-key:v value``."""
    quality = settings.quality if settings.quality is not None else CODECS[settings.codec].default_quality
    common = {"g": str(settings.gop), "threads": str(settings.threads)}
    return (
        common
        | {
            # Realtime VP9 with no hidden alt-ref frames: every packet is one shown frame, so
            # packet and frame indices agree for frame-index decoding.
            "vp9": {
                "deadline": "realtime",
                "cpu-used": "8",
                "crf": str(quality),
                "b": "0",
                "lag-in-frames": "0",
                "auto-alt-ref": "0",
                "row-mt": "1",
            },
            # No B-frames: decode order is display order, which frame-index decoding relies on.
            "h264": {"preset": "veryfast", "crf": str(quality), "bf": "0"},
            # A fixed quantiser. (``-q:v`` works in the ffmpeg CLI only because the CLI copies
            # global_quality onto every frame; PyAV does not, so pin qmin = qmax instead.)
            "mjpeg": {"qmin": str(quality), "qmax": str(quality)},
        }[settings.codec]
    )


def _open_output(size: tuple[int, int], settings: EncodeSettings):
    codec = CODECS[settings.codec]
    buffer = io.BytesIO()
    output = av.open(buffer, "w", format={"mp4": "mp4", "mkv": "matroska"}[codec.container])
    stream = output.add_stream(codec.encoder, rate=settings.fps, options=encoder_options(settings))
    stream.width, stream.height = size
    stream.pix_fmt = codec.pix_fmt
    return buffer, output, stream


def _declared_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _decode_failure(container, stream, decoded: int, shown: float, error) -> str:
    """Why decoding stopped: the file ends early (truncated) or its data is damaged (corrupt).

    Demuxing on, without decoding, tells them apart: damaged data is followed by more packets up to
    the declared duration; a cut file has none."""
    reached = shown
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                reached = max(reached, float(packet.pts * stream.time_base))
    except av.error.FFmpegError:
        pass
    declared = _declared_duration(container, stream)
    message = error.strerror or error
    if declared and reached < 0.9 * declared:
        return f"truncated: the data ends after {reached:.2f} s of the declared {declared:.2f} s ({message})"
    return f"corrupt video data after {decoded} decoded frames ({message})"


def normalise(path: str | os.PathLike, settings: EncodeSettings) -> Normalised:
    """Decode ``path``, resample to ``settings`` and re-encode; raise ``Rejected`` for bad input."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise Rejected("empty file (0 bytes)")
    except FileNotFoundError:
        raise Rejected("file not found") from None
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise Rejected(f"not a readable video file ({e.strerror or e})") from None
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["no streams"]
            raise Rejected(f"no video stream (contains: {', '.join(kinds)})")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = settings.threads
        return _transcode(container, stream, path, settings)


def _transcode(container, stream, path: Path, settings: EncodeSettings) -> Normalised:
    time_base = stream.time_base or Fraction(1, 1000)
    graph = output = out_stream = buffer = None
    first_pts = last_pts = None
    decoded = written = damaged = 0
    rotation = 0
    size = (0, 0)

    def drain():
        nonlocal written
        while True:
            try:
                frame = graph.vpull()
            except (av.BlockingIOError, av.EOFError):
                return
            frame.pts, frame.time_base = written, Fraction(1, settings.fps)
            written += 1
            for packet in out_stream.encode(frame):
                output.mux(packet)

    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                if frame.pts is None:
                    raise Rejected("video frames carry no timestamps")
                if graph is None:
                    rotation = int(frame.rotation or 0) % 360
                    sar = stream.codec_context.sample_aspect_ratio or Fraction(1)
                    size = output_size(frame.width, frame.height, Fraction(sar), rotation, settings.short_side)
                    graph = _build_graph(frame, time_base, rotation, size, settings)
                    buffer, output, out_stream = _open_output(size, settings)
                    first_pts, first_shape = frame.pts, (frame.width, frame.height)
                elif (frame.width, frame.height) != first_shape:
                    raise Rejected(f"frame size changes mid-stream ({first_shape} to {(frame.width, frame.height)})")
                if last_pts is not None and frame.pts <= last_pts:
                    continue  # a repeated or backwards timestamp: keep the first frame shown then
                last_pts, last_duration = frame.pts, frame.duration
                decoded += 1
                damaged += frame.is_corrupt  # damage the decoder concealed instead of raising
                graph.vpush(frame)
                drain()
    except av.error.FFmpegError as e:
        shown = float((last_pts - first_pts) * time_base) if decoded else 0.0
        raise Rejected(_decode_failure(container, stream, decoded, shown, e)) from None
    if graph is None:
        raise Rejected("no decodable video frames")
    if damaged:
        raise Rejected(f"corrupt video data: the decoder concealed damage in {damaged} of {decoded} frames")
    graph.vpush(None)
    drain()
    for packet in out_stream.encode():
        output.mux(packet)
    output.close()

    if last_duration:  # the last frame lasts as long as the file says, else one nominal frame
        frame_duration = float(last_duration * time_base)
    else:
        frame_duration = 1 / float(stream.guessed_rate or stream.average_rate or settings.fps)
    duration = float((last_pts - first_pts) * time_base) + frame_duration
    declared = _declared_duration(container, stream)
    if declared and duration < declared - max(0.5, 0.1 * declared):
        raise Rejected(f"truncated: only {duration:.2f} s of the declared {declared:.2f} s decode")
    if written < settings.min_frames:
        raise Rejected(f"too short: {written} frames at {settings.fps} fps (at least {settings.min_frames} needed)")

    cc = stream.codec_context
    source = SourceInfo(
        path=str(path),
        codec=cc.name,
        pix_fmt=cc.pix_fmt or "",
        width=cc.width,
        height=cc.height,
        fps=float(stream.average_rate or 0),
        frames=decoded,
        duration=round(duration, 6),
        rotation=rotation,
    )
    return Normalised(buffer.getvalue(), size[0], size[1], written, source)


def ffmpeg_command(ffmpeg: str, src: Path, dst: Path, s: EncodeSettings) -> list[str]:
    """The plain-ffmpeg command equivalent to ``normalise`` for ``src`` (same filters, encoder and
    options): the shard benchmark's ceiling and the tests' second opinion."""
    with av.open(str(src)) as c:
        stream = c.streams.video[0]
        frame = next(c.decode(stream))
        rotation = int(frame.rotation or 0)
        sar = Fraction(stream.codec_context.sample_aspect_ratio or 1)
        w, h = output_size(frame.width, frame.height, sar, rotation, s.short_side)
    codec = CODECS[s.codec]
    options = [arg for key, value in encoder_options(s).items() for arg in (f"-{key}:v", value)]
    vf = f"fps={s.fps},scale={w}:{h}:flags=area,format={codec.pix_fmt},setsar=1"
    return [
        ffmpeg,
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-i",
        f"file:{src}",
        "-an",
        "-vf",
        vf,
        "-c:v",
        codec.encoder,
        *options,
        "-f",
        {"mp4": "mp4", "mkv": "matroska"}[codec.container],
        f"file:{dst}",
    ]
