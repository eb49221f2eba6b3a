"""Synthetic videos in the Kinetics layout, where the classes differ only in how things move.

Tests and demos need a dataset that is small, deterministic and laid out exactly like a real
Kinetics download, and later stages train a playback-speed classifier on it, so motion has to
be the signal: each class is one physical motion model (bouncing under gravity with
restitution, an exact large-angle pendulum, a walking figure, a ball rolling without slipping, a
camera panning over a static world, a box tumbling and landing flat), rendered over random
procedural backdrops with pure numpy.

Layout written by ``make_kinetics_dataset(root, config)``::

    root/annotations/{train,val,test}.csv   label,youtube_id,time_start,time_end,split,is_cc
    root/{train,val,test}/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4   H.264 yuv420p
    root/synthetic.json   {"seed", "fps", "videos": {stem: {"split", "label", "motion", "speed",
                          "appearance", "frames", "width", "height"}}}

Public API:

``SyntheticConfig``
    Frozen config: ``videos_per_class`` per split, ``width``, ``height``, ``fps``, ``duration_s``,
    ``speeds`` (each video plays at one of them), ``appearance`` ("seen", "unseen" or "mixed":
    train seen, val/test alternating) and ``seed``. Invalid values raise ``ValueError``.
``make_kinetics_dataset(root, config=None, progress=False) -> dict``
    Write the dataset and return the ground truth that is also saved as ``synthetic.json``.
``plan_dataset(config) -> list[PlannedVideo]``
    The clips, scenes and speeds ``make_kinetics_dataset`` would write, without rendering.
``render_video(spec, speed, fps, n_frames) -> ndarray``
    (N, H, W, 3) uint8 frames of a ``Scene`` (e.g. ``PlannedVideo.scene``); frame k shows
    physical time ``speed * k / fps``, so frame k at speed 2 equals frame 2k at speed 1 exactly.
``render_frame(scene, t)``, ``sample_scene(label, rng, width, height, family)``, ``CLASSES``
    One frame at time t; one random scene; the label -> motion model table.

Command line: ``python -m pipeline.synthetic --out DIR [--seed N] [--speeds 1,2] ...``
(see ``--help``). The same seed and config always give the same CSVs and decoded frames.
"""

from .dataset import PlannedVideo, SyntheticConfig, make_kinetics_dataset, plan_dataset
from .render import render_frame, render_video
from .scene import CLASSES, Scene, sample_scene

__all__ = [
    "CLASSES",
    "PlannedVideo",
    "Scene",
    "SyntheticConfig",
    "make_kinetics_dataset",
    "plan_dataset",
    "render_frame",
    "render_video",
    "sample_scene",
]
