"""Each fixture of tests/support/media.py is what it claims, checked with the imageio-ffmpeg binary
(a decoder independent of PyAV) and with PyAV."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest

from tests.support import media

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


# --------------------------------------------------------------------------- ffmpeg helpers


def ff(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess[bytes]:
    cmd = [FFMPEG, "-hide_banner", "-nostdin", *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    if check and r.returncode:
        raise AssertionError(f"{cmd} failed:\n{r.stderr.decode(errors='replace')}")
    return r


def probe(path: Path) -> str:
    """``ffmpeg -i FILE`` stderr (exits 1 because there is no output; the header dump is what we want)."""
    return ff("-i", path).stderr.decode(errors="replace")


def video_lines(info: str) -> list[str]:
    return [ln for ln in info.splitlines() if re.search(r"Stream #\d+:\d+.*: Video:", ln)]


def framemd5(path: Path, *extra: str, copy: bool = False) -> tuple[str, list[tuple[int, int, str]]]:
    """(header, [(pts, duration, md5)]) of the first video stream: decoded frames, or packets with copy."""
    codec = ["-c", "copy"] if copy else ["-fps_mode", "passthrough"]
    r = ff("-loglevel", "error", "-i", path, "-map", "0:v:0", *codec, *extra, "-f", "framemd5", "-")
    out = r.stdout.decode()
    rows = []
    for ln in out.splitlines():
        if ln and not ln.startswith("#"):
            f = [x.strip() for x in ln.split(",")]
            rows.append((int(f[2]), int(f[3]), f[5]))
    return out, rows


def decoded_frames(path: Path) -> int:
    return len(framemd5(path)[1])


def pyav_rgb(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, media.Fixture]:
    folder = tmp_path_factory.mktemp("media")
    t = time.perf_counter()
    fixtures = media.all_fixtures(folder)
    elapsed = time.perf_counter() - t
    assert elapsed < 20, f"all_fixtures took {elapsed:.1f} s"
    by_kind = {f.kind: f for f in fixtures}
    assert len(by_kind) == len(fixtures), "kinds must be distinct"
    return by_kind


def test_inventory(made: dict[str, media.Fixture]) -> None:
    expected = {
        "good", "good_with_audio", "empty", "truncated", "truncated_faststart", "not_a_video",
        "audio_only", "too_short", "corrupt", "corrupt_silent", "ten_bit", "hevc", "vfr", "fps60",
        "odd_size", "odd_size_444", "matroska_as_mp4", "rotated", "dash_name",
    }  # fmt: skip
    assert set(made) == expected
    names = [f.path.name for f in made.values()]
    assert len(set(names)) == len(names)
    assert len({f.path.parent for f in made.values()}) == 1
    assert any(n.startswith("-") for n in names)
    for f in made.values():
        assert f.path.is_file() and f.path.suffix == ".mp4"
        assert f.expect in ("ok", "failed")
        assert f.note
        assert re.fullmatch(r".+_\d{6}_\d{6}\.mp4", f.path.name)
    failed = {k for k, f in made.items() if f.expect == "failed"}
    assert {"empty", "truncated", "truncated_faststart", "not_a_video", "audio_only", "too_short"} <= failed
    assert {
        "good",
        "good_with_audio",
        "ten_bit",
        "hevc",
        "vfr",
        "fps60",
        "odd_size",
        "matroska_as_mp4",
        "rotated",
    }.isdisjoint(failed)


def test_pattern_roundtrip() -> None:
    for size in [(128, 96), (96, 64), (129, 97)]:
        frames = [media.pattern_frame(i, size) for i in range(40)]
        assert [media.read_frame_index(f) for f in frames] == list(range(40))
        assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:]))


def test_good(made: dict[str, media.Fixture]) -> None:
    f = made["good"]
    info = probe(f.path)
    (v,) = video_lines(info)
    assert "h264" in v and "yuv420p" in v and "128x96" in v and "25 fps" in v
    assert "Audio:" not in info
    assert "Duration: 00:00:02.00" in info
    _, rows = framemd5(f.path)
    assert len(rows) == 50
    assert len({h for _, _, h in rows}) == 50, "every frame must differ"
    frames = pyav_rgb(f.path)
    assert [media.read_frame_index(fr.to_ndarray(format="rgb24")) for fr in frames] == list(range(50))
    # the dash-named copy is the same clip and ffmpeg reads it given a path that is not an option
    d = made["dash_name"]
    assert d.path.name == "-dashfirst_000001_000003.mp4"
    assert d.path.read_bytes() == f.path.read_bytes()
    assert decoded_frames(d.path.resolve()) == 50
    # as the value of -i a leading '-' is fine even relative (as an output name ffmpeg would take it for an option)
    r = subprocess.run(
        [FFMPEG, "-hide_banner", "-nostdin", "-i", d.path.name, "-f", "null", "-"],
        capture_output=True,
        cwd=d.path.parent,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def test_good_with_audio(made: dict[str, media.Fixture]) -> None:
    info = probe(made["good_with_audio"].path)
    assert re.search(r"Audio: aac.*48000 Hz, mono", info)
    assert len(video_lines(info)) == 1
    assert decoded_frames(made["good_with_audio"].path) == 50


@pytest.mark.parametrize("kind", ["empty", "not_a_video"])
def test_unopenable(made: dict[str, media.Fixture], kind: str) -> None:
    f = made[kind]
    info = probe(f.path)
    assert "Invalid data found when processing input" in info
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(f.path))
    if kind == "empty":
        assert f.path.stat().st_size == 0
    else:
        assert f.path.read_bytes().startswith(b"<html>")


def test_truncated(made: dict[str, media.Fixture]) -> None:
    f = made["truncated"]
    assert f.path.stat().st_size == int(f.meta["original_bytes"] * 0.4)
    kinds = [b[0] for b in media.mp4_boxes(f.path)]
    assert "mdat" in kinds and "moov" not in kinds  # moov was at the end, now gone
    assert "moov atom not found" in probe(f.path)
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(f.path))


def test_truncated_faststart(made: dict[str, media.Fixture]) -> None:
    f = made["truncated_faststart"]
    boxes = media.mp4_boxes(f.path)
    kinds = [b[0] for b in boxes]
    assert kinds.index("moov") < kinds.index("mdat")
    _, off, size = boxes[kinds.index("mdat")]
    assert off + size > f.path.stat().st_size, "mdat must run past the end of the file"
    info = probe(f.path)
    assert "Duration: 00:00:02.00" in info  # still declares the full clip
    n_ff = decoded_frames(f.path)
    assert 0 < n_ff < 50
    with av.open(str(f.path)) as c:
        assert c.streams.video[0].frames == 50
        assert c.duration == 2_000_000
    assert f.meta == {"declared_frames": 50, **media.decode_report(f.path)}
    assert 0 < f.meta["frames"] < 50 and f.meta["tolerant_frames"] < 50


def test_audio_only(made: dict[str, media.Fixture]) -> None:
    f = made["audio_only"]
    info = probe(f.path)
    assert "Audio: aac" in info and not video_lines(info)
    with av.open(str(f.path)) as c:
        assert len(c.streams.video) == 0 and len(c.streams.audio) == 1


def test_too_short(made: dict[str, media.Fixture]) -> None:
    f = made["too_short"]
    (v,) = video_lines(probe(f.path))
    assert "h264" in v
    assert decoded_frames(f.path) == 3


def test_corrupt(made: dict[str, media.Fixture]) -> None:
    f = made["corrupt"]
    good = made["good"].path.read_bytes()
    data = f.path.read_bytes()
    a, b = f.meta["corrupt_range"]
    assert len(data) == len(good) and data[:a] == good[:a] and data[b:] == good[b:] and data[a:b] != good[a:b]
    mdat = next((off, size) for t, off, size in media.mp4_boxes(f.path) if t == "mdat")
    assert mdat[0] + 8 <= a < b <= mdat[0] + mdat[1]
    r = ff("-i", f.path, "-map", "0:v:0", "-f", "null", "-")
    assert b"Invalid NAL unit size" in r.stderr or b"Error" in r.stderr
    assert 0 < decoded_frames(f.path) < 50
    report = media.decode_report(f.path)
    assert {k: f.meta[k] for k in report} == report
    assert f.expect == ("failed" if report["error"] else "ok")


def test_corrupt_silent(made: dict[str, media.Fixture]) -> None:
    f = made["corrupt_silent"]
    assert f.expect == "failed" and f.meta["error"] is None and f.meta["frames"] == 50
    assert f.meta["corrupt_frames"] > 0
    frames = pyav_rgb(f.path)
    assert len(frames) == 50 and any(fr.is_corrupt for fr in frames)
    idx = [media.read_frame_index(fr.to_ndarray(format="rgb24")) for fr in frames]
    assert idx != list(range(50)), "damage must be visible"
    assert idx[:5] == list(range(5)) and idx[-5:] == list(range(45, 50))
    assert decoded_frames(f.path) == 50


def test_ten_bit(made: dict[str, media.Fixture]) -> None:
    f = made["ten_bit"]
    (v,) = video_lines(probe(f.path))
    assert "h264 (High 10)" in v and "yuv420p10le" in v
    with av.open(str(f.path)) as c:
        fr = next(c.decode(video=0))
        assert fr.format.name == "yuv420p10le"
        assert c.streams.video[0].profile == "High 10"
    assert decoded_frames(f.path) == 50


def test_hevc(made: dict[str, media.Fixture]) -> None:
    f = made["hevc"]
    (v,) = video_lines(probe(f.path))
    assert re.search(r"Video: hevc \(Main\)", v) and "yuv420p(" in v and "128x96" in v
    with av.open(str(f.path)) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
        assert next(c.decode(video=0)).format.name == "yuv420p"
    assert decoded_frames(f.path) == 50


def test_vfr(made: dict[str, media.Fixture]) -> None:
    f = made["vfr"]
    pts_ms = list(media.VFR_PTS_MS)
    assert list(f.meta["pts_ms"]) == pts_ms
    assert ",".join(map(str, pts_ms)) in f.note
    diffs = np.diff(pts_ms)
    assert set(diffs.tolist()) == {30, 50, 200} and (diffs == 200).sum() == 1
    # packets, exact times in the stream time base, as ffmpeg's demuxer sees them
    header, rows = framemd5(f.path, copy=True)
    num, den = map(int, re.search(r"#tb 0: (\d+)/(\d+)", header).groups())
    assert sorted(p * 1000 * num / den for p, _, _ in rows) == pts_ms
    # decoded frames, as PyAV sees them
    frames = pyav_rgb(f.path)
    assert [round(float(fr.time) * 1000) for fr in frames] == pts_ms
    assert [media.read_frame_index(fr.to_ndarray(format="rgb24")) for fr in frames] == list(range(len(pts_ms)))
    assert not re.search(r"\b25 fps\b", video_lines(probe(f.path))[0])


def test_fps60(made: dict[str, media.Fixture]) -> None:
    f = made["fps60"]
    info = probe(f.path)
    (v,) = video_lines(info)
    assert "60 fps" in v and "Duration: 00:00:02.00" in info
    assert decoded_frames(f.path) == 120


@pytest.mark.parametrize(
    ("kind", "codec", "pix"), [("odd_size", "mpeg4", "yuv420p"), ("odd_size_444", "h264", "yuv444p")]
)
def test_odd_size(made: dict[str, media.Fixture], kind: str, codec: str, pix: str) -> None:
    f = made[kind]
    (v,) = video_lines(probe(f.path))
    assert f"Video: {codec}" in v and re.search(rf"\b{pix}\b", v) and "129x97" in v
    header, rows = framemd5(f.path)
    assert "#dimensions 0: 129x97" in header and len(rows) == 50
    with av.open(str(f.path)) as c:
        fr = next(c.decode(video=0))
        assert (fr.width, fr.height) == (129, 97) and fr.format.name == pix


def test_matroska_as_mp4(made: dict[str, media.Fixture]) -> None:
    f = made["matroska_as_mp4"]
    assert f.path.suffix == ".mp4"
    assert f.path.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML magic
    info = probe(f.path)
    assert "Input #0, matroska,webm" in info
    assert "h264" in video_lines(info)[0]
    with av.open(str(f.path)) as c:
        assert c.format.name == "matroska,webm"
    assert decoded_frames(f.path) == 50


def test_rotated(made: dict[str, media.Fixture]) -> None:
    f = made["rotated"]
    info = probe(f.path)
    (v,) = video_lines(info)
    assert "128x96" in v  # coded size
    assert re.search(r"Display Matrix: rotation of 90\.00 degrees", info)
    # ffmpeg autorotates by default: 96 wide, 128 high
    header, rows = framemd5(f.path)
    assert "#dimensions 0: 96x128" in header and len(rows) == 50
    raw = ff(
        "-loglevel", "error", "-i", f.path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-", check=True
    ).stdout
    shown = np.frombuffer(raw, np.uint8).reshape(128, 96, 3).astype(int)
    # PyAV decodes the coded picture and reports the display matrix per frame, counter-clockwise degrees
    fr = pyav_rgb(f.path)[0]
    assert (fr.width, fr.height, fr.rotation) == (128, 96, 90)
    assert f.meta["display_size"] == (96, 128)
    coded = fr.to_ndarray(format="rgb24")
    assert np.abs(np.rot90(coded, k=(fr.rotation // 90) % 4).astype(int) - shown).mean() < 2
    assert np.abs(np.rot90(coded, k=-1).astype(int) - shown).mean() > 5
    # the red marker, top-left in the coded picture, is displayed bottom-left
    assert shown[-4, 4, 0] > 200 and shown[-4, 4, 1] < 60 and shown[4, 4, 0] < 100
