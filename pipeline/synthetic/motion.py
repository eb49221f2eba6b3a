"""Motion models: where each object is at physical time t, as pure functions of t.

Each model is a frozen dataclass of parameters, drawn by ``sample_<model>(rng, aspect)`` from a
seeded numpy Generator, and a state function ``<model>_state(p, t)`` of physical time ``t`` in
seconds (``t >= 0``; a float or an array). Purity is what makes playback speed exact: a video at
speed s shows ``t = s * k / fps`` at frame k, so frame k at speed 2 *is* frame 2k at speed 1.
No model keeps state between calls, and none integrates step by step.

Units are scene units with y pointing up: the frame is 1 unit tall and ``aspect`` (width / height)
units wide, and the floor is the line ``y = FLOOR``. The frame spans ``METRES_PER_UNIT`` metres,
so gravity is 9.81 m/s^2 in those units and falls, swings and gaits take realistic time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FLOOR = 0.15
METRES_PER_UNIT = 2.0
G = 9.81 / METRES_PER_UNIT  # units / s^2
# Bounces lower than this (units; a thousandth of a pixel at 1000 px) end in rest: without a
# cut-off the bounce sequence is infinite (Zeno).
REST_HEIGHT = 1e-6
# Every class has a natural rate, as real objects do (the premise of SpeedNet): the free speeds
# drawn below (rolling, panning, walking, horizontal drift) vary within a factor of about 1.3 per
# class, so a clip played at 2x moves faster than any clip of its class at 1x. With wider ranges a
# slow object at 2x is a fast one at 1x, and playback speed cannot be told from constant motion.
# The speeds are brisk (about 1 to 1.4 m/s): at the tiny configs' 64 px a 1x clip moves about
# 1.5 px per frame, enough for a small network to see the difference at 2x.
NATURAL_VX = (0.3, 0.4)


def _reflect(x, lo: float, hi: float):
    """Position between two elastic walls at lo and hi, for unbounded free motion x (triangle wave).

    Objects turn back at the walls instead of leaving the view, so every frame shows motion.
    """
    span = hi - lo
    return lo + span - np.abs(np.mod(x - lo, 2.0 * span) - span)


def _heading(x, lo: float, hi: float):
    """+1 where ``_reflect(x)`` moves with x, -1 where it moves against it (after an odd number of walls)."""
    return np.where(np.mod(x - lo, 2.0 * (hi - lo)) < hi - lo, 1.0, -1.0)


@dataclass(frozen=True)
class Body:
    """A rigid body's pose: centre (x, y) in scene units, angle in radians counter-clockwise."""

    x: np.ndarray | float
    y: np.ndarray | float
    angle: np.ndarray | float


# --- falling and bouncing ------------------------------------------------------------------


@dataclass(frozen=True)
class Drop:
    """A body released from rest ``h0`` above its resting height, bouncing with restitution ``e``.

    Each contact multiplies the vertical speed by ``restitution``, so bounce peaks are
    ``h0 * e^(2n)``: they never increase.
    """

    h0: float
    restitution: float


def contact_times(d: Drop) -> np.ndarray:
    """Times of the floor contacts, exact: the first fall, then one per bounce until rest."""
    v0 = math.sqrt(2.0 * G * d.h0)
    e = d.restitution
    bounces = 0
    if 0.0 < e < 1.0 and d.h0 > REST_HEIGHT:
        bounces = int(math.log(REST_HEIGHT / d.h0) / (2.0 * math.log(e)))
    flights = 2.0 * v0 * e ** np.arange(1, bounces + 1) / G
    return math.sqrt(2.0 * d.h0 / G) + np.concatenate([[0.0], np.cumsum(flights)])


def drop_height(d: Drop, t):
    """Height above the resting height at time t: a parabola per flight, never below zero."""
    t = np.maximum(np.asarray(t, dtype=np.float64), 0.0)
    contacts = contact_times(d)
    i = np.searchsorted(contacts, t, side="right") - 1  # -1 while still in the first fall
    flight = np.clip(i, 0, len(contacts) - 1)
    tau = t - contacts[flight]
    launch = math.sqrt(2.0 * G * d.h0) * d.restitution ** (flight + 1.0)
    height = np.where(
        i < 0,
        d.h0 - 0.5 * G * t * t,
        np.where(i < len(contacts) - 1, launch * tau - 0.5 * G * tau * tau, 0.0),
    )
    return np.maximum(height, 0.0)


