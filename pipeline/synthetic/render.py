"""Rendering scenes: a frame is a pure function of the scene and physical time.

``render_frame(scene, t)`` reads each object's state from its motion model at time t and paints
it over the backdrop; nothing carries over from one frame to the next. ``render_video`` shows
physical time ``t = speed * k / fps`` at frame k. Both speeds compute ``t`` with the same float
operations for the same instant (``2.0 * k`` is exactly the integer ``2k``), so frame k at speed 2
is bit-for-bit frame 2k at speed 1.
"""

from __future__ import annotations

import math

import numpy as np

from . import motion
from .raster import Canvas
from .scene import Scene

_ROD = (0.15, 0.15, 0.17)
_PARALLAX = 0.5  # the wall is twice as far as the floor and the props: it pans at half speed


def _backdrop(scene: Scene, pan: float) -> np.ndarray:
    """Wall of summed waves above the floor line, floor boards below, seen from camera offset ``pan``."""
    bd = scene.backdrop
    xs = (np.arange(scene.width) + 0.5) / scene.height
    ys = 1.0 - (np.arange(scene.height) + 0.5) / scene.height
    field = np.zeros((scene.height, scene.width))
    for fx, fy, phase, amplitude in bd.waves:  # sin(a + b) = sin a cos b + cos a sin b: separable
        a = 2.0 * math.pi * fx * (xs + _PARALLAX * pan) + phase
        b = 2.0 * math.pi * fy * ys
        field += amplitude * (np.outer(np.cos(b), np.sin(a)) + np.outer(np.sin(b), np.cos(a)))
    spread = math.sqrt(0.5 * sum(w[3] ** 2 for w in bd.waves))  # standard deviation of the sum
    weight = 0.5 + 0.5 * np.tanh(field / spread)
    wall0, wall1 = (np.asarray(c) for c in bd.wall)
    wall = wall0 + weight[..., None] * (wall1 - wall0)

    boards = (xs + pan) / bd.board
    grain = 0.5 + 0.5 * np.sin(6.0 * math.pi * boards)
    floor_weight = 0.75 * (np.floor(boards) % 2) + 0.25 * grain
    floor0, floor1 = (np.asarray(c) for c in bd.floor)
    floor = floor0 + floor_weight[:, None] * (floor1 - floor0)
    image = np.where((ys < motion.FLOOR)[:, None, None], floor[None], wall)
    return image.astype(np.float32)


def _draw_bounce(canvas: Canvas, scene: Scene, t: float) -> None:
    body = motion.bouncing_ball_state(scene.motion, t)
    canvas.disc(float(body.x), float(body.y), scene.motion.radius, scene.look, float(body.angle))


def _draw_box(canvas: Canvas, scene: Scene, t: float) -> None:
    body = motion.box_state(scene.motion, t)
    half = scene.motion.half
    canvas.rect(float(body.x), float(body.y), half, half, scene.look, float(body.angle))


def _draw_roll(canvas: Canvas, scene: Scene, t: float) -> None:
    state = motion.rolling_ball_state(scene.motion, t)
    canvas.disc(float(state.x), float(state.y), scene.motion.radius, scene.look, float(state.angle))


def _draw_pendulum(canvas: Canvas, scene: Scene, t: float) -> None:
    p = scene.motion
    bob = motion.pendulum_state(p, t)
    x, y, angle = float(bob.x), float(bob.y), float(bob.angle)
    canvas.segment(p.pivot_x, p.pivot_y, x, y, 0.008, _ROD)
    canvas.segment(p.pivot_x - 0.04, p.pivot_y, p.pivot_x + 0.04, p.pivot_y, 0.01, _ROD)
    if scene.look.shape == "round":
        canvas.disc(x, y, p.bob, scene.look, angle)
    else:
        canvas.rect(x, y, p.bob, p.bob, scene.look, angle)


def _draw_walk(canvas: Canvas, scene: Scene, t: float) -> None:
    """A stick figure: far limbs in the dark colour behind a textured torso, near limbs in front."""
    p, look = scene.motion, scene.look
    s = motion.walker_state(p, t)
    x, hip, leg, arm = float(s.x), float(s.hip_y), float(s.leg), float(s.arm)
    size, facing = p.leg, float(s.facing)
    shoulder = hip + 0.9 * size
    limb = 0.09 * size

    def draw_leg(angle: float, colour) -> None:
        foot_x, foot_y = x + facing * size * math.sin(angle), hip - size * math.cos(angle)
        canvas.segment(x, hip, foot_x, foot_y, limb, colour)

    def draw_arm(angle: float, colour) -> None:
        reach = 0.8 * size
        hand_x, hand_y = x + facing * reach * math.sin(angle), shoulder - reach * math.cos(angle)
        canvas.segment(x, shoulder, hand_x, hand_y, 0.8 * limb, colour)

    draw_arm(-arm, look.secondary)
    draw_leg(-leg, look.secondary)
    canvas.rect(x, 0.5 * (hip + shoulder), 0.14 * size, 0.5 * (shoulder - hip) + limb, look, 0.0)
    canvas.disc(x, shoulder + 0.3 * size, 0.2 * size, look, 0.0)
    draw_leg(leg, look.primary)
    draw_arm(arm, look.primary)


def _draw_props(canvas: Canvas, scene: Scene, pan: float) -> None:
    """Static world objects, wrapped around a world wider than the view."""
    margin = 0.5 * (scene.world_width - scene.aspect)
    for prop in scene.props:
        x = (prop.x - pan + margin) % scene.world_width - margin
        if scene.look.shape == "square":
            canvas.rect(x, motion.FLOOR + prop.half_h, prop.half_w, prop.half_h, scene.look, 0.0)
        else:
            top = motion.FLOOR + 2.0 * prop.half_h
            canvas.segment(x, motion.FLOOR, x, top, 0.3 * prop.half_w, scene.look.secondary)
            canvas.disc(x, top, prop.half_w, scene.look, 0.0)


_DRAW = {
    "bounce": _draw_bounce,
    "pendulum": _draw_pendulum,
    "walk": _draw_walk,
    "roll": _draw_roll,
    "box": _draw_box,
}


def render_frame(scene: Scene, t: float) -> np.ndarray:
    """The scene at physical time ``t`` seconds, as an (H, W, 3) uint8 RGB image."""
    if scene.kind == "pan":
        pan = float(motion.camera_pan_offset(scene.motion, t))
        canvas = Canvas(_backdrop(scene, pan))
        _draw_props(canvas, scene, pan)
    else:
        canvas = Canvas(_backdrop(scene, 0.0))
        _DRAW[scene.kind](canvas, scene, t)
    return (np.clip(canvas.image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_video(spec: Scene, speed: float, fps: int, n_frames: int) -> np.ndarray:
    """``n_frames`` frames of ``spec`` at ``speed``: (N, H, W, 3) uint8, frame k at t = speed * k / fps."""
    if not (math.isfinite(speed) and speed > 0):
        raise ValueError(f"speed must be a positive number, got {speed}")
    if fps <= 0 or n_frames < 0:
        raise ValueError(f"need fps > 0 and n_frames >= 0, got fps={fps}, n_frames={n_frames}")
    frames = np.empty((n_frames, spec.height, spec.width, 3), dtype=np.uint8)
    for k in range(n_frames):
        frames[k] = render_frame(spec, speed * k / fps)
    return frames
