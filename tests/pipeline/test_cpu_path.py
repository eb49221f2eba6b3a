"""The CPU path's parts: where it seeks, that its frames are the stream's frames exactly, that its
augmentation matches the DALI graph's for the same parameters, and that sliding windows decode once."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.augment import AugmentConfig
from pipeline.loader import VideoLoader, eval_loader
from pipeline.seek_decode import BadStream, PlannedDecode, decode_runs, decoded_count
from pipeline.shards import ShardIndex, resolve_shards
from tests.support.media import psnr

# --- where to seek: a pure function --------------------------------------------------------------


@st.composite
def streams(draw):
    frames = draw(st.integers(1, 400))
    keyframes = sorted({0} | set(draw(st.lists(st.integers(0, frames - 1), max_size=20))))
    wanted = sorted(set(draw(st.lists(st.integers(0, frames - 1), min_size=1, max_size=60))))
    return frames, keyframes, wanted


@given(streams())
def test_runs_cover_the_wanted_frames_from_keyframes_and_decode_no_more_than_needed(stream):
    frames, keyframes, wanted = stream
    runs = decode_runs(wanted, keyframes)
    assert [f for r in runs for f in r.frames] == wanted  # each once, in order
    for r in runs:
        assert r.start in keyframes and r.start <= r.frames[0]
        assert not any(r.start < k <= r.frames[0] for k in keyframes)  # the last keyframe before it
    for before, after in zip(runs, runs[1:]):  # a seek only where it skips frames
        assert after.start > before.frames[-1] + 1
    assert decoded_count(runs) <= wanted[-1] + 1  # never more than decoding from the start
    per_frame = [decode_runs([f], keyframes)[0] for f in wanted]  # a seek before every frame
    assert decoded_count(runs) <= sum(f - r.start + 1 for f, r in zip(wanted, per_frame))


def test_runs_refuse_unsorted_frames_and_a_stream_without_a_first_keyframe():
    with pytest.raises(ValueError):
        decode_runs([3, 1], [0])
    with pytest.raises(ValueError):
        decode_runs([3], [2])


# --- the frames: exactly the stream's ------------------------------------------------------------


def ffmpeg_planes(ffmpeg: str, data: bytes, tmp_path, width: int, height: int) -> np.ndarray:
    """Every frame of a stored video as raw 4:2:0 planes, decoded by the FFmpeg command-line tool."""
    path = tmp_path / "video.mp4"
    path.write_bytes(data)
    raw = subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-i",
            str(path),
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height * width * 3 // 2)


@pytest.mark.parametrize("shards", ["synthetic_splits", "real_shards"])
def test_planned_frames_equal_an_independent_decoders_frames_exactly(shards, ffmpeg, tmp_path, request):
    """Seeks onto, just before and just after keyframes, mid-GOP, the first and the last frames:
    every planned frame's Y, U and V planes are the FFmpeg tool's, bit for bit."""
    split = request.getfixturevalue(shards)
    split = split / "train" if shards == "synthetic_splits" else split
    index = ShardIndex(resolve_shards(split))
    rng = np.random.default_rng(0)
    checked = set()
    for i in range(0, len(index), max(1, len(index) // 4)):
        meta, data = index.read(i)
        reference = ffmpeg_planes(ffmpeg, data, tmp_path, meta.width, meta.height)
        assert len(reference) == meta.frames
        decoder = PlannedDecode(data, [0], meta.frames)
        keyframes = decoder._index.keyframes
        assert decoder._index.numbered and len(keyframes) > 1  # the seeking path, not the fallback
        near = {k + d for k in keyframes for d in (-1, 0, 1)} | {meta.frames - 2, meta.frames - 1}
        near |= set(rng.integers(0, meta.frames, 12).tolist())
        for wanted in (sorted(f for f in near if 0 <= f < meta.frames), [meta.frames - 1], [keyframes[-1]]):
            decode = PlannedDecode(data, wanted, meta.frames)
            planes = decode.all()
            y_size = meta.width * meta.height
            for got_y, got_uv, f in zip(planes.y, planes.uv, wanted):
                assert np.array_equal(got_y.ravel(), reference[f, :y_size]), (meta.key, f)
                assert np.array_equal(got_uv.ravel(), reference[f, y_size:]), (meta.key, f)
            checked.update((meta.key, f) for f in wanted)
        assert decode.decoded < meta.frames  # the last keyframe's GOP alone, not the whole stream
    assert len(checked) > 40


def test_a_stream_shorter_than_its_metadata_is_a_bad_stream(synthetic_splits):
    meta, data = ShardIndex(resolve_shards(synthetic_splits / "train")).read(0)
    with pytest.raises(BadStream):
        PlannedDecode(data, [meta.frames + 5], meta.frames + 10).all()  # counted from the start: ends early


# --- the augmentation: the DALI graph's, for the same parameters ---------------------------------

RECIPES = {  # plan, augmentation, least PSNR (dB) of every clip against the DALI graph's
    "rspnet (released)": ("rspnet", AugmentConfig("rspnet"), 40),
    "rspnet aug_plus (blur)": (
        "rspnet",
        AugmentConfig("rspnet", jitter=(0.4, 0.4, 0.4, 0.1), jitter_p=0.8, blur_p=0.5),
        40,
    ),
    "speednet": ("speednet", AugmentConfig("speednet"), 40),
    "eval": ("eval", AugmentConfig("eval"), 40),
    # no antialiasing: 3x downscales point-sample detail, and the CPU path samples the chroma plane
    # where DALI samples chroma upsampled to full size; aliasing turns that into larger differences
    "eval without antialiasing": ("eval", AugmentConfig("eval", antialias=False), 30),
    "speed test (224)": ("speedtest", AugmentConfig("eval", out=224), 40),
}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_cpu_path_matches_the_dali_graph_for_the_same_draws(recipe, real_shards):
    """Same seed, same plans and parameters on both paths; every clip at least 40 dB PSNR from the
    DALI graph's (the issue asks 30; measured 43 to 57 dB): the paths differ in where colour is
    converted (at the output size here, the stored size in DALI) and in rounding between operations.
    Without antialiasing, 30 dB (measured 34.6 at worst)."""
    plan, augment, least = RECIPES[recipe]
    batches = {}
    for decoder in ("pyav", "dali"):
        loader = VideoLoader(
            real_shards, plan=plan, augment=augment, batch_size=3, device="cpu", seed=5, decoder=decoder
        )
        loader.normalise_pixels = False
        batches[decoder] = next(iter(loader))
    cpu, dali = batches["pyav"], batches["dali"]
    assert cpu.keys == dali.keys and np.array_equal(cpu.indices, dali.indices) and cpu.role == dali.role
    assert cpu.video.shape == dali.video.shape and cpu.video.dtype == dali.video.dtype
    worst = min(psnr(a.numpy(), b.numpy()) for a, b in zip(cpu.video, dali.video))
    assert worst >= least, worst


def test_normalised_batches_agree_too(real_shards):
    """What trainers get, float (N, C, T, H, W): the same layout and values on both paths."""
    out = {
        d: next(iter(VideoLoader(real_shards, plan="rspnet", batch_size=2, device="cpu", seed=2, decoder=d))).video
        for d in ("pyav", "dali")
    }
    assert out["pyav"].shape == out["dali"].shape == (6, 3, 16, 112, 112)
    assert (out["pyav"] - out["dali"]).abs().mean() < 0.02  # normalised units: about 1 grey level


# --- sliding windows: one pass over the video ----------------------------------------------------


def test_sliding_windows_decode_each_frame_once(real_shards):
    """Overlapping windows (stride 4 < T 16) are cut from one in-order pass, not decoded per window."""
    index = ShardIndex(resolve_shards(real_shards))
    position = max(range(len(index)), key=lambda i: index.read_meta(i).frames)
    loader = eval_loader(real_shards, "sliding", {"T": 16, "stride": 4}, size=64, samples=[position])
    batch = next(iter(loader))
    last = int(batch.indices.max())
    assert len(batch) > 10 and loader.decoded_frames == last + 1