@dataclass(frozen=True)
class BouncingBall:
    """A ball dropped with a horizontal velocity between elastic side walls; it spins as it flies."""

    radius: float
    drop: Drop  # h0 is the height of the ball's bottom above the floor
    x0: float
    vx: float
    x_min: float  # walls, as limits of the centre
    x_max: float
    spin: float  # rad/s


def bouncing_ball_state(p: BouncingBall, t) -> Body:
    return Body(
        x=_reflect(p.x0 + p.vx * np.asarray(t, dtype=np.float64), p.x_min, p.x_max),
        y=FLOOR + p.radius + drop_height(p.drop, t),
        angle=p.spin * np.asarray(t, dtype=np.float64),
    )


def sample_bouncing_ball(rng: np.random.Generator, aspect: float) -> BouncingBall:
    radius = rng.uniform(0.06, 0.1)
    top = 1.0 - FLOOR - 2.0 * radius - 0.04
    vx = rng.uniform(*NATURAL_VX) * rng.choice((-1.0, 1.0))
    return BouncingBall(
        radius=radius,
        drop=Drop(h0=rng.uniform(0.6, 1.0) * top, restitution=rng.uniform(0.7, 0.9)),
        x0=rng.uniform(radius, aspect - radius),
        vx=vx,
        x_min=radius,
        x_max=aspect - radius,
        spin=-vx / radius,
    )


@dataclass(frozen=True)
class TumblingBox:
    """A square box dropped with a tilt that spins in the air and always lands flat on a face.

    Each flight turns it by whole quarter turns (``turns_fall`` in the first fall, then
    ``turns_bounce`` shrinking with the bounce energy), so at every contact it is face-down.
    Between contacts its centre is held high enough that no corner goes through the floor: the
    box pivots on a corner rather than penetrating.
    """

    half: float  # half the side
    drop: Drop  # h0 is the height of the centre above its flat resting height
    x0: float
    vx: float
    x_min: float
    x_max: float
    tilt: float  # angle at release, rad
    turns_fall: int
    turns_bounce: int
    spin_dir: float  # +1 counter-clockwise, -1 clockwise


def box_angle(p: TumblingBox, t):
    """Angle at time t: linear in each flight, between face-down angles at the contacts."""
    contacts = contact_times(p.drop)
    e2 = p.drop.restitution ** (2.0 * np.arange(len(contacts) - 1))
    quarters = np.concatenate([[p.turns_fall], np.round(p.turns_bounce * e2)])
    knots = np.concatenate([[0.0], contacts])
    angles = np.concatenate([[p.tilt], p.spin_dir * np.cumsum(quarters) * (math.pi / 2.0)])
    return np.interp(t, knots, angles)


def box_state(p: TumblingBox, t) -> Body:
    angle = box_angle(p, t)
    support = p.half * (np.abs(np.cos(angle)) + np.abs(np.sin(angle)))  # lowest corner's depth
    return Body(
        x=_reflect(p.x0 + p.vx * np.asarray(t, dtype=np.float64), p.x_min, p.x_max),
        y=FLOOR + np.maximum(p.half + drop_height(p.drop, t), support),
        angle=angle,
    )


def sample_tumbling_box(rng: np.random.Generator, aspect: float) -> TumblingBox:
    half = rng.uniform(0.06, 0.09)
    reach = half * math.sqrt(2.0)
    top = 1.0 - FLOOR - 2.0 * reach - 0.04
    return TumblingBox(
        half=half,
        drop=Drop(h0=rng.uniform(0.6, 1.0) * top, restitution=rng.uniform(0.55, 0.8)),
        x0=rng.uniform(reach, aspect - reach),
        vx=rng.uniform(*NATURAL_VX) * rng.choice((-1.0, 1.0)),
        x_min=reach,
        x_max=aspect - reach,
        tilt=rng.uniform(-0.6, 0.6),
        turns_fall=int(rng.integers(1, 3)),
        turns_bounce=int(rng.integers(1, 3)),
        spin_dir=float(rng.choice((-1.0, 1.0))),
    )


# --- pendulum ------------------------------------------------------------------------------


