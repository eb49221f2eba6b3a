"""The speedup command (jobs/speed/speedup.py): the output lasts input over rate, and shows the frames
S's integral picks, as the independent FFmpeg decodes them."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest

from tests.support.media import ffmpeg_frames, psnr
from tests.support.speed import assert_follows_integral


def test_speedup_command_output_lasts_input_over_rate(
    slow_motion_video, tiny_speednet_checkpoint, tmp_path, capsys, ffmpeg
):
    from jobs.speed.speedup import main

    out = tmp_path / "fast.mp4"
    assert (
        main(
            [
                slow_motion_video["path"],
                "--checkpoint",
                str(tiny_speednet_checkpoint),
                "--size",
                "64",
                "--rate",
                "2.5",
                "-o",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["s_rate"] == pytest.approx(2.5, rel=0.01)
    for path in (out, tmp_path / "fast-uniform.mp4"):
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            pts = [f.pts for f in c.decode(video=0)]
            frame = Fraction(1, 1) / stream.average_rate
        assert len(pts) == 80  # 200 frames / 2.5
        assert pts == sorted(pts) and len(set(np.diff(pts))) == 1  # constant frame duration
        assert len(pts) * frame == Fraction(8) / Fraction(5, 2)  # exactly 8 s / 2.5
    assert (tmp_path / "fast-speedup.png").is_file()
    # this network sees no speed anywhere (S = 2.5 throughout): both videos are frames 0, 2, 5, 7, 10, ...
    # of the input, as the independent FFmpeg decodes and matches them
    source = ffmpeg_frames(ffmpeg, slow_motion_video["path"])
    for path in (out, tmp_path / "fast-uniform.mp4"):
        assert list(_source_frames(ffmpeg_frames(ffmpeg, path), source)) == [k * 5 // 2 for k in range(80)]


def _source_frames(video: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Which frame of ``source`` each frame of ``video`` is: the nearest (mean squared difference), and
    a copy of it (PSNR over 30 dB, where neighbouring source frames differ by more)."""
    a = video.reshape(len(video), -1).astype(np.float64)
    b = source.reshape(len(source), -1).astype(np.float64)
    mse = ((a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T) / a.shape[1]
    nearest = mse.argmin(1)
    assert min(psnr(v, source[i]) for v, i in zip(video, nearest)) > 30
    return nearest


def test_adaptive_speedup_video_shows_the_frames_S_picks(
    slow_motion_video, oracle_analysis, ffmpeg, tmp_path, monkeypatch, capsys
):
    """With a network that knows where the slow motion is, S is faster there; the adaptive video, decoded
    by the independent FFmpeg and matched frame by frame against the input, shows exactly the frames S's
    integral picks (worked out by hand), the uniform one every rate-th frame, and the two differ."""
    import jobs.speed.speedup as speedup

    truth = slow_motion_video
    oracle, a = oracle_analysis

    def cached_analysis(net, video, work, **options):  # the oracle's analysis of this very video, done once
        assert net is oracle and str(video) == truth["path"]
        return a

    solved, solve = [], speedup.smooth_speedup
    monkeypatch.setattr(speedup, "load_speednet", lambda path, device: oracle)
    monkeypatch.setattr(speedup, "analyse", cached_analysis)
    monkeypatch.setattr(speedup, "smooth_speedup", lambda *args, **kw: solved.append(solve(*args, **kw)) or solved[-1])
    out = tmp_path / "fast.mp4"
    assert speedup.main([truth["path"], "--checkpoint", "oracle", "--rate", "2", "-o", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["s_rate"] == pytest.approx(2, rel=1e-9)
    (S,) = solved
    slow = truth["slow_start"]
    # the oracle's answer: the slow half can go faster (a flat S would give 1.0)
    assert S[slow + 16 :].min() > 1.4 * S[: slow - 16].max()

    source = ffmpeg_frames(ffmpeg, truth["path"])
    adaptive = _source_frames(ffmpeg_frames(ffmpeg, out), source)
    uniform = _source_frames(ffmpeg_frames(ffmpeg, tmp_path / "fast-uniform.mp4"), source)
    assert_follows_integral(adaptive, S, 2.0)
    assert list(uniform) == list(range(0, 200, 2))
    # so the slow half is sampled sparsely, the normal half densely
    assert (adaptive >= slow).sum() < 0.8 * (uniform >= slow).sum()
    assert np.diff(adaptive[adaptive >= slow + 16]).mean() > 1.5 * np.diff(adaptive[adaptive < slow - 16]).mean()
