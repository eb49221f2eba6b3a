"""The synthetic Kinetics-layout dataset: physics of the motion models, exact playback speed,
the on-disk layout, determinism, and that the classes really differ in how things move."""

from __future__ import annotations

import colorsys
import csv
import dataclasses
import json
import math
import re
import string
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.synthetic import (
    CLASSES,
    SyntheticConfig,
    make_kinetics_dataset,
    motion,
    plan_dataset,
    render_video,
    sample_scene,
)
from pipeline.synthetic.__main__ import main
from pipeline.synthetic.appearance import sample_look
from pipeline.synthetic.layout import CSV_HEADER, SPLITS, AnnotationRow, write_annotations
from tests.support.paths import REPO

seeds = st.integers(0, 2**32 - 1)
aspects = st.floats(0.75, 2.0)
times = st.floats(0.0, 60.0)
physics = settings(deadline=None, max_examples=60)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- motion models -------------------------------------------------------------------------


@physics
@given(h0=st.floats(1e-4, 5.0), e=st.floats(0.0, 0.98), t=st.lists(times, min_size=1, max_size=50))
def test_drop_never_below_floor_nor_above_release(h0, e, t):
    height = motion.drop_height(motion.Drop(h0, e), np.array(t))
    assert np.all(height >= 0.0)
    assert np.all(height <= h0 * (1 + 1e-12))


@physics
@given(h0=st.floats(1e-3, 5.0), e=st.floats(0.05, 0.98))
def test_bounce_peaks_never_increase_and_follow_restitution(h0, e):
    drop = motion.Drop(h0, e)
    contacts = motion.contact_times(drop)
    assert np.all(np.diff(contacts) > 0)
    apexes = motion.drop_height(drop, 0.5 * (contacts[:-1] + contacts[1:]))  # mid-flight = apex
    assert np.all(np.diff(apexes) <= 1e-12 * h0)
    expected = h0 * e ** (2.0 * np.arange(1, len(apexes) + 1))
    np.testing.assert_allclose(apexes, expected, rtol=1e-6, atol=1e-12)
    assert np.all(motion.drop_height(drop, contacts) <= 1e-9 * h0)  # on the floor at each contact


@physics
@given(seed=seeds, aspect=aspects, t=st.lists(times, min_size=1, max_size=50))
def test_bouncing_ball_and_box_stay_above_the_floor(seed, aspect, t):
    t = np.array(t)
    ball = motion.sample_bouncing_ball(rng(seed), aspect)
    assert np.all(motion.bouncing_ball_state(ball, t).y - ball.radius >= motion.FLOOR - 1e-12)
    box = motion.sample_tumbling_box(rng(seed), aspect)
    state = motion.box_state(box, t)
    lowest = state.y - box.half * (np.abs(np.cos(state.angle)) + np.abs(np.sin(state.angle)))
    assert np.all(lowest >= motion.FLOOR - 1e-12)


@physics
@given(seed=seeds, aspect=aspects)
def test_box_lands_face_down(seed, aspect):
    box = motion.sample_tumbling_box(rng(seed), aspect)
    angles = motion.box_angle(box, motion.contact_times(box.drop))
    quarter_turns = angles / (math.pi / 2)
    np.testing.assert_allclose(quarter_turns, np.round(quarter_turns), atol=1e-9)


@physics
@given(seed=seeds, aspect=aspects, t=st.lists(times, min_size=1, max_size=50))
def test_pendulum_is_bounded_by_its_amplitude_and_periodic(seed, aspect, t):
    p = motion.sample_pendulum(rng(seed), aspect)
    t = np.array(t)
    theta = motion.pendulum_angle(p, t)
    assert np.all(np.abs(theta) <= p.amplitude * (1 + 1e-12))
    period = motion.pendulum_period(p)
    np.testing.assert_allclose(motion.pendulum_angle(p, t + period), theta, atol=1e-8)
    # Turning points reach the amplitude: the swing is not damped.
    assert abs(abs(float(motion.pendulum_angle(p, -p.phase + period / 2))) - p.amplitude) < 1e-9


@physics
@given(amplitude=st.floats(0.01, 1.2), length=st.floats(0.1, 2.0))
def test_pendulum_period_grows_with_amplitude_as_physics_says(amplitude, length):
    p = motion.Pendulum(0.0, 1.0, length, amplitude, 0.0, 0.05)
    small = 2 * math.pi * math.sqrt(length / motion.G)
    series = small * (1 + amplitude**2 / 16 + 11 * amplitude**4 / 3072)  # next term ~2.4e-4 a^6
    assert motion.pendulum_period(p) >= small
    assert motion.pendulum_period(p) == pytest.approx(series, rel=1e-15 + 3e-4 * amplitude**6)