def _agm_sn(u, m: float):
    """Jacobi elliptic sn(u | m) and the complete integral K(m), by the AGM (Abramowitz & Stegun 16.4).

    Exact to rounding for 0 <= m < 1 in a fixed number of steps, so it is a pure, vectorised
    function of u: no ODE integration whose result would depend on the step or the start.
    """
    a, b = 1.0, math.sqrt(1.0 - m)
    ratios = []
    for _ in range(10):  # quadratic convergence: c_n < 1e-300 long before 10 steps for m < 1
        a, b, c = 0.5 * (a + b), math.sqrt(a * b), 0.5 * (a - b)
        ratios.append(c / a)
    phi = (2.0 ** len(ratios)) * a * np.asarray(u, dtype=np.float64)
    for ratio in reversed(ratios):
        phi = 0.5 * (phi + np.arcsin(ratio * np.sin(phi)))
    return np.sin(phi), math.pi / (2.0 * a)


@dataclass(frozen=True)
class Pendulum:
    """A rigid pendulum without friction, at any amplitude below pi (exact, not small-angle)."""

    pivot_x: float
    pivot_y: float
    length: float
    amplitude: float  # rad, the largest angle from the vertical
    phase: float  # seconds: the swing at t is the swing from rest at amplitude at t + phase
    bob: float  # radius of the bob


def pendulum_period(p: Pendulum) -> float:
    """4 K(k^2) / omega0 with k = sin(amplitude / 2): longer than 2 pi / omega0 at large swings."""
    _, quarter = _agm_sn(0.0, math.sin(p.amplitude / 2.0) ** 2)
    return 4.0 * quarter / math.sqrt(G / p.length)


def pendulum_angle(p: Pendulum, t):
    """Angle from the vertical: sin(theta/2) = k sn(K - omega0 (t + phase) | k^2), exact."""
    k = math.sin(p.amplitude / 2.0)
    omega0 = math.sqrt(G / p.length)
    _, quarter = _agm_sn(0.0, k * k)
    sn, _ = _agm_sn(quarter - omega0 * (np.asarray(t, dtype=np.float64) + p.phase), k * k)
    return 2.0 * np.arcsin(np.clip(k * sn, -k, k))


def pendulum_state(p: Pendulum, t) -> Body:
    """The bob's pose: it hangs rigidly from the rod, so it turns with the pendulum angle."""
    theta = pendulum_angle(p, t)
    return Body(
        x=p.pivot_x + p.length * np.sin(theta),
        y=p.pivot_y - p.length * np.cos(theta),
        angle=theta,
    )


def sample_pendulum(rng: np.random.Generator, aspect: float) -> Pendulum:
    bob = rng.uniform(0.05, 0.075)
    length = rng.uniform(0.35, 0.6)
    room = aspect / 2.0 - bob - 0.02  # how far the bob may swing sideways and stay in frame
    widest = math.asin(min(1.0, room / length))
    amplitude = rng.uniform(0.5, 1.0) * min(1.2, widest)
    slack = max(0.0, room - length * math.sin(amplitude))
    return Pendulum(
        pivot_x=aspect / 2.0 + rng.uniform(-slack, slack),
        pivot_y=0.95,
        length=length,
        amplitude=amplitude,
        phase=rng.uniform(0.0, 3.0),
        bob=bob,
    )


# --- walking figure ------------------------------------------------------------------------


@dataclass(frozen=True)
class Walker:
    """A figure pacing at constant speed as an inverted pendulum over straight legs.

    It walks to the edge of the view, turns round on the spot and walks back. The leg swing
    amplitude follows from speed, gait frequency and leg length (two steps of ``2 L sin(swing)``
    per gait cycle), so the feet barely slide. The hip rides at ``L cos(leg angle)`` above the
    floor: highest when the legs pass the vertical, which bobs the torso at twice the gait
    frequency.
    """

    x0: float
    speed: float  # units / s, > 0
    direction: float  # +1 walks right, -1 left
    gait_hz: float  # gait cycles (two steps) per second
    leg: float  # leg length, units
    phase: float  # rad
    x_min: float  # where the hip turns round
    x_max: float

    @property
    def swing(self) -> float:
        return math.asin(self.speed / (4.0 * self.gait_hz * self.leg))


@dataclass(frozen=True)
class WalkState:
    distance: np.ndarray | float  # walked so far along its path; never decreases
    x: np.ndarray | float  # hip
    facing: np.ndarray | float  # +1 right, -1 left
    hip_y: np.ndarray | float
    leg: np.ndarray | float  # angle of the near leg from the vertical, positive = forward
    arm: np.ndarray | float  # angle of the near arm, opposite to the near leg


