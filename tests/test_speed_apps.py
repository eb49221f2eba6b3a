"""SpeedNet's applications: the speedup optimisation (exact, property-tested against a generic
solver), speediness curves and slow-motion detection, re-timed videos with exact timing, and CAM."""

from __future__ import annotations

import json
from bisect import bisect_right
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from scipy.optimize import minimize

from conftest import ffmpeg_frames, psnr
from jobs import speed_curves
from jobs.retime import plan
from jobs.speedup_solver import Infeasible, overall_rate, smooth_speedup

# --- the speedup optimisation -------------------------------------------------------------------

speedups = st.lists(st.integers(0, 10), min_size=1, max_size=40).map(lambda e: 1.25 ** np.array(e, float))


@given(speedups, st.one_of(st.floats(0, 1), st.sampled_from([1 - 1e-16, 1e-16, 1 - 1e-12, 1e-12, 1 - 1e-8])),
       st.floats(0.01, 100))
def test_smooth_speedup_meets_the_rate_within_bounds(V, where, alpha):
    rate = 1 + where * (V.max() - 1)
    S = smooth_speedup(V, rate, alpha)
    assert overall_rate(S) == pytest.approx(rate, rel=1e-9)  # the issue asks 1%
    assert S.min() >= 1 - 1e-12 and S.max() <= max(V.max(), rate) * (1 + 1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 10), min_size=2, max_size=12).map(lambda e: 1.25 ** np.array(e, float)),
       st.floats(0.05, 0.95), st.floats(0.01, 100))
def test_smooth_speedup_is_the_optimum_a_generic_solver_finds(V, where, alpha):
    rate = 1 + where * (V.max() - 1)
    u = 1 / smooth_speedup(V, rate, alpha)
    n, s_max = len(V), max(V.max(), rate)

    def energy(x):
        return np.sum((x - 1 / V) ** 2) + alpha * np.sum(np.diff(x) ** 2)

    ref = minimize(energy, np.full(n, 1 / rate), method="SLSQP", bounds=[(1 / s_max, 1.0)] * n,
                   constraints=[{"type": "eq", "fun": lambda x: x.sum() - n / rate}],
                   options={"ftol": 1e-14, "maxiter": 1000})
    assert energy(u) <= ref.fun + 1e-9


@given(speedups.filter(lambda V: len(V) > 2 and V.max() > 1.5), st.floats(0.01, 10), st.floats(1.5, 100))
def test_more_smoothing_weight_never_gives_a_rougher_curve(V, alpha, factor):
    rate = (1 + V.max()) / 2

    def roughness(S):
        return np.sum(np.diff(1 / S) ** 2)

    assert roughness(smooth_speedup(V, rate, alpha * factor)) <= roughness(smooth_speedup(V, rate, alpha)) + 1e-12


def test_smooth_speedup_follows_V_and_refuses_impossible_rates():
    V = np.r_[np.ones(100), np.full(100, 4.0)]
    S = smooth_speedup(V, 2.0, alpha=20)
    assert S[:80].mean() < 1.5 and S[120:].mean() > 3  # slow where V is, fast where it allows
    assert np.abs(np.diff(S)).max() < 0.5  # and no jump from 1 to 4
    with pytest.raises(Infeasible):
        smooth_speedup(V, 5.0, s_max=4.0)
    with pytest.raises(Infeasible):
        smooth_speedup(V, 0.5)


# --- curves -------------------------------------------------------------------------------------

curves_st = st.integers(2, 60).flatmap(
    lambda L: st.lists(st.lists(st.floats(0, 1), min_size=L, max_size=L), min_size=11, max_size=11)).map(np.array)


@given(curves_st, st.sampled_from(speed_curves.RHOS), st.sampled_from(speed_curves.RHOS))
def test_speedup_vector_is_the_largest_normal_rate_and_falls_with_rho(curves, r1, r2):
    factors = speed_curves.rates()
    V = speed_curves.speedup_vector(curves, factors, r1)
    for t in range(curves.shape[1]):
        normal = factors[curves[:, t] > r1]
        assert V[t] == (normal.max() if len(normal) else 1.0)
    if r2 > r1:
        assert (speed_curves.speedup_vector(curves, factors, r2) <= V).all()


