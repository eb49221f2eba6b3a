"""A synthetic video whose second half is slow motion: the known answer for the speediness and
speedup commands (``python -m pipeline.synthetic --slow-motion out.mp4``).

Frame k shows physical time t_k = sum of the playback speeds of the frames before it, divided by
fps: speed 1 for the first ``normal_s`` seconds, then ``slow`` (0.4 = 2.5x slow motion) for the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .encode import write_mp4
from .render import render_frame
from .scene import CLASSES, sample_scene


def speed_profile(frames: int, normal_frames: int, slow: float) -> np.ndarray:
    """Playback speed of every frame: 1 for the first ``normal_frames``, ``slow`` after."""
    return np.where(np.arange(frames) < normal_frames, 1.0, float(slow))


def physical_times(speeds: np.ndarray, fps: int) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(speeds)[:-1]]) / fps


def make_slow_motion_video(
    path: Path,
    label: str = "camera pan",
    normal_s: float = 4.0,
    slow_s: float = 4.0,
    slow: float = 0.4,
    width: int = 160,
    height: int = 120,
    fps: int = 25,
    seed: int = 0,
) -> dict:
    """Write the video to ``path`` (H.264); returns where its slow motion starts and ends, in frames."""
    if label not in CLASSES:
        raise ValueError(f"unknown class {label!r}; choose from {', '.join(CLASSES)}")
    if not 0 < slow < 1:
        raise ValueError(f"slow must be between 0 and 1 (a slow-down), got {slow}")
    scene = sample_scene(label, np.random.default_rng(seed), width, height, "seen")
    normal, total = round(normal_s * fps), round((normal_s + slow_s) * fps)
    times = physical_times(speed_profile(total, normal, slow), fps)
    frames = np.stack([render_frame(scene, float(t)) for t in times])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_mp4(Path(path), frames, fps)
    return {
        "path": str(path),
        "label": label,
        "fps": fps,
        "frames": total,
        "slow_start": normal,
        "slow_end": total,
        "slow": slow,
    }
