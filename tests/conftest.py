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


def shard_keys(shards: Path) -> set[str]:
    """Every sample key in ``shards``, from the tar member names (independent of ``ShardIndex``)."""
    import tarfile

    keys = set()
    for tar in sorted(Path(shards).glob("*.tar")):
        with tarfile.open(tar) as f:
            keys.update(name.split(".", 1)[0] for name in f.getnames())  # keys hold no dots
    return keys


def rank_records(run_dir: Path, world: int) -> list[list[dict]]:
    """The per-process debug record of a run (``PRETRAIN_RANK_RECORD=1``, see ``jobs.pretrain``)."""
    import json

    return [[json.loads(line) for line in (Path(run_dir) / "ranks" / f"rank-{r}.jsonl").read_text().splitlines()]
            for r in range(world)]


def batch_samples(entry: dict) -> list[str]:
    """The sample keys of one recorded batch, one per sample (a sample's clips share its key)."""
    return list({s: k for s, k in zip(entry["sample"], entry["keys"])}.values())


def assert_ranks_split_each_epoch(records: list[list[dict]], all_keys: set[str], batch_size: int) -> None:
    """In every epoch, each rank reads whole batches of samples no other rank reads, none twice, and
    together they read every sample (the run must end on an epoch boundary, with world * batch_size
    dividing the set)."""
    read: dict[int, list[list[str]]] = {}
    for rank, record in enumerate(records):
        for entry in (e for e in record if "keys" in e):
            samples = batch_samples(entry)
            assert len(samples) == batch_size, (rank, entry["step"], samples)
            read.setdefault(entry["epoch"], [[] for _ in records])[rank] += samples
    assert read, "no batch recorded"
    for epoch, per_rank in read.items():
        for rank, samples in enumerate(per_rank):
            assert len(samples) == len(set(samples)) == len(all_keys) // len(records), (epoch, rank, samples)
        for a in range(len(per_rank)):
            for b in range(a + 1, len(per_rank)):
                assert not set(per_rank[a]) & set(per_rank[b]), (epoch, a, b)
        assert set().union(*map(set, per_rank)) == all_keys, epoch


def assert_ranks_hold_the_same_weights(records: list[list[dict]], steps: int) -> None:
    """Same initial weights on every rank; after every optimiser step the same weights again (the
    gradients were averaged), and not the weights of before (the step changed them)."""
    per_rank = [[e["weights"] for e in record if "start" in e or "after_step" in e] for record in records]
    assert all(len(w) == steps + 1 for w in per_rank), [len(w) for w in per_rank]
    assert all(w == per_rank[0] for w in per_rank[1:]), "the ranks' weights differ"
    assert len(set(per_rank[0])) == steps + 1, "a step left the weights as they were"