def test_pendulum_period_at_ninety_degrees():
    p = motion.Pendulum(0.0, 1.0, 0.5, math.pi / 2, 0.0, 0.05)
    small = 2 * math.pi * math.sqrt(0.5 / motion.G)
    assert motion.pendulum_period(p) / small == pytest.approx(1.1803406, rel=1e-6)  # 2 K(1/2) / pi


@physics
@given(seed=seeds, aspect=aspects, t=st.lists(times, min_size=2, max_size=50))
def test_rolling_ball_angle_is_fixed_by_where_it_has_rolled(seed, aspect, t):
    p = motion.sample_rolling_ball(rng(seed), aspect)
    t = np.sort(np.array(t))
    state = motion.rolling_ball_state(p, t)
    np.testing.assert_allclose(state.angle * p.radius, -(state.x - p.x0), atol=1e-12)  # no slip
    assert np.all(np.diff(state.distance) >= 0)
    assert np.all((state.x >= p.x_min) & (state.x <= p.x_max))


@physics
@given(seed=seeds, aspect=aspects, duration=st.floats(0.1, 30.0))
def test_rolling_ball_turns_by_distance_over_radius(seed, aspect, duration):
    """Summed over its path, walls included, the ball turns by distance / radius."""
    p = motion.sample_rolling_ball(rng(seed), aspect)
    t = np.linspace(0.0, duration, 100_001)
    state = motion.rolling_ball_state(p, t)
    turned = np.abs(np.diff(state.angle)).sum()
    assert turned == pytest.approx(state.distance[-1] / p.radius, abs=0.2)  # grid misses wall corners
    first = state.distance < min(p.x0 - p.x_min, p.x_max - p.x0)  # before any wall: exactly
    np.testing.assert_allclose(np.abs(state.angle[first]), state.distance[first] / p.radius, atol=1e-9)


@physics
@given(seed=seeds, aspect=aspects, t=st.lists(times, min_size=2, max_size=50))
def test_walker_advances_monotonically_and_bobs_at_twice_the_gait(seed, aspect, t):
    p = motion.sample_walker(rng(seed), aspect)
    t = np.sort(np.array(t))
    state = motion.walker_state(p, t)
    assert np.all(np.diff(state.distance) >= 0)
    assert np.all((state.x >= p.x_min) & (state.x <= p.x_max))  # turns round at the edges
    assert np.all(state.hip_y <= motion.FLOOR + p.leg)
    step = 1.0 / (2.0 * p.gait_hz)  # half a gait cycle: the other leg leads, the hip is as high
    np.testing.assert_allclose(motion.walker_state(p, t + step).hip_y, state.hip_y, atol=1e-9)
    np.testing.assert_allclose(motion.walker_state(p, t + step).leg, -state.leg, atol=1e-9)


@physics
@given(seed=seeds, t=st.lists(times, min_size=2, max_size=50))
def test_camera_pan_eases_in_and_never_turns_back(seed, t):
    p = motion.sample_camera_pan(rng(seed), 4 / 3)
    t = np.sort(np.array(t))
    travelled = p.direction * motion.camera_pan_offset(p, t)
    assert np.all(np.diff(travelled) >= -1e-12)
    assert np.all(travelled <= p.speed * t + 1e-12)  # slower than full speed while easing in


def test_appearance_families_share_no_colour_texture_or_shape():
    looks = {f: [sample_look(rng(i), f) for i in range(200)] for f in ("seen", "unseen")}
    for attribute in ("texture", "shape"):
        seen = {getattr(look, attribute) for look in looks["seen"]}
        unseen = {getattr(look, attribute) for look in looks["unseen"]}
        assert not seen & unseen
    hue = {f: {round(colorsys.rgb_to_hsv(*look.primary)[0], 2) for look in looks[f]} for f in looks}
    assert not hue["seen"] & hue["unseen"]


# --- rendering -----------------------------------------------------------------------------


def scene_of(label: str, seed: int = 0, size=(96, 72), family="seen"):
    return sample_scene(label, rng(seed), size[0], size[1], family)


@pytest.mark.parametrize("label", list(CLASSES))
def test_speed_two_shows_every_other_frame_of_speed_one_exactly(label):
    scene = scene_of(label, seed=3)
    np.testing.assert_array_equal(render_video(scene, 2.0, 25, 12), render_video(scene, 1.0, 25, 24)[::2])
    np.testing.assert_array_equal(render_video(scene, 3.0, 25, 6), render_video(scene, 1.5, 25, 12)[::2])