def walker_state(p: Walker, t) -> WalkState:
    t = np.asarray(t, dtype=np.float64)
    distance = p.speed * t
    leg = p.swing * np.sin(2.0 * math.pi * p.gait_hz * t + p.phase)
    free = p.x0 + p.direction * distance
    return WalkState(
        distance=distance,
        x=_reflect(free, p.x_min, p.x_max),
        facing=p.direction * _heading(free, p.x_min, p.x_max),
        hip_y=FLOOR + p.leg * np.cos(leg),
        leg=leg,
        arm=-0.7 * leg,
    )


def sample_walker(rng: np.random.Generator, aspect: float) -> Walker:
    leg = rng.uniform(0.18, 0.24)
    gait_hz = rng.uniform(0.95, 1.2)
    speed = min(rng.uniform(0.36, 0.46), 0.6 * 4.0 * gait_hz * leg)  # swing below asin(0.6)
    margin = 0.6 * leg  # feet and hands stay in view when it turns
    return Walker(
        x0=rng.uniform(margin, aspect - margin),
        speed=speed,
        direction=float(rng.choice((-1.0, 1.0))),
        gait_hz=gait_hz,
        leg=leg,
        phase=rng.uniform(0.0, 2.0 * math.pi),
        x_min=margin,
        x_max=aspect - margin,
    )


# --- rolling ball --------------------------------------------------------------------------


@dataclass(frozen=True)
class RollingBall:
    """A ball rolling without slipping between elastic walls, slowed by rolling friction.

    Without slip the contact point is at rest, so the ball's angle is fixed by where it is:
    it turns by -(x - x0) / radius, i.e. by the distance rolled over the radius, and turns back
    when a wall sends it back.
    """

    radius: float
    x0: float
    v0: float  # units / s, > 0
    direction: float  # +1 right, -1 left
    deceleration: float  # units / s^2, >= 0; 0 rolls forever
    x_min: float
    x_max: float


@dataclass(frozen=True)
class RollState:
    distance: np.ndarray | float  # rolled so far along its path; never decreases
    x: np.ndarray | float
    y: float
    angle: np.ndarray | float  # counter-clockwise, 0 at x0; rolling right turns clockwise


def rolling_ball_state(p: RollingBall, t) -> RollState:
    t = np.asarray(t, dtype=np.float64)
    stop = p.v0 / p.deceleration if p.deceleration > 0.0 else math.inf
    moving = np.minimum(t, stop)
    distance = p.v0 * moving - 0.5 * p.deceleration * moving * moving
    x = _reflect(p.x0 + p.direction * distance, p.x_min, p.x_max)
    return RollState(distance=distance, x=x, y=FLOOR + p.radius, angle=-(x - p.x0) / p.radius)


def sample_rolling_ball(rng: np.random.Generator, aspect: float) -> RollingBall:
    radius = rng.uniform(0.06, 0.1)
    v0 = rng.uniform(0.56, 0.72)
    # Half the balls roll forever; the others stop after 10 s or more, past most clips.
    deceleration = rng.uniform(0.0, v0 / 10.0) if rng.random() < 0.5 else 0.0
    return RollingBall(
        radius=radius,
        x0=rng.uniform(radius, aspect - radius),
        v0=v0,
        direction=float(rng.choice((-1.0, 1.0))),
        deceleration=deceleration,
        x_min=radius,
        x_max=aspect - radius,
    )


# --- camera pan ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraPan:
    """A camera panning over a static world, easing in to a constant speed.

    The offset ``v (t - tau (1 - exp(-t / tau)))`` starts at rest and approaches speed v with
    time constant tau: a pan started by hand. Everything in the world stays put; only the view
    moves.
    """

    speed: float  # units / s, > 0
    direction: float
    ease_s: float  # tau, seconds


def camera_pan_offset(p: CameraPan, t):
    t = np.asarray(t, dtype=np.float64)
    return p.direction * p.speed * (t - p.ease_s * -np.expm1(-t / p.ease_s))


def sample_camera_pan(rng: np.random.Generator, aspect: float) -> CameraPan:
    return CameraPan(
        speed=rng.uniform(0.44, 0.58),
        direction=float(rng.choice((-1.0, 1.0))),
        ease_s=rng.uniform(0.2, 1.0),
    )