@given(curves_st, st.floats(1, 9))
def test_choose_rho_is_closest_to_the_target(curves, rate):
    factors = speed_curves.rates()
    rho, V = speed_curves.choose_rho(curves, factors, rate)
    gaps = [abs(overall_rate(speed_curves.speedup_vector(curves, factors, r)) - rate) for r in speed_curves.RHOS]
    assert abs(overall_rate(V) - rate) == pytest.approx(min(gaps)) and rho in speed_curves.RHOS


def test_frame_curve_interpolates_between_window_middles():
    assert np.allclose(speed_curves.frame_curve([2, 6], [1.0, 0.0], 9), [1, 1, 1, .75, .5, .25, 0, 0, 0])


# --- re-timing ----------------------------------------------------------------------------------

def assert_follows_integral(source, S, rate=None):
    """``source`` is the re-timing rule worked out in exact fractions: input frame t lasts u_t = 1 / S_t
    (the float plan sees) of output time, all scaled to last D = L / rate (or sum u to 1/1000), so it
    starts at U_t = D * sum_{s<t} u_s / sum u; output frame k of N = round(D) shows the frame whose
    [U_t, U_t+1) holds k D / N. The next frame is accepted only where it starts within rounding after."""
    u = [Fraction(1.0 / float(s)) for s in S]
    D = (Fraction(len(u)) / Fraction(rate).limit_denominator(1000) if rate is not None
         else Fraction(float(np.sum(1.0 / np.asarray(S, float)))).limit_denominator(1000))
    U, total = [Fraction(0)], sum(u)
    for x in u[:-1]:
        U.append(U[-1] + x)
    U = [x * D / total for x in U] + [D]
    N = max(1, round(D))
    assert len(source) == N
    for k, t in enumerate(source):
        p = k * D / N
        e = bisect_right(U, p) - 1
        assert t == e or (t == e + 1 and U[t] - p <= D / 10**9), f"output frame {k} shows {t}, the integral says {e}"


@given(speedups, st.floats(0, 1), st.sampled_from([24, 25, 30, 29.97]))
def test_retime_plan_lasts_exactly_input_over_rate(V, where, fps):
    rate = 1 + where * (V.max() - 1)  # any float: e.g. 1.23456 must work
    S = smooth_speedup(V, rate, 10)
    source, fps_out = plan(S, fps, rate=rate)
    L = len(V)
    assert len(source) == max(1, round(Fraction(L) / Fraction(rate).limit_denominator(1000)))
    assert Fraction(len(source)) / fps_out == Fraction(L) / Fraction(fps).limit_denominator(1001) / Fraction(rate).limit_denominator(1000)
    assert (np.diff(source) >= 0).all() and 0 <= source.min() and source.max() < L
    assert_follows_integral(source, S, rate)  # and each output frame is the one S's integral picks


@given(st.lists(st.floats(1, 8), min_size=1, max_size=60))
def test_retime_plan_without_a_rate_follows_the_integral_of_1_over_S(S):
    source, fps_out = plan(np.array(S), 25)
    assert_follows_integral(source, S)
    D = Fraction(float(np.sum(1 / np.array(S)))).limit_denominator(1000)
    assert fps_out == 25 * len(source) / D  # N frames lasting exactly D input frames


def test_uniform_plan_takes_every_rate_th_frame():
    source, fps_out = plan(np.full(100, 2.0), 25, rate=2.0)
    assert list(source) == list(range(0, 100, 2)) and fps_out == 25
    # 3x is frames 0, 3, 6, ...: where the float sum of thirds falls short of 3, frame 3 still starts at 1
    assert list(plan(np.full(99, 3.0), 25, rate=3.0)[0]) == list(range(0, 99, 3))


