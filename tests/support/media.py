"""Small synthetic video files covering every bad-input class the shard job must survive.

Not a test module: helpers imported by tests (``from tests.support.media import all_fixtures``).
At the end, what the independent FFmpeg (the ``ffmpeg`` fixture's binary, sharing no code with
PyAV) reads in a file: every frame (:func:`ffmpeg_frames`) and presentation time
(:func:`ffmpeg_pts`); and :func:`psnr` to compare frames.

Every maker writes exactly one file at the path it is given (the caller picks the name) and
returns a :class:`Fixture`.  All encoding is done with PyAV; nothing needs the imageio-ffmpeg
binary (PyAV 18 can write a display matrix itself: ``VideoStream.set_display_rotation``).

Frame content (:func:`pattern_frame`) is deterministic and differs frame to frame:

* a dark background (grey 40),
* a red square in the top-left corner (orientation marker: after a correct rotation it sits
  where a viewer would see the top-left of the picture),
* a green vertical bar moving right by ``size[0] / 32`` px per frame,
* the frame index in binary as ``INDEX_BITS`` white/dark cells along the bottom eighth of the
  picture (least-significant bit on the left), readable back with :func:`read_frame_index`
  even after scaling, as long as the picture is upright.
"""

from __future__ import annotations

import dataclasses
import fractions
import re
import struct
import subprocess
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

__all__ = [
    "Fixture",
    "INDEX_BITS",
    "VFR_PTS_MS",
    "all_fixtures",
    "audio_only",
    "corrupt",
    "corrupt_silent",
    "decode_report",
    "empty",
    "ffmpeg_frames",
    "ffmpeg_pts",
    "fps60",
    "good",
    "good_with_audio",
    "hevc",
    "matroska_as_mp4",
    "mp4_boxes",
    "not_a_video",
    "odd_size",
    "odd_size_444",
    "pattern_frame",
    "psnr",
    "read_frame_index",
    "rotated",
    "ten_bit",
    "too_short",
    "truncated",
    "truncated_faststart",
    "vfr",
    "write_video",
]

OK = "ok"
FAILED = "failed"

INDEX_BITS = 10  # frame indices 0..1023 are readable from the picture

