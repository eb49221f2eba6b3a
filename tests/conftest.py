"""Shared test fixtures: the real videos beside the checkout, an independent FFmpeg decoder, the
synthetic dataset and its shards, tiny trained checkpoints, a slow-motion video and SLURM.

Helpers live in ``tests/support/``; this file holds fixtures and the Hypothesis profile only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from pipeline.device import ENV as DEVICE_ENV

# The suite's tolerances are the CPU's: on a GPU machine every command would otherwise pick CUDA (NVDEC,
# bf16). Set before any fixture runs, so subprocesses inherit it; GPU-marked tests lift it (below).
os.environ[DEVICE_ENV] = "cpu"

REAL = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "real"

# Every property test without its own @settings: no deadline (slow CI machines), 150 examples.
settings.register_profile("plans", deadline=None, max_examples=150)
settings.load_profile("plans")


@pytest.fixture(autouse=True)
def _gpu_tests_may_use_the_gpu(request, monkeypatch):
    if request.node.get_closest_marker("gpu"):
        monkeypatch.setenv(DEVICE_ENV, "auto")


@pytest.fixture(scope="session")
def real_videos() -> dict[str, Path]:
    videos = {p.stem: p for p in sorted(REAL.glob("*.mp4"))}
    if not videos:
        pytest.skip(f"no real test videos in {REAL}")
    return videos


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    """An FFmpeg binary that shares no code path with PyAV (imageio-ffmpeg's static build)."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    return imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="session")
def synthetic_kinetics(tmp_path_factory) -> Path:
    """Synthetic Kinetics on disk (CSVs and video files): train 4 videos per class, test 2 per class
    of objects never seen in train."""
    from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset

    root = tmp_path_factory.mktemp("synthetic-kinetics")
    make_kinetics_dataset(
        root, SyntheticConfig(videos_per_class={"train": 4, "val": 0, "test": 2}, appearance="mixed", duration_s=2.6)
    )
    return root


@pytest.fixture(scope="session")
def synthetic_splits(synthetic_kinetics, tmp_path_factory) -> Path:
    """``synthetic_kinetics`` sharded at short side 64: the data of the training, evaluation and
    retrieval tests."""
    from jobs.shard.__main__ import main as shard_main

    root = synthetic_kinetics
    out = tmp_path_factory.mktemp("synthetic-shards")
    assert (
        shard_main(
            [
                "kinetics",
                "--root",
                str(root),
                "--out",
                str(out),
                "--splits",
                "train,test",
                "--short-side",
                "64",
                "--videos-per-shard",
                "8",
                "--workers",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    return out


@pytest.fixture(scope="session")
def real_shards(real_videos, tmp_path_factory) -> Path:
    """The real test videos sharded as the shard job stores them (VP9, keyframes every 32 frames)."""
    from jobs.shard.__main__ import main as shard_main
    from pipeline.synthetic.layout import kinetics_from_files

    root = tmp_path_factory.mktemp("real") / "k"
    kinetics_from_files([str(p) for p in real_videos.values()], 1, root)
    out = tmp_path_factory.mktemp("real-shards")
    args = ["kinetics", "--root", str(root), "--out", str(out), "--splits", "train", "--workers", "2", "--no-progress"]
    assert shard_main(args) == 0
    return out / "train"


@pytest.fixture(scope="session")
def slurm() -> None:
    """A running one-node SLURM (started here when there is none), or the test is skipped with why."""
    import shutil as _shutil

    from tests.support.slurm_cluster import ensure_cluster

    reason = ensure_cluster()
    if reason is not None or _shutil.which("sbatch") is None:
        pytest.skip(f"no SLURM: {reason or 'sbatch not on PATH'}")


@pytest.fixture(scope="session")
def tiny_checkpoint(synthetic_splits, tmp_path_factory) -> Path:
    """A tiny RSPNet (4-channel R3D-10) after two training steps on the synthetic train split."""
    from tests.support.configs import trained

    return trained("tiny_rspnet", synthetic_splits / "train", tmp_path_factory.mktemp("tiny-rspnet"), 2)


@pytest.fixture(scope="session")
def tiny_speednet_checkpoint(synthetic_splits, tmp_path_factory) -> Path:
    """A tiny SpeedNet (8-channel R3D-10) after two training steps: weights, not skill."""
    from tests.support.configs import trained

    return trained("tiny_speednet", synthetic_splits / "train", tmp_path_factory.mktemp("tiny-speednet"), 2)


@pytest.fixture(scope="session")
def slow_motion_video(tmp_path_factory) -> dict:
    """8 s of a synthetic camera pan at 25 fps: 4 s at normal speed, then 4 s at 0.4x (slow motion)."""
    from pipeline.synthetic.slowmo import make_slow_motion_video

    return make_slow_motion_video(tmp_path_factory.mktemp("slowmo") / "slowmo.mp4")