@given(st.floats(1, 10), st.integers(1, 3000))
def test_uniform_plan_shows_frame_floor_k_times_L_over_N(rate, L):
    source, fps_out = plan(np.full(L, rate), 25, rate=rate)
    N = len(source)
    assert N == max(1, round(L / Fraction(rate).limit_denominator(1000)))
    assert list(source) == [k * L // N for k in range(N)]  # exact: k * L / N input frames in


def test_retime_plan_skips_frames_only_where_S_is_fast():
    # 40 frames at 1x, then 60 at 3x: 40 + 20 output frames, rate 5/3
    S = np.r_[np.ones(40), np.full(60, 3.0)]
    assert list(plan(S, 25, rate=5 / 3)[0]) == list(range(40)) + list(range(40, 100, 3))
    assert list(plan(S[::-1], 25, rate=5 / 3)[0]) == list(range(0, 60, 3)) + list(range(60, 100))
    # 1/S, not S: at 4x then 1x, the fast half gives a quarter of the frames
    S = np.r_[np.full(40, 4.0), np.ones(40)]
    source = plan(S, 25)[0]
    assert list(source) == list(range(0, 40, 4)) + list(range(40, 80))


# --- the commands on a video --------------------------------------------------------------------

def _motion_oracle(tars, slow_start):
    """A stand-in SpeedNet with a known answer: P(sped up) rises with frame-to-frame change, with the
    threshold halfway (geometrically) between this pan at 1x and at 2x, measured on its normal part."""
    from pipeline.augment import AugmentConfig
    from pipeline.loader import VideoLoader

    def motion(video):
        return (video[:, :, 1:] - video[:, :, :-1]).abs().mean(dim=(1, 2, 3, 4))

    def level(rate):
        loader = VideoLoader(tars, plan="sliding", plan_options={"T": 16, "stride": 4, "rate": rate},
                             augment=AugmentConfig("eval", out=64), batch_size=1, device="cpu", shuffle=False)
        (video, batch), = list(loader)
        normal = batch["indices"][:, -1] < slow_start
        return float(motion(video)[normal].median())

    threshold = (level(1.0) * level(2.0)) ** 0.5
    return lambda video: 20 * (motion(video) / threshold - 1)


@pytest.fixture(scope="module")
def oracle_analysis(slow_motion_video, tmp_path_factory):
    """(the motion oracle, its analysis of the slow-motion video): a network with a known answer,
    analysed once for the tests that need it (11 rates of sliding windows are the slow part)."""
    from jobs.speediness import analyse, normalise

    truth, work = slow_motion_video, tmp_path_factory.mktemp("oracle")
    oracle = _motion_oracle(normalise(truth["path"], work / "calibrate"), truth["slow_start"])
    return oracle, analyse(oracle, truth["path"], work / "work", size=64)


def test_slow_motion_is_found_in_the_slowed_half(slow_motion_video, oracle_analysis):
    truth = slow_motion_video
    _, a = oracle_analysis
    assert a.curves.shape == (11, truth["frames"])
    segments = speed_curves.slow_segments(a.curves, a.factors, 1.9, min_frames=8)
    start, end = segments[-1]
    assert abs(start - truth["slow_start"]) <= 16 and end == truth["frames"]  # within one window
    # the pan eases in from rest (at most a second): the only other slow motion there may be
    assert all(e <= 25 for _, e in segments[:-1])
    s = speed_curves.speediness(a.curves, a.factors)
    assert s[25: truth["slow_start"] - 16].mean() > 0.6 > 0.5 > s[truth["slow_start"] + 16:].mean()


def test_speediness_command_writes_curves_plot_and_summary(slow_motion_video, tiny_speednet_checkpoint, tmp_path,
                                                           capsys):
    from jobs.speediness import main

    out = tmp_path / "sp"
    assert main([truth := slow_motion_video["path"], "--checkpoint", str(tiny_speednet_checkpoint), "--size", "64",
                 "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 200 and len(summary["rates"]) == 11 and truth == summary["video"]
    rows = (out / "curves.csv").read_text().splitlines()
    assert len(rows) == 201 and len(rows[0].split(",")) == 2 + 11 + 2
    assert (out / "speediness.png").stat().st_size > 10_000


def test_speedup_command_output_lasts_input_over_rate(slow_motion_video, tiny_speednet_checkpoint, tmp_path, capsys,
                                                      ffmpeg):
    from jobs.speedup import main

    out = tmp_path / "fast.mp4"
    assert main([slow_motion_video["path"], "--checkpoint", str(tiny_speednet_checkpoint), "--size", "64",
                 "--rate", "2.5", "-o", str(out), "--json"]) == 0
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


def test_adaptive_speedup_video_shows_the_frames_S_picks(slow_motion_video, oracle_analysis, ffmpeg, tmp_path,
                                                         monkeypatch, capsys):
    """With a network that knows where the slow motion is, S is faster there; the adaptive video, decoded
    by the independent FFmpeg and matched frame by frame against the input, shows exactly the frames S's
    integral picks (worked out by hand), the uniform one every rate-th frame, and the two differ."""
    import jobs.speedup as speedup

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
    S, = solved
    slow = truth["slow_start"]
    assert S[slow + 16:].min() > 1.5 * S[:slow - 16].max()  # the oracle's answer: the slow half can go faster

    source = ffmpeg_frames(ffmpeg, truth["path"])
    adaptive = _source_frames(ffmpeg_frames(ffmpeg, out), source)
    uniform = _source_frames(ffmpeg_frames(ffmpeg, tmp_path / "fast-uniform.mp4"), source)
    assert_follows_integral(adaptive, S, 2.0)
    assert list(uniform) == list(range(0, 200, 2))
    # so the slow half is sampled sparsely, the normal half densely
    assert (adaptive >= slow).sum() < 0.8 * (uniform >= slow).sum()
    assert np.diff(adaptive[adaptive >= slow + 16]).mean() > 1.5 * np.diff(adaptive[adaptive < slow - 16]).mean()


def test_cam_maps_and_command(slow_motion_video, tiny_speednet_checkpoint, tmp_path, capsys):
    from jobs.cam import main, normalise_maps

    maps = np.random.default_rng(0).standard_normal((3, 4, 4))
    a, s = normalise_maps(maps, signed=False), normalise_maps(maps, signed=True)
    assert a.min() >= 0 and a.max() == pytest.approx(1) and np.abs(s).max() == pytest.approx(1)
    assert (np.sign(s) == np.sign(maps)).all() and np.allclose(np.abs(s), a)
    # the overlaid frames are the decoded frames the network saw, recovered from its input
    from jobs.cam import activation_maps, map_function, window_frames
    from jobs.speediness import normalise
    from pipeline.augment import AugmentConfig
    from pipeline.loader import VideoLoader

    tars = normalise(slow_motion_video["path"], tmp_path / "work")
    cam = map_function(tiny_speednet_checkpoint, "m", "cpu")
    maps, count = activation_maps(cam, tars, size=64)
    window_mb = 16 * 3 * 64 * 64 * 4 / 2**20
    chunked, _ = activation_maps(cam, tars, size=64, memory_mb=5 * window_mb)  # 12 windows in chunks of 5
    assert count == 192 and maps.shape[0] == 12 and torch.allclose(chunked, maps, atol=1e-5)
    frames = np.concatenate(list(window_frames(tars, size=64, memory_mb=5 * window_mb)))
    (raw, _), = list(VideoLoader(tars, plan="sliding", plan_options={"T": 16, "stride": 16}, normalize=False,
                                 augment=AugmentConfig("eval", out=64), batch_size=1, device="cpu", shuffle=False))
    raw = np.asarray(raw).reshape(-1, 64, 64, 3)
    assert frames.shape == raw.shape == (192, 64, 64, 3)
    assert np.abs(frames.astype(int) - raw).max() <= 1
    # the maps' values: the logit's 1x1 weights applied at every position of the last feature map
    from jobs import checkpoint

    (clips, _), = list(VideoLoader(tars, plan="sliding", plan_options={"T": 16, "stride": 16},
                                   augment=AugmentConfig("eval", out=64), batch_size=1, device="cpu", shuffle=False))
    net = checkpoint.load_pretext(tiny_speednet_checkpoint)[0].net.eval()
    with torch.no_grad():
        features = net.backbone.forward_features(clips).numpy()
    assert np.allclose(maps.numpy(), _hand_cam(features, net.head.weight.detach().numpy().ravel()), atol=1e-4)
    for signed in (False, True):
        out = tmp_path / f"cam-{signed}"
        args = [slow_motion_video["path"], "--checkpoint", str(tiny_speednet_checkpoint), "--size", "64",
                "--out", str(out)] + (["--signed"] if signed else [])
        assert main(args) == 0
        assert len(list((out / "frames").glob("*.png"))) == 192  # 12 whole 16-frame windows of 200 frames
        # every saved frame: the frame the network saw, half covered by its own window's map at its own
        # frame, upsampled and scaled by the whole video's largest |map|, through jet (or blue-white-red)
        _assert_heat_frames(sorted((out / "frames").glob("*.png")), frames, maps.numpy(), signed)
        with av.open(str(out / "cam.mp4")) as c:
            assert sum(1 for _ in c.decode(video=0)) == 192


def _hand_cam(features: np.ndarray, w: np.ndarray) -> np.ndarray:
    """SpeedNet's CAM by hand: sum_c w_c F_c at every (t, h, w) of the (N, C, T', H', W') features."""
    out = np.zeros((features.shape[0], *features.shape[2:]))
    for c, weight in enumerate(w):
        out += weight * features[:, c].astype(np.float64)
    return out


def _linear_resize(a: np.ndarray, axis: int, out: int) -> np.ndarray:
    """Linear interpolation along ``axis`` to ``out`` samples at half-pixel centres (align_corners=False)."""
    n = a.shape[axis]
    x = np.clip((np.arange(out) + 0.5) * n / out - 0.5, 0, n - 1)
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    shape = [1] * a.ndim
    shape[axis] = out
    w = (x - i0).reshape(shape)
    return np.take(a, i0, axis) * (1 - w) + np.take(a, i1, axis) * w


def _hand_upsample(maps: np.ndarray, T: int, size: int) -> np.ndarray:
    """(n, T', H', W') -> (n * T, size, size): each window's map stretched over its own T frames."""
    up = _linear_resize(_linear_resize(_linear_resize(maps.astype(np.float64), 1, T), 2, size), 3, size)
    return up.reshape(-1, size, size)


def _assert_heat_frames(pngs, frames: np.ndarray, maps: np.ndarray, signed: bool) -> None:
    from matplotlib import colormaps
    from PIL import Image

    values = _hand_upsample(maps, 16, frames.shape[1]) / np.abs(maps).max()
    colours = colormaps["bwr"]((values + 1) / 2) if signed else colormaps["jet"](np.abs(values))
    expected = 0.5 * frames + 0.5 * 255 * colours[..., :3]
    got = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in pngs]).astype(float)
    assert got.shape == expected.shape
    # uint8 truncation: under one level off; a value on a colour-table step may take the next entry
    err = np.abs(got - expected)
    assert err.max() <= 2 and (err > 1).mean() < 1e-4


def test_upsample_stretches_each_window_over_its_own_frames():
    from jobs.cam import upsample

    maps = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    assert np.allclose(upsample(maps, 8, 16), _hand_upsample(maps.numpy(), 8, 16), atol=1e-5)
    assert np.allclose(upsample(maps, 16, 4), _hand_upsample(maps.numpy(), 16, 4), atol=1e-5)


class _Box(torch.nn.Module):
    """A backbone whose features are known by hand: 2x2x2 means of the clip's three channels."""

    out_channels, min_input = 3, (2, 2, 2)

    def forward_features(self, x):
        return torch.nn.functional.avg_pool3d(x, 2)

    def forward(self, x):
        return self.forward_features(x).mean(dim=(2, 3, 4))  # global average, as the map's mean


def test_speednet_cam_is_the_logit_weights_at_every_position():
    from models.speednet import SpeedNet

    net = SpeedNet(_Box()).eval()
    w = np.array([2.0, -1.0, 0.5])
    with torch.no_grad():
        net.head.weight.copy_(torch.tensor(w).view(1, 3, 1, 1, 1))
        net.head.bias.fill_(3.0)
    x = torch.randn(2, 3, 4, 6, 8, generator=torch.Generator().manual_seed(0))
    features = x.numpy().reshape(2, 3, 2, 2, 3, 2, 4, 2).mean(axis=(3, 5, 7))  # 2x2x2 means, by hand
    cam = net.activation_map(x)
    assert cam.shape == (2, 2, 3, 4)
    assert np.allclose(cam.detach().numpy(), _hand_cam(features, w), atol=1e-5)
    # no bias in the map (it is the same everywhere: evidence of no position); with average pooling
    # the logit is the map's mean plus the bias
    assert torch.allclose(net(x), cam.mean(dim=(1, 2, 3)) + 3.0, atol=1e-5)


def test_commands_refuse_bad_input(tiny_checkpoint, tiny_speednet_checkpoint, tmp_path, capsys):
    from jobs.speediness import main as speediness_main
    from jobs.speedup import main as speedup_main

    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    assert speediness_main([str(bad), "--checkpoint", str(tiny_speednet_checkpoint)]) == 2
    assert "not a readable video" in capsys.readouterr().err
    assert speediness_main([str(bad), "--checkpoint", str(tiny_checkpoint)]) == 2
    assert "needs a SpeedNet checkpoint" in capsys.readouterr().err
    assert speedup_main([str(bad), "--checkpoint", str(tiny_speednet_checkpoint), "--rate", "0.5", "-o",
                         str(tmp_path / "x.mp4")]) == 2
    assert "--rate must be at least 1" in capsys.readouterr().err
    assert speediness_main([str(bad), "--checkpoint", str(bad)]) == 2  # not a checkpoint at all
    assert "is not a checkpoint written by jobs.pretrain" in capsys.readouterr().err
    assert speediness_main([str(bad), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    for args in (["--size", "0"], ["--alpha", "-1", "-o", str(tmp_path / "x.mp4")]):  # refused before any work
        with pytest.raises(SystemExit) as exit:
            (speedup_main if "--alpha" in args else speediness_main)([str(bad), "--checkpoint", str(bad), *args])
        assert exit.value.code == 2


def test_rspnet_similarity_maps_follow_equation_4(synthetic_splits, tiny_checkpoint, slow_motion_video, tmp_path,
                                                  capsys):
    """RSPNet's CAM (its eq. 4) averaged over positions is the heads' similarity of the two windows,
    less the bias term: mean(M_i) = (W x_j + b)' W x_i."""
    from jobs import checkpoint
    from jobs.cam import main, map_function
    from jobs.config import load
    from jobs.pretrain import train
    from tiny_configs import tiny

    run = tmp_path / "linear"
    sets = tiny("tiny_rspnet", synthetic_splits / "train", **{"optim.max_steps": 1})
    sets = [s for s in sets if not s.startswith("model.options")]
    sets.append("model.options={ queue_size = 32, dim = 16, momentum = 0.9, bn_groups = 2, head_hidden = 0 }")
    train(load("tiny_rspnet", sets), run, progress=False)
    path = checkpoint.path_for(run, 1)
    model, _ = checkpoint.load_pretext(path)
    clips = torch.randn(3, 3, 8, 32, 32, generator=torch.Generator().manual_seed(0))
    for head, g in (("m", model.g_m), ("a", model.g_a)):
        maps = map_function(path, head, "cpu")(clips)
        with torch.no_grad():
            x = model.backbone(clips)
            e = g(x)
            partner = torch.cat([e[1:], e[-2:-1]])
            expected = (partner * (x @ g.weight.t())).sum(1)
        assert torch.allclose(maps.mean(dim=(1, 2, 3)), expected, atol=1e-4)
        # and at every position: the partner's embedding through W, as weights on the features there
        with torch.no_grad():
            features = model.backbone.forward_features(clips).numpy()
        weights = partner.numpy() @ g.weight.detach().numpy()  # (N, C): (W x_j + b)' W
        hand = np.stack([_hand_cam(features[n:n + 1], weights[n])[0] for n in range(len(clips))])
        assert maps.shape == hand.shape and np.allclose(maps.detach().numpy(), hand, atol=1e-4)
    assert main([slow_motion_video["path"], "--checkpoint", str(path), "--size", "32", "--frames", "8",
                 "--out", str(tmp_path / "cam"), "--no-png"]) == 0
    assert main([slow_motion_video["path"], "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "x")]) == 2
    assert "needs a linear g_m head" in capsys.readouterr().err
