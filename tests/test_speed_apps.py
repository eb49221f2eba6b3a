"""SpeedNet's applications: the speedup optimisation (exact, property-tested against a generic
solver), speediness curves and slow-motion detection, re-timed videos with exact timing, and CAM."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from scipy.optimize import minimize

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

@given(speedups, st.floats(0, 1), st.sampled_from([24, 25, 30, 29.97]))
def test_retime_plan_lasts_exactly_input_over_rate(V, where, fps):
    rate = 1 + where * (V.max() - 1)  # any float: e.g. 1.23456 must work
    S = smooth_speedup(V, rate, 10)
    source, fps_out = plan(S, fps, rate=rate)
    L = len(V)
    assert len(source) == max(1, round(Fraction(L) / Fraction(rate).limit_denominator(1000)))
    assert Fraction(len(source)) / fps_out == Fraction(L) / Fraction(fps).limit_denominator(1001) / Fraction(rate).limit_denominator(1000)
    assert (np.diff(source) >= 0).all() and 0 <= source.min() and source.max() < L


def test_uniform_plan_takes_every_rate_th_frame():
    source, fps_out = plan(np.full(100, 2.0), 25, rate=2.0)
    assert list(source) == list(range(0, 100, 2)) and fps_out == 25


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


def test_slow_motion_is_found_in_the_slowed_half(slow_motion_video, tmp_path):
    from jobs.speediness import analyse, normalise

    truth = slow_motion_video
    oracle = _motion_oracle(normalise(truth["path"], tmp_path / "calibrate"), truth["slow_start"])
    a = analyse(oracle, truth["path"], tmp_path / "work", size=64)
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


def test_speedup_command_output_lasts_input_over_rate(slow_motion_video, tiny_speednet_checkpoint, tmp_path, capsys):
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
    for signed in (False, True):
        out = tmp_path / f"cam-{signed}"
        args = [slow_motion_video["path"], "--checkpoint", str(tiny_speednet_checkpoint), "--size", "64",
                "--out", str(out)] + (["--signed"] if signed else [])
        assert main(args) == 0
        assert len(list((out / "frames").glob("*.png"))) == 192  # 12 whole 16-frame windows of 200 frames
        with av.open(str(out / "cam.mp4")) as c:
            assert sum(1 for _ in c.decode(video=0)) == 192


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
    assert main([slow_motion_video["path"], "--checkpoint", str(path), "--size", "32", "--frames", "8",
                 "--out", str(tmp_path / "cam"), "--no-png"]) == 0
    assert main([slow_motion_video["path"], "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "x")]) == 2
    assert "needs a linear g_m head" in capsys.readouterr().err