def _mean_abs_diff(frames: np.ndarray) -> float:
    return float(np.abs(np.diff(frames.astype(np.int16), axis=0)).mean())


@pytest.fixture(scope="module")
def one_second():
    """Three scenes per class, one second of physical time at speed 1 (25 frames) and at speed 2 (13)."""
    clips = {}
    for label in CLASSES:
        for seed in range(3):
            scene = scene_of(label, seed)
            clips[label, seed] = render_video(scene, 1.0, 25, 25), render_video(scene, 2.0, 25, 13)
    return clips


def test_only_the_camera_pan_moves_the_ground(one_second):
    """Classes differ in what moves: under a pan the floor slides by; otherwise only objects move."""
    for (label, seed), (frames, _) in one_second.items():
        rows = frames.shape[1] // 10  # the bottom tenth: floor, below anything standing on it
        ground = frames[:, -rows:].astype(np.int16)
        moved = float((np.abs(ground - ground[0]).max(axis=(0, 3)) > 8).mean())
        if label == "camera pan":
            assert moved > 0.9, (label, seed, moved)
        else:
            assert moved == 0.0, (label, seed, moved)


def test_speed_is_visible_as_larger_frame_differences(one_second):
    """Over the same second of physical time, each frame step at speed 2 covers twice the motion."""
    for (label, seed), (slow, fast) in one_second.items():
        assert _mean_abs_diff(fast) > 1.15 * _mean_abs_diff(slow) > 0, (label, seed)


def test_balls_bounce_only_in_the_bouncing_class():
    """The bouncing ball's height goes up and down; the rolling ball's never leaves the floor."""
    t = np.arange(75) / 25
    heights = motion.bouncing_ball_state(scene_of("bouncing ball").motion, t).y
    assert np.sum(np.diff(np.sign(np.diff(heights))) != 0) >= 2
    assert np.ptp(motion.rolling_ball_state(scene_of("rolling ball").motion, t).y) == 0


# --- the dataset on disk -------------------------------------------------------------------

SMALL = SyntheticConfig(
    videos_per_class={"train": 2, "val": 1, "test": 1},
    width=64,
    height=48,
    duration_s=1.0,
    speeds=(1.0, 2.0),
    appearance="mixed",
    seed=7,
)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """The small dataset written twice with the same seed and once with another."""
    roots = {name: tmp_path_factory.mktemp(name) for name in ("first", "again", "other")}
    truths = {
        "first": make_kinetics_dataset(roots["first"], SMALL),
        "again": make_kinetics_dataset(roots["again"], SMALL),
        "other": make_kinetics_dataset(roots["other"], dataclasses.replace(SMALL, seed=8)),
    }
    return roots, truths


