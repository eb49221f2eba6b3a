"""Shared test fixtures: the real videos beside the checkout, and an independent FFmpeg decoder."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

REAL = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "real"


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


def ffmpeg_frames(ffmpeg: str, path: Path, vf: str | None = None) -> np.ndarray:
    """Decode ``path`` to RGB frames (N, H, W, 3) with the independent FFmpeg, optionally filtered."""
    probe = subprocess.run([ffmpeg, "-nostdin", "-i", f"file:{path}", "-map", "0:v:0",
                            *(["-vf", vf] if vf else []), "-f", "null", "-"], capture_output=True, text=True)
    size = re.findall(r"Stream #0:0.*?Video: .*?, (\d+)x(\d+)", probe.stderr)[-1]
    w, h = int(size[0]), int(size[1])
    raw = subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-i", f"file:{path}", "-map", "0:v:0",
                          *(["-vf", vf] if vf else []), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def ffmpeg_pts(ffmpeg: str, path: Path) -> list[float]:
    """Presentation times (seconds) of every frame, as the independent FFmpeg's showinfo reports them."""
    out = subprocess.run([ffmpeg, "-nostdin", "-i", f"file:{path}", "-map", "0:v:0", "-vf", "showinfo",
                          "-f", "null", "-"], capture_output=True, text=True).stderr
    return [float(t) for t in re.findall(r"pts_time:\s*([-\d.e]+)", out)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="session")
def synthetic_kinetics(tmp_path_factory) -> Path:
    """Synthetic Kinetics on disk (CSVs and video files): train 4 videos per class, test 2 per class
    of objects never seen in train."""
    from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset

    root = tmp_path_factory.mktemp("synthetic-kinetics")
    make_kinetics_dataset(root, SyntheticConfig(videos_per_class={"train": 4, "val": 0, "test": 2},
                                                appearance="mixed", duration_s=2.6))
    return root


@pytest.fixture(scope="session")
def synthetic_splits(synthetic_kinetics, tmp_path_factory) -> Path:
    """``synthetic_kinetics`` sharded at short side 64: the data of the training, evaluation and
    retrieval tests."""
    from jobs.shard.__main__ import main as shard_main

    root = synthetic_kinetics
    out = tmp_path_factory.mktemp("synthetic-shards")
    assert shard_main(["kinetics", "--root", str(root), "--out", str(out), "--splits", "train,test",
                       "--short-side", "64", "--videos-per-shard", "8", "--workers", "2", "--no-progress"]) == 0
    return out


@pytest.fixture(scope="session")
def slurm() -> None:
    """A running one-node SLURM (started here when there is none), or the test is skipped with why."""
    import shutil as _shutil

    from slurm_cluster import ensure_cluster

    reason = ensure_cluster()
    if reason is not None or _shutil.which("sbatch") is None:
        pytest.skip(f"no SLURM: {reason or 'sbatch not on PATH'}")


def _trained(config: str, shards: Path, run: Path, steps: int) -> Path:
    from jobs import checkpoint
    from jobs.config import load
    from jobs.pretrain import train
    from tiny_configs import tiny

    train(load(config, tiny(config, shards, **{"optim.max_steps": steps})), run, progress=False)
    return checkpoint.path_for(run, steps)


@pytest.fixture(scope="session")
def tiny_checkpoint(synthetic_splits, tmp_path_factory) -> Path:
    """A tiny RSPNet (4-channel R3D-10) after two training steps on the synthetic train split."""
    return _trained("tiny_rspnet", synthetic_splits / "train", tmp_path_factory.mktemp("tiny-rspnet"), 2)


@pytest.fixture(scope="session")
def tiny_speednet_checkpoint(synthetic_splits, tmp_path_factory) -> Path:
    """A tiny SpeedNet (8-channel R3D-10) after two training steps: weights, not skill."""
    return _trained("tiny_speednet", synthetic_splits / "train", tmp_path_factory.mktemp("tiny-speednet"), 2)


@pytest.fixture(scope="session")
def slow_motion_video(tmp_path_factory) -> dict:
    """8 s of a synthetic camera pan at 25 fps: 4 s at normal speed, then 4 s at 0.4x (slow motion)."""
    from pipeline.synthetic.slowmo import make_slow_motion_video

    return make_slow_motion_video(tmp_path_factory.mktemp("slowmo") / "slowmo.mp4")
