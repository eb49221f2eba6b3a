"""Planning and writing a synthetic dataset in the Kinetics layout.

Every video draws from its own random stream, keyed by (seed, split, class, index), so a video
does not change when the counts of other splits or classes do, and the same config always
gives the same CSVs and the same frames. ``synthetic.json`` is written last: its presence means
the dataset is complete.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.atomic import atomic_write_text
from pipeline.progress import progress as progress_bar

from .encode import write_mp4
from .layout import SPLITS, AnnotationRow, write_annotations, youtube_id
from .render import render_video
from .scene import CLASSES, Scene, sample_scene

APPEARANCES = ("seen", "unseen", "mixed")


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. Invalid values raise ``ValueError`` with a one-line reason."""

    videos_per_class: dict[str, int] = field(default_factory=lambda: {"train": 4, "val": 2, "test": 2})
    width: int = 160
    height: int = 120
    fps: int = 25
    duration_s: float = 3.0
    speeds: tuple[float, ...] = (1.0,)  # each video plays at one of these, balanced within a class
    # "seen" | "unseen": every object from that family. "mixed": train is all seen; val and
    # test alternate seen and unseen (along classes and videos), so evaluation can be split
    # by whether the model has seen such objects.
    appearance: str = "seen"
    seed: int = 0

    def __post_init__(self) -> None:
        def is_int(value) -> bool:
            return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

        unknown = set(self.videos_per_class) - set(SPLITS)
        if unknown:
            raise ValueError(f"videos_per_class has unknown splits {sorted(unknown)}; use {SPLITS}")
        if not all(is_int(n) and n >= 0 for n in self.videos_per_class.values()):
            raise ValueError(f"videos_per_class counts must be integers >= 0, got {self.videos_per_class}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not (is_int(value) and value >= 16 and value % 2 == 0):
                raise ValueError(f"{name} must be an even integer >= 16 (H.264 4:2:0), got {value!r}")
        if not (is_int(self.fps) and self.fps >= 1):
            raise ValueError(f"fps must be an integer >= 1, got {self.fps!r}")
        if not (math.isfinite(self.duration_s) and round(self.duration_s * self.fps) >= 1):
            raise ValueError(f"duration_s must give at least one frame at {self.fps} fps, got {self.duration_s!r}")
        speeds = tuple(float(s) for s in self.speeds)
        if not speeds or not all(math.isfinite(s) and s > 0 for s in speeds):
            raise ValueError(f"speeds must be a non-empty list of positive numbers, got {self.speeds!r}")
        object.__setattr__(self, "speeds", speeds)
        if self.appearance not in APPEARANCES:
            raise ValueError(f"appearance must be one of {APPEARANCES}, got {self.appearance!r}")
        if not (is_int(self.seed) and self.seed >= 0):
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    @property
    def n_frames(self) -> int:
        return round(self.duration_s * self.fps)


@dataclass(frozen=True)
class PlannedVideo:
    """One video to write: its annotation row, the scene, and how it is played."""

    clip: AnnotationRow
    scene: Scene
    speed: float
    appearance: str


def _family(config: SyntheticConfig, split: str, class_index: int, index: int) -> str:
    """Object family of one video; under "mixed", val and test alternate along classes and videos."""
    if config.appearance != "mixed":
        return config.appearance
    return "seen" if split == "train" or (class_index + index) % 2 == 0 else "unseen"


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent stream per key, so adding videos elsewhere never shifts this one."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def plan_dataset(config: SyntheticConfig) -> list[PlannedVideo]:
    """Every video of the dataset, in CSV order (split, class, index), without rendering anything."""
    planned, used_ids = [], set()
    clip_seconds = max(1, round(config.duration_s))
    for split_i, split in enumerate(SPLITS):
        count = config.videos_per_class.get(split, 0)
        for class_i, label in enumerate(CLASSES):
            class_rng = _rng(config.seed, split_i, class_i)
            # Each speed equally often (to within one) in a random order; with fewer videos
            # than speeds, a random subset of the speeds.
            speeds = class_rng.permutation(np.resize(class_rng.permutation(config.speeds), count))
            for index in range(count):
                rng = _rng(config.seed, split_i, class_i, index)
                vid = youtube_id(rng, leading_dash=index == 0 and class_i % 3 == 0)
                while vid in used_ids:
                    vid = youtube_id(rng)
                used_ids.add(vid)
                start = int(rng.integers(0, 900))
                clip = AnnotationRow(label, vid, start, start + clip_seconds, split, int(rng.integers(0, 2)))
                family = _family(config, split, class_i, index)
                scene = sample_scene(label, rng, config.width, config.height, family)
                planned.append(PlannedVideo(clip, scene, float(speeds[index]), family))
    return planned


def make_kinetics_dataset(root: Path, config: SyntheticConfig | None = None, progress: bool = False) -> dict:
    """Write the dataset under ``root`` and return the ground truth also saved as synthetic.json.

    ``config=None`` means ``SyntheticConfig()``. Files of the same names are overwritten, other
    files under ``root`` are left alone, and an old synthetic.json is removed first, so that
    one only exists beside a complete dataset.
    """
    if config is None:
        config = SyntheticConfig()
    root = Path(root)
    planned = plan_dataset(config)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "synthetic.json").unlink(missing_ok=True)
    for split in SPLITS:
        (root / split).mkdir(exist_ok=True)

    videos = {}
    for video in progress_bar(planned, desc="synthetic videos", unit="video", enabled=progress):
        frames = render_video(video.scene, video.speed, config.fps, config.n_frames)
        write_mp4(video.clip.path(root), frames, config.fps)
        videos[video.clip.stem] = {
            "split": video.clip.split,
            "label": video.clip.label,
            "motion": video.scene.kind,
            "speed": video.speed,
            "appearance": video.appearance,
            "frames": config.n_frames,
            "width": config.width,
            "height": config.height,
        }
    for split in SPLITS:
        clips = [v.clip for v in planned if v.clip.split == split]
        write_annotations(root / "annotations" / f"{split}.csv", clips)
    truth = {"seed": config.seed, "fps": config.fps, "videos": videos}
    atomic_write_text(root / "synthetic.json", json.dumps(truth, indent=1) + "\n")
    return truth
