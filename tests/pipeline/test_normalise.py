"""Normalisation (pipeline/normalise.py): the output size rule, and real videos checked against an
independent FFmpeg build."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.normalise import EncodeSettings, normalise, output_size
from tests.support.media import ffmpeg_frames, ffmpeg_pts, psnr


def _store(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["bikes", "bigbuckbunny", "carphone_pristine"])
def test_frame_count_and_timestamps_match_independent_decoder(real_videos, ffmpeg, tmp_path, name):
    src = real_videos[name]
    out = normalise(src, EncodeSettings())
    stored = _store(tmp_path, "out.mp4", out.data)

    pts = ffmpeg_pts(ffmpeg, stored)
    assert len(pts) == out.frames  # the frame count in the metadata is exact
    np.testing.assert_allclose(pts, np.arange(out.frames) / 25, atol=1e-3)  # constant 25 fps

    src_pts = ffmpeg_pts(ffmpeg, src)
    duration = src_pts[-1] - src_pts[0] + (src_pts[1] - src_pts[0])
    assert abs(out.frames - duration * 25) <= 1  # the same span of time, at 25 fps
    assert out.source.frames == len(src_pts)


@pytest.mark.parametrize("codec", ["vp9", "h264", "mjpeg"])
def test_frames_are_the_source_frames_at_25fps(real_videos, ffmpeg, tmp_path, codec):
    """Each stored frame is the source frame FFmpeg's own fps filter picks for that time."""
    src = real_videos["carphone_pristine"]  # 29.97 fps, non-square pixels
    out = normalise(src, EncodeSettings(codec=codec))
    ours = ffmpeg_frames(ffmpeg, _store(tmp_path, f"out.{codec}", out.data))
    ref = ffmpeg_frames(ffmpeg, src, f"fps=25,scale={out.width}:{out.height}:flags=area")
    assert (out.width, out.height) == (192, 144)  # 176x144 at SAR 128:117 shown as 192x144
    assert ours.shape == ref.shape
    aligned = np.mean([psnr(a, b) for a, b in zip(ours, ref)])
    shifted = np.mean([psnr(a, b) for a, b in zip(ours[1:], ref[:-1])])
    assert aligned > 30 and aligned > shifted + 1, (aligned, shifted)


def test_short_side_is_capped_and_never_upscaled(real_videos):
    big = normalise(real_videos["bigbuckbunny"], EncodeSettings(short_side=128))
    assert (big.width, big.height) == (228, 128)  # 1280x720 -> short side 128, aspect kept, even
    small = normalise(real_videos["carphone_pristine"], EncodeSettings(short_side=336))
    assert small.height == 144  # 144 < 336: kept


def test_stored_stream_is_8bit_420_without_audio(real_videos, tmp_path):
    import av

    out = normalise(real_videos["bikes"], EncodeSettings())
    with av.open(str(_store(tmp_path, "out.mp4", out.data))) as c:
        assert [s.type for s in c.streams] == ["video"]
        stream = c.streams.video[0]
        assert stream.codec_context.name == "vp9"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == 25


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotation_matches_ffmpeg_autorotate(ffmpeg, tmp_path, degrees):
    from tests.support import media

    src = media.rotated(tmp_path / f"rot{degrees}.mp4", degrees=degrees).path
    out = normalise(src, EncodeSettings())
    ours = ffmpeg_frames(ffmpeg, _store(tmp_path, "out.mp4", out.data))
    ref = ffmpeg_frames(ffmpeg, src)  # the ffmpeg CLI applies the display matrix by itself
    assert ours.shape == ref.shape
    assert np.mean([psnr(a, b) for a, b in zip(ours, ref)]) > 30


@pytest.mark.parametrize("codec", ["vp9", "h264", "mjpeg"])
def test_quality_option_takes_effect(real_videos, codec):
    """A coarser quantiser gives a smaller file, for every codec (MJPEG's once silently did not)."""
    fine = normalise(real_videos["carphone_pristine"], EncodeSettings(codec=codec, quality=2))
    coarse = normalise(real_videos["carphone_pristine"], EncodeSettings(codec=codec, quality=30))
    assert len(coarse.data) < 0.7 * len(fine.data)


def test_plain_ffmpeg_with_the_same_options_writes_the_same_stream(real_videos, ffmpeg, tmp_path):
    """The bench's ceiling really uses the job's settings: same VP9 stream, byte for byte."""
    import subprocess

    from pipeline.normalise import ffmpeg_command

    settings = EncodeSettings()
    out = tmp_path / "ceiling.mp4"
    subprocess.run(ffmpeg_command(ffmpeg, real_videos["carphone_pristine"], out, settings), check=True)
    ours = ffmpeg_frames(
        ffmpeg, _store(tmp_path, "ours.mp4", normalise(real_videos["carphone_pristine"], settings).data)
    )
    assert np.array_equal(ffmpeg_frames(ffmpeg, out), ours)


@given(
    st.integers(2, 4000),
    st.integers(2, 4000),
    st.sampled_from([0, 90, 180, 270]),
    st.sampled_from([0, 64, 128, 256, 336]),
    st.sampled_from([Fraction(1), Fraction(4, 3), Fraction(8, 9), Fraction(128, 117)]),
)
def test_output_size_rules(w, h, rotation, short_side, sar):
    ow, oh = output_size(w, h, sar, rotation, short_side)
    assert ow % 2 == 0 and oh % 2 == 0 and ow >= 2 and oh >= 2
    dw, dh = (h, w * sar) if rotation % 180 else (w * sar, h)
    if short_side:
        assert min(ow, oh) <= max(short_side, 2) + 1  # capped (rounding to even may add one)
    assert min(ow, oh) <= min(dw, dh) + 2  # never upscaled beyond rounding to even
    if min(ow, oh) >= 32:  # aspect ratio kept, up to rounding
        assert abs(ow / oh - dw / dh) / (dw / dh) < 0.1
