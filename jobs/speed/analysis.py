"""What SpeedNet sees in one video: P(normal) per frame of the video played at each rate X^i
(SpeedNet sections 4.1, 5.2), shared by the speediness and speedup commands; and the options every
SpeedNet application takes.

The video is normalised (constant 25 fps, its own size) into a one-sample shard; a trained SpeedNet
scores sliding windows of each sped-up version (centre crop ``size``); ``speed_curves`` turns the
window scores into per-frame curves. A rate whose T-frame window does not fit in the video counts as
"sped up" (not normal) everywhere: the video is too short to show at that rate.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jobs.argtypes import positive_int
from jobs.speed import speed_curves
from models.trained import load_trained
from pipeline.loose_videos import shard_video
from pipeline.normalise import EncodeSettings
from pipeline.shards import ShardIndex
from pipeline.windows import video_windows

# Every frame kept (short side uncapped) so the speedup can be rendered at the input's size; MJPEG
# encodes fast and both DALI back ends decode it.
ANALYSIS_ENCODE = EncodeSettings(short_side=0, codec="mjpeg", min_frames=1)

log = logging.getLogger(__name__)


@dataclass
class Analysis:
    """Everything the speediness and speedup commands report about one video."""

    tars: list[Path]  # the normalised video, one sample
    fps: float
    frames: int
    factors: np.ndarray  # (k+1,) X^i
    curves: np.ndarray  # (k+1, frames) P(normal) of the video at X^i, per input frame


def load_speednet(path: Path, device: str):
    """The SpeedNet network (clips -> "sped up" logits) of checkpoint ``path``, in eval mode."""
    trained = load_trained(path)
    if trained.method != "speednet":
        raise ValueError(f"{path} is a {trained.method} model: speediness needs a SpeedNet checkpoint")
    return trained.pretext.net.to(device).eval()


def normalised_video(video: Path, work: Path) -> list[Path]:
    """``video`` as a one-sample shard under ``work``, every frame at its own size (``ANALYSIS_ENCODE``)."""
    return shard_video(video, work, ANALYSIS_ENCODE)


@torch.no_grad()
def analyse(
    speednet,
    video: Path,
    work: Path,
    *,
    T: int = 16,
    stride: int = 4,
    size: int = 224,
    device: str = "cpu",
    max_clips: int = 32,
    progress: bool = False,
) -> Analysis:
    """P(normal) per input frame of ``video`` played at each rate X^i."""
    tars = normalised_video(video, work)
    meta = ShardIndex(tars).read_meta(0)
    factors = speed_curves.rates()
    curves = np.zeros((len(factors), meta.frames))
    for i, rate in enumerate(factors):
        if (T - 1) * rate + 1 > meta.frames:
            continue  # too short to show at this rate: stays "sped up"
        p_normal, middles = [], []
        for batch in video_windows(tars, T=T, stride=stride, rate=float(rate), size=size, device=device):
            logits = torch.cat([speednet(part.to(device)) for part in torch.split(batch.video, max_clips)])
            p_normal.append(torch.sigmoid(-logits.float()).cpu().numpy())
            indices = batch.indices.numpy()
            middles.append((indices[:, 0] + indices[:, -1]) / 2)
        curves[i] = speed_curves.frame_curve(np.concatenate(middles), np.concatenate(p_normal), meta.frames)
        if progress:
            log.info("rate %.2f: mean P(normal) %.2f", rate, curves[i].mean())
    return Analysis(tars, meta.fps, meta.frames, factors, curves)


def add_model_arguments(
    p: argparse.ArgumentParser, *, stride: bool = True, checkpoint_help: str = "a SpeedNet checkpoint (jobs.pretrain)"
) -> None:
    """The video and model options the speediness, speedup and CAM commands share."""
    p.add_argument("video", type=Path, help="the video file (any length, any format FFmpeg reads)")
    p.add_argument("--checkpoint", type=Path, required=True, help=checkpoint_help)
    p.add_argument("--size", type=positive_int, default=224, help="centre crop side the network sees (default 224)")
    p.add_argument("--frames", type=positive_int, default=16, help="frames per window (default 16)")
    if stride:
        p.add_argument("--stride", type=positive_int, default=4, help="frames between window starts (default 4)")