# Presentation times (ms) of the ``vfr`` fixture: 30 ms / 50 ms alternating, one 200 ms gap.
# 30 frames, last at 1300 ms; the last frame lasts 50 ms, so the clip lasts 1350 ms.
VFR_PTS_MS: tuple[int, ...] = (
    0, 30, 80, 110, 160, 190, 240, 270, 320, 350,
    400, 430, 480, 510, 560, 760, 790, 840, 870, 920,
    950, 1000, 1030, 1080, 1110, 1160, 1190, 1240, 1270, 1320,
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Fixture:
    """One generated file.

    ``expect`` is what the shard job should record for it: ``"ok"`` (sharded, after the
    normalisation described in ``note``) or ``"failed"`` (skipped and logged, job goes on).
    ``meta`` holds machine-readable facts for tests (frame counts, sizes, times...).
    """

    path: Path
    kind: str
    expect: str
    note: str
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------- frames


def pattern_frame(i: int, size: tuple[int, int] = (128, 96)) -> np.ndarray:
    """RGB24 picture ``(h, w, 3)`` for frame ``i`` of a clip of ``size = (w, h)``."""
    w, h = size
    img = np.full((h, w, 3), 40, np.uint8)
    m = max(2, min(w, h) // 6)
    img[:m, :m] = (230, 20, 20)  # orientation marker
    strip = max(2, h // 8)
    bar_w = max(2, w // 16)
    x = (i * max(1, w // 32)) % w
    img[h // 4 : h - strip, x : x + bar_w] = (20, 200, 40)
    for b in range(INDEX_BITS):
        if (i >> b) & 1:
            x0, x1 = (b * w) // INDEX_BITS, ((b + 1) * w) // INDEX_BITS
            img[h - strip :, x0:x1] = 255
    return img


def read_frame_index(rgb: np.ndarray) -> int:
    """Inverse of :func:`pattern_frame`'s index cells for an upright picture of any size."""
    h, w = rgb.shape[:2]
    y0 = h - max(1, h // 8) + max(0, h // 32)
    luma = rgb[y0:, :, :3].astype(np.float32).mean(axis=2)
    i = 0
    for b in range(INDEX_BITS):
        x0, x1 = (b * w) // INDEX_BITS, ((b + 1) * w) // INDEX_BITS
        pad = (x1 - x0) // 4
        if luma[:, x0 + pad : x1 - pad].mean() > 140:
            i |= 1 << b
    return i


def pattern_frames(n: int, size: tuple[int, int] = (128, 96)) -> Iterator[np.ndarray]:
    return (pattern_frame(i, size) for i in range(n))


# --------------------------------------------------------------------------- writer


def _add_aac(container: av.container.OutputContainer, rate: int = 48000) -> av.audio.stream.AudioStream:
    a = container.add_stream("aac", rate=rate)
    a.layout = "mono"
    a.format = "fltp"
    return a


def _tone_frames(seconds: float, rate: int = 48000, hz: float = 440.0) -> Iterator[av.AudioFrame]:
    total = int(round(seconds * rate))
    for start in range(0, total, 1024):
        n = min(1024, total - start)
        t = np.arange(start, start + n) / rate
        samples = (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = fractions.Fraction(1, rate)
        yield frame


def _encode_audio_until(container, astream, frames: Iterator[av.AudioFrame], pending: list, until: float) -> None:
    """Encode audio frames starting before ``until`` seconds (``pending`` holds one look-ahead frame)."""
    while True:
        if not pending:
            nxt = next(frames, None)
            if nxt is None:
                return
            pending.append(nxt)
        if float(pending[0].pts * pending[0].time_base) >= until:
            return
        for pkt in astream.encode(pending.pop()):
            container.mux(pkt)


def _encode_tone(container, astream, seconds: float, rate: int = 48000) -> None:
    _encode_audio_until(container, astream, _tone_frames(seconds, rate), [], float("inf"))
    for pkt in astream.encode(None):
        container.mux(pkt)


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray | av.VideoFrame],
    fps: float | fractions.Fraction = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    container_format: str | None = None,
    *,
    time_base: fractions.Fraction | None = None,
    pts: Sequence[int] | None = None,
    options: Mapping[str, str] | None = None,
    container_options: Mapping[str, str] | None = None,
    audio_seconds: float | None = None,
    rotation: int | None = None,
) -> Path:
    """Encode RGB24 ``(h, w, 3)`` uint8 arrays (or ready ``av.VideoFrame``) into ``path``.

    * ``fps``: nominal rate; with ``pts=None`` frame ``k`` gets ``pts = k`` in ``1/fps``.
    * ``pts``/``time_base``: explicit presentation times (ints in ``time_base``, default
      ``1/1000``) for variable-frame-rate output; must be strictly increasing.
    * ``container_format``: e.g. ``"matroska"`` to override the guess from the suffix.
    * ``options``: codec options (``{"crf": "30"}``, ``{"x265-params": "..."}``);
      ``container_options``: muxer options (``{"movflags": "+faststart"}``).
    * ``audio_seconds``: also write a mono 48 kHz AAC sine track that long.
    * ``rotation``: display-matrix rotation in degrees, counter-clockwise, as PyAV's
      ``VideoStream.set_display_rotation`` / ``VideoFrame.rotation`` define it.
    """
    path = Path(path)
    it = iter(frames)
    first = next(it)
    if isinstance(first, av.VideoFrame):
        w, h = first.width, first.height
    else:
        h, w = first.shape[:2]
    rate = fractions.Fraction(fps).limit_denominator(1001)
    if pts is not None and time_base is None:
        time_base = fractions.Fraction(1, 1000)
    if pts is None and time_base is None:
        time_base = 1 / rate
    pts_list = list(pts) if pts is not None else None

    opts = dict(options or {})
    if codec == "libx265":
        opts.setdefault("x265-params", "log-level=error")
    container = av.open(str(path), "w", format=container_format, options=dict(container_options or {}))
    try:
        vs = container.add_stream(codec, rate=rate, options=opts)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        vs.codec_context.time_base = time_base
        vs.time_base = time_base
        if rotation is not None:
            vs.set_display_rotation(rotation)
        astream = _add_aac(container) if audio_seconds else None
        tone, pending = (_tone_frames(audio_seconds), []) if audio_seconds else (iter(()), [])

        def frames_all() -> Iterator[np.ndarray | av.VideoFrame]:
            yield first
            yield from it

        for k, img in enumerate(frames_all()):
            frame = (
                img
                if isinstance(img, av.VideoFrame)
                else av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            )
            if pts_list is not None:
                frame.pts = pts_list[k]
            else:
                frame.pts = int(round(k / rate / time_base))
            frame.time_base = time_base
            if astream is not None:  # keep the audio interleaved with the video, as real files are
                _encode_audio_until(container, astream, tone, pending, float(frame.pts * time_base))
            for pkt in vs.encode(frame):
                container.mux(pkt)
        for pkt in vs.encode(None):
            container.mux(pkt)
        if astream is not None:
            _encode_audio_until(container, astream, tone, pending, float("inf"))
            for pkt in astream.encode(None):
                container.mux(pkt)
    finally:
        container.close()
    return path


# --------------------------------------------------------------------------- mp4 boxes


def mp4_boxes(path: str | Path) -> list[tuple[str, int, int]]:
    """Top-level ISO-BMFF boxes as ``(type, offset, declared size)``; in a cut file the last one runs past EOF."""
    data = Path(path).read_bytes()
    out, off = [], 0
    while off + 8 <= len(data):
        size, typ = struct.unpack(">I4s", data[off : off + 8])
        hdr = 8
        if size == 1:
            size = struct.unpack(">Q", data[off + 8 : off + 16])[0]
            hdr = 16
        elif size == 0:
            size = len(data) - off
        if size < hdr:
            break
        out.append((typ.decode("latin-1"), off, size))
        off += size
    return out


def _mdat_payload(path: Path) -> tuple[int, int]:
    for typ, off, size in mp4_boxes(path):
        if typ == "mdat":
            return off + 8, off + size
    raise ValueError(f"no mdat box in {path}")


# --------------------------------------------------------------------------- makers


def _good_meta(n: int, fps: float, size: tuple[int, int]) -> dict[str, Any]:
    w, h = size
    return {"frames": n, "fps": fps, "size": size, "duration_s": n / fps, "out_frames_25fps": int(round(n / fps * 25))}


def good(path: str | Path, fps: float = 25, n: int = 50, size: tuple[int, int] = (128, 96)) -> Fixture:
    p = write_video(path, pattern_frames(n, size), fps)
    return Fixture(
        p,
        "good",
        OK,
        f"H.264 yuv420p {size[0]}x{size[1]}, {n} frames at {fps} fps, no audio: shard as is.",
        _good_meta(n, fps, size),
    )


def good_with_audio(path: str | Path, fps: float = 25, n: int = 50, size: tuple[int, int] = (128, 96)) -> Fixture:
    p = write_video(path, pattern_frames(n, size), fps, audio_seconds=n / fps)
    return Fixture(
        p,
        "good_with_audio",
        OK,
        f"H.264 {size[0]}x{size[1]} {n} frames at {fps} fps plus a mono 48 kHz AAC track: "
        "drop the audio, shard the video.",
        {**_good_meta(n, fps, size), "audio": "aac"},
    )


def empty(path: str | Path) -> Fixture:
    p = Path(path)
    p.write_bytes(b"")
    return Fixture(p, "empty", FAILED, "0 bytes: cannot be opened; record as failed.")


def not_a_video(path: str | Path) -> Fixture:
    p = Path(path)
    p.write_text("<html><body>This video is unavailable.</body></html>\n" * 20)
    return Fixture(p, "not_a_video", FAILED, "HTML text named .mp4: av.open raises InvalidDataError; record as failed.")


def truncated(path: str | Path, keep: float = 0.40) -> Fixture:
    """Good mp4 with the moov atom at the end (FFmpeg's default), cut to ``keep`` of its bytes."""
    p = Path(path)
    good(p)
    data = p.read_bytes()
    assert mp4_boxes(p)[-1][0] == "moov", "expected moov at the end"
    p.write_bytes(data[: int(len(data) * keep)])
    return Fixture(
        p,
        "truncated",
        FAILED,
        f"mp4 cut to {keep:.0%} of {len(data)} bytes, moov lost: av.open raises "
        "av.error.InvalidDataError ('Invalid data found when processing input'; FFmpeg logs "
        "'moov atom not found'); record as failed.",
        {"original_bytes": len(data)},
    )


def truncated_faststart(path: str | Path, keep: float = 0.60, n: int = 50) -> Fixture:
    """``movflags=+faststart`` mp4 (moov first) cut to ``keep``: opens, but the video data stops early."""
    p = Path(path)
    write_video(p, pattern_frames(n), 25, container_options={"movflags": "+faststart"})
    data = p.read_bytes()
    kinds = [b[0] for b in mp4_boxes(p)]
    assert kinds.index("moov") < kinds.index("mdat"), "expected moov before mdat"
    p.write_bytes(data[: int(len(data) * keep)])
    r = decode_report(p)
    return Fixture(
        p,
        "truncated_faststart",
        FAILED,
        f"faststart mp4 cut to {keep:.0%} of {len(data)} bytes: opens fine and still declares {n} frames / 2.0 s "
        f"(stream.frames, container.duration), but the samples stop early. PyAV: {_describe(r)} "
        "Whether an exception comes depends on threading, so the job must compare the decoded frame count with "
        "the declared duration and record failed.",
        {"declared_frames": n, **r},
    )


def corrupt(path: str | Path, fraction: float = 0.30, seed: int = 1234) -> Fixture:
    """Good mp4 whose middle ``fraction`` of the mdat payload is overwritten by seeded random bytes."""
    p = Path(path)
    good(p)
    data = bytearray(p.read_bytes())
    start, end = _mdat_payload(p)
    span = int((end - start) * fraction)
    a = start + ((end - start) - span) // 2
    data[a : a + span] = np.random.default_rng(seed).integers(0, 256, span, dtype=np.uint8).tobytes()
    p.write_bytes(bytes(data))
    r = decode_report(p)
    expect = FAILED if r["error"] else OK
    verdict = (
        "decoding raises, so record as failed (a job that decodes packet by packet and swallows errors "
        "would get a clip with frames missing, which it must also reject)."
        if r["error"]
        else "decoding does not raise; the job cannot tell and shards it (ok)."
    )
    return Fixture(
        p,
        "corrupt",
        expect,
        f"bytes [{a}, {a + span}) (middle {fraction:.0%} of mdat) overwritten with random bytes (seed {seed}), "
        f"which destroys NAL length prefixes. PyAV: {_describe(r)} {verdict}",
        {**r, "corrupt_range": (a, a + span)},
    )


def corrupt_silent(path: str | Path, fraction: float = 0.30, seed: int = 1234) -> Fixture:
    """Good mp4 whose middle ``fraction`` of samples have the second half of every NAL unit randomised.

    NAL lengths and slice headers stay intact, so FFmpeg's H.264 decoder conceals the damage: no
    error at all, every frame comes out, some with ``VideoFrame.is_corrupt`` set and wrong pictures.
    """
    p = Path(path)
    good(p)
    with av.open(str(p)) as c:
        samples = [(int(k.pos), int(k.size)) for k in c.demux(video=0) if k.size]
    data = bytearray(p.read_bytes())
    rng = np.random.default_rng(seed)
    n = len(samples)
    for pos, size in samples[int(n * (0.5 - fraction / 2)) : int(n * (0.5 + fraction / 2))]:
        o = pos
        while o + 4 <= pos + size:
            nal = int.from_bytes(data[o : o + 4], "big")
            s, e = o + 4 + nal // 2, o + 4 + nal
            data[s:e] = rng.integers(0, 256, e - s, dtype=np.uint8).tobytes()
            o = e
    p.write_bytes(bytes(data))
    r = decode_report(p)
    return Fixture(
        p,
        "corrupt_silent",
        FAILED,
        f"second half of every NAL unit of the middle {fraction:.0%} of samples randomised (seed {seed}). "
        f"PyAV: {_describe(r)} No exception: only VideoFrame.is_corrupt tells, and the job rejects on it.",
        dict(r),
    )


def decode_report(p: str | Path) -> dict[str, Any]:
    """How PyAV copes with ``p``'s first video stream, in the two usual decode loops.

    ``frames``/``error``: ``for f in container.decode(video=0)`` (default threading) until it raises.
    ``frames_threaded``/``error_threaded``: the same with ``stream.thread_type = "AUTO"`` (frame threads).
    ``tolerant_frames``/``tolerant_errors``: demux, ``packet.decode()`` in a try per packet.
    ``corrupt_frames``: frames with ``VideoFrame.is_corrupt`` in the tolerant loop.
    """

    def plain(thread_type: str | None) -> tuple[int, str | None]:
        n = 0
        try:
            with av.open(str(p)) as c:
                if thread_type:
                    c.streams.video[0].codec_context.thread_type = thread_type
                for _ in c.decode(video=0):
                    n += 1
        except av.FFmpegError as e:
            return n, f"{type(e).__module__}.{type(e).__name__}: {e}"
        return n, None

    frames, error = plain(None)
    frames_threaded, error_threaded = plain("AUTO")
    tolerant, errors, bad = 0, 0, 0
    with av.open(str(p)) as c:
        for pkt in c.demux(video=0):
            try:
                for f in pkt.decode():
                    tolerant += 1
                    bad += bool(f.is_corrupt)
            except av.FFmpegError:
                errors += 1
    return {
        "frames": frames,
        "error": error,
        "frames_threaded": frames_threaded,
        "error_threaded": error_threaded,
        "tolerant_frames": tolerant,
        "tolerant_errors": errors,
        "corrupt_frames": bad,
    }


def _describe(r: Mapping[str, Any]) -> str:
    first = (
        f"container.decode() raised {r['error']} after {r['frames']} frames"
        if r["error"]
        else f"container.decode() yielded {r['frames']} frames without raising"
    )
    if (r["frames_threaded"], r["error_threaded"]) != (r["frames"], r["error"]):
        first += f" (with thread_type='AUTO': {r['frames_threaded']} frames, " + (
            f"raised {r['error_threaded']})" if r["error_threaded"] else "no exception)"
        )
    return (
        f"{first}; per-packet decoding with errors caught yields {r['tolerant_frames']} frames, "
        f"{r['tolerant_errors']} packets raising, {r['corrupt_frames']} frames flagged is_corrupt."
    )


def audio_only(path: str | Path, seconds: float = 1.0) -> Fixture:
    p = Path(path)
    c = av.open(str(p), "w")
    try:
        a = _add_aac(c)
        _encode_tone(c, a, seconds)
    finally:
        c.close()
    return Fixture(p, "audio_only", FAILED, "mp4 with one AAC stream and no video stream: record as failed (no video).")


def too_short(path: str | Path, n: int = 3) -> Fixture:
    p = write_video(path, pattern_frames(n), 25)
    return Fixture(
        p,
        "too_short",
        FAILED,
        f"valid H.264 but only {n} frames (0.12 s): below any clip length; record as failed.",
        {"frames": n},
    )


def ten_bit(path: str | Path, n: int = 50) -> Fixture:
    p = write_video(path, pattern_frames(n), 25, pix_fmt="yuv420p10le")
    return Fixture(
        p,
        "ten_bit",
        OK,
        "H.264 High 10, yuv420p10le: convert to 8-bit yuv420p and shard.",
        _good_meta(n, 25, (128, 96)),
    )


def hevc(path: str | Path, n: int = 50) -> Fixture:
    p = write_video(path, pattern_frames(n), 25, codec="libx265")
    return Fixture(
        p,
        "hevc",
        OK,
        "HEVC Main 8-bit yuv420p (hev1 in mp4): decode and shard (re-encoded as the shard codec).",
        _good_meta(n, 25, (128, 96)),
    )


def vfr(path: str | Path) -> Fixture:
    pts = VFR_PTS_MS
    p = write_video(path, pattern_frames(len(pts)), 25, pts=pts, time_base=fractions.Fraction(1, 1000))
    end_ms = pts[-1] + 50
    return Fixture(
        p,
        "vfr",
        OK,
        "variable frame rate H.264, time_base 1/1000, presentation times (ms) = "
        + ",".join(map(str, pts))
        + f" (last frame lasts 50 ms, clip ends at {end_ms} ms): resample to constant 25 fps.",
        {"pts_ms": pts, "end_ms": end_ms, "frames": len(pts)},
    )


def fps60(path: str | Path, seconds: float = 2.0) -> Fixture:
    n = int(round(60 * seconds))
    p = write_video(path, pattern_frames(n), 60)
    return Fixture(
        p,
        "fps60",
        OK,
        f"H.264 at 60 fps, {n} frames ({seconds} s): resample to 25 fps = {int(round(seconds * 25))} frames.",
        _good_meta(n, 60, (128, 96)),
    )


def odd_size(path: str | Path, size: tuple[int, int] = (129, 97), n: int = 50) -> Fixture:
    """MPEG-4 Part 2 yuv420p in mp4 with odd coded width and height (4:2:0 chroma is rounded up)."""
    p = write_video(path, pattern_frames(n, size), 25, codec="mpeg4", options={"qscale": "3"})
    return Fixture(
        p,
        "odd_size",
        OK,
        f"MPEG-4 Part 2 yuv420p, {size[0]}x{size[1]} (odd): scale to even dimensions and shard.",
        _good_meta(n, 25, size),
    )


def odd_size_444(path: str | Path, size: tuple[int, int] = (129, 97), n: int = 50) -> Fixture:
    """H.264 High 4:4:4 Predictive (libx264 refuses odd sizes in 4:2:0) with odd width and height."""
    p = write_video(path, pattern_frames(n, size), 25, pix_fmt="yuv444p")
    return Fixture(
        p,
        "odd_size_444",
        OK,
        f"H.264 High 4:4:4, yuv444p, {size[0]}x{size[1]} (odd): convert to 4:2:0 at even size and shard.",
        _good_meta(n, 25, size),
    )


def matroska_as_mp4(path: str | Path, n: int = 50) -> Fixture:
    # bitexact: no random segment UID, so the file is byte-identical from run to run like the others
    p = write_video(path, pattern_frames(n), 25, container_format="matroska", container_options={"fflags": "+bitexact"})
    return Fixture(
        p,
        "matroska_as_mp4",
        OK,
        "Matroska (H.264) named .mp4: probe by content, not by suffix; shard.",
        _good_meta(n, 25, (128, 96)),
    )


def rotated(path: str | Path, n: int = 50, degrees: int = 90) -> Fixture:
    """128x96 coded, display matrix rotating ``degrees`` counter-clockwise (FFmpeg's and PyAV's convention)."""
    p = write_video(path, pattern_frames(n), 25, rotation=degrees)
    display = (96, 128) if degrees % 180 else (128, 96)
    return Fixture(
        p,
        "rotated",
        OK,
        f"128x96 coded with a display matrix rotating {degrees} deg counter-clockwise (PyAV: every decoded "
        f"VideoFrame.rotation == {(degrees + 180) % 360 - 180}; ffmpeg shows the "
        "top-left marker bottom-left for 90). Upright picture = np.rot90(frame.to_ndarray(format='rgb24'), "
        f"k=(frame.rotation // 90) % 4), which matches ffmpeg's autorotate exactly: "
        f"{display[0]} wide x {display[1]} high.",
        {**_good_meta(n, 25, (128, 96)), "rotation": degrees, "display_size": display},
    )


# --------------------------------------------------------------------------- all


_MAKERS: tuple[tuple[str, Callable[[Path], Fixture]], ...] = (
    ("good", good),
    ("good_with_audio", good_with_audio),
    ("empty", empty),
    ("truncated", truncated),
    ("truncated_faststart", truncated_faststart),
    ("not_a_video", not_a_video),
    ("audio_only", audio_only),
    ("too_short", too_short),
    ("corrupt", corrupt),
    ("corrupt_silent", corrupt_silent),
    ("ten_bit", ten_bit),
    ("hevc", hevc),
    ("vfr", vfr),
    ("fps60", fps60),
    ("odd_size", odd_size),
    ("odd_size_444", odd_size_444),
    ("matroska_as_mp4", matroska_as_mp4),
    ("rotated", rotated),
)


def all_fixtures(folder: str | Path) -> list[Fixture]:
    """Make every fixture in ``folder`` with Kinetics-style names ``<id>_<start>_<end>.mp4``.

    Ids are the kinds (some contain ``_``, as real YouTube ids may); one extra good clip has an
    id starting with ``-`` (``-dashfirst_000001_000003.mp4``), which breaks naive command lines.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = [maker(folder / f"{kind}_000000_000002.mp4") for kind, maker in _MAKERS]
    dash = good(folder / "-dashfirst_000001_000003.mp4")
    out.append(dataclasses.replace(dash, kind="dash_name", note="good clip whose id starts with '-': " + dash.note))
    return out


# --------------------------------------------------------------------------- the independent FFmpeg


def ffmpeg_frames(ffmpeg: str, path: Path, vf: str | None = None) -> np.ndarray:
    """Decode ``path`` to RGB frames (N, H, W, 3) with the independent FFmpeg, optionally filtered."""
    probe = subprocess.run(
        [ffmpeg, "-nostdin", "-i", f"file:{path}", "-map", "0:v:0", *(["-vf", vf] if vf else []), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    size = re.findall(r"Stream #0:0.*?Video: .*?, (\d+)x(\d+)", probe.stderr)[-1]
    w, h = int(size[0]), int(size[1])
    raw = subprocess.run(
        [
            ffmpeg,
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            f"file:{path}",
            "-map",
            "0:v:0",
            *(["-vf", vf] if vf else []),
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def ffmpeg_pts(ffmpeg: str, path: Path) -> list[float]:
    """Presentation times (seconds) of every frame, as the independent FFmpeg's showinfo reports them."""
    out = subprocess.run(
        [ffmpeg, "-nostdin", "-i", f"file:{path}", "-map", "0:v:0", "-vf", "showinfo", "-f", "null", "-"],
        capture_output=True,
        text=True,
    ).stderr
    return [float(t) for t in re.findall(r"pts_time:\s*([-\d.e]+)", out)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