def read_rows(root: Path, split: str) -> list[dict[str, str]]:
    with open(root / "annotations" / f"{split}.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def decode(path: Path) -> tuple[np.ndarray, tuple]:
    """All frames as RGB, and the stream's (average rate, codec, pixel format)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, (stream.average_rate, stream.codec_context.name, stream.codec_context.pix_fmt)


def test_layout_matches_kinetics(datasets):
    roots, truths = datasets
    root = roots["first"]
    ids, labels, stems = [], set(), set()
    for split in SPLITS:
        first_line = (root / "annotations" / f"{split}.csv").read_text(encoding="utf-8").splitlines()[0]
        assert first_line == ",".join(CSV_HEADER)
        rows = read_rows(root, split)
        assert len(rows) == len(CLASSES) * SMALL.videos_per_class[split]
        for row in rows:
            assert row["split"] == split and row["is_cc"] in ("0", "1")
            start, end = int(row["time_start"]), int(row["time_end"])
            assert end - start == round(SMALL.duration_s)
            path = root / split / f"{row['youtube_id']}_{start:06d}_{end:06d}.mp4"
            assert path.is_file()
            ids.append(row["youtube_id"])
            labels.add(row["label"])
            stems.add(path.stem)
        assert {p.stem for p in (root / split).iterdir()} <= stems  # nothing else, no leftovers
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert any(i.startswith("-") for i in ids)
    assert labels == set(CLASSES)  # quotes and parentheses survive the round trip
    assert set(truths["first"]["videos"]) == stems
    assert not list(root.rglob("*.partial"))


def test_ground_truth_describes_every_video(datasets):
    roots, truths = datasets
    truth = truths["first"]
    assert truth["seed"] == SMALL.seed and truth["fps"] == SMALL.fps
    on_disk = (roots["first"] / "synthetic.json").read_text(encoding="utf-8")
    assert json.loads(on_disk) == truth
    videos = truth["videos"].values()
    assert {v["motion"] for v in videos} == set(CLASSES.values())
    assert {v["speed"] for v in videos} == set(SMALL.speeds)
    assert all(CLASSES[v["label"]] == v["motion"] for v in videos)
    # "mixed": training never shows an unseen object, evaluation shows both kinds.
    assert {v["appearance"] for v in videos if v["split"] == "train"} == {"seen"}
    assert {v["appearance"] for v in videos if v["split"] != "train"} == {"seen", "unseen"}


def test_videos_decode_to_the_right_count_rate_and_picture(datasets):
    roots, _ = datasets
    for video in plan_dataset(SMALL):
        frames, (rate, codec, pix_fmt) = decode(video.clip.path(roots["first"]))
        assert len(frames) == round(SMALL.duration_s * SMALL.fps)
        assert rate == 25 and codec == "h264" and pix_fmt == "yuv420p"
        rendered = render_video(video.scene, video.speed, SMALL.fps, SMALL.n_frames)
        assert np.abs(frames.astype(np.int16) - rendered).mean() < 6  # lossy, but the same picture


def test_same_seed_same_dataset_other_seed_other_dataset(datasets):
    roots, truths = datasets
    for split in SPLITS:
        same = [(roots[n] / "annotations" / f"{split}.csv").read_bytes() for n in ("first", "again", "other")]
        assert same[0] == same[1]
        assert same[0] != same[2]
    assert truths["first"] == truths["again"]
    for stem, video in truths["first"]["videos"].items():
        path = Path(video["split"]) / f"{stem}.mp4"
        np.testing.assert_array_equal(decode(roots["first"] / path)[0], decode(roots["again"] / path)[0])
        assert (roots["first"] / path).read_bytes() == (roots["again"] / path).read_bytes()
    first, other = plan_dataset(SMALL)[0], plan_dataset(dataclasses.replace(SMALL, seed=8))[0]
    assert not np.array_equal(decode(first.clip.path(roots["first"]))[0], decode(other.clip.path(roots["other"]))[0])


@settings(deadline=None, max_examples=50)
@given(label=st.text(string.printable + "éü'\"(),", min_size=1))
def test_any_label_round_trips_through_the_csv(tmp_path_factory, label):
    path = tmp_path_factory.mktemp("csv") / "train.csv"
    if "\r" in label or "\n" in label:
        with pytest.raises(ValueError, match="line break"):
            write_annotations(path, [AnnotationRow(label, "-abcdefghij", 5, 15, "train", 1)])
        return
    write_annotations(path, [AnnotationRow(label, "-abcdefghij", 5, 15, "train", 1)])
    with open(path, newline="", encoding="utf-8") as f:
        (row,) = csv.DictReader(f)
    assert row["label"] == label and row["youtube_id"] == "-abcdefghij"


# --- configuration and command line -------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"width": 15},
        {"height": 8},
        {"fps": 0},
        {"duration_s": 0.0},
        {"speeds": ()},
        {"speeds": (1.0, -2.0)},
        {"appearance": "blue"},
        {"seed": -1},
        {"videos_per_class": {"training": 3}},
        {"videos_per_class": {"val": -1}},
    ],
)
def test_config_rejects_bad_values(change):
    with pytest.raises(ValueError):
        SyntheticConfig(**change)


def test_cli_reports_bad_arguments_in_one_line(tmp_path, capsys):
    for argv in (["--out", str(tmp_path), "--width", "15"], ["--out", str(tmp_path), "--speeds", "1,x"], []):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "error:" in err
    assert not list(tmp_path.iterdir())


def test_cli_writes_a_dataset(tmp_path):
    out = tmp_path / "data"
    argv = [
        "--out",
        str(out),
        "--seed",
        "3",
        "--videos-per-class-train",
        "1",
        "--videos-per-class-val",
        "0",
        "--videos-per-class-test",
        "0",
        "--width",
        "32",
        "--height",
        "32",
        "--duration",
        "0.4",
        "--speeds",
        "1,2",
        "--appearance",
        "unseen",
        "--quiet",
    ]
    repo = REPO
    subprocess.run([sys.executable, "-m", "pipeline.synthetic", *argv], cwd=repo, check=True, capture_output=True)
    assert len(read_rows(out, "train")) == len(CLASSES)
    assert read_rows(out, "val") == [] and read_rows(out, "test") == []
    assert len(list((out / "train").glob("*.mp4"))) == len(CLASSES)
