"""How things look: object looks from two disjoint families, and procedural backdrops.

Objects take their colours, texture and (where physics leaves it free) outline from the
"seen" or the "unseen" family. The families share nothing: seen objects are red to yellow with
stripes or sectors and round, unseen ones cyan to violet with checks or spots and square. A model
trained on seen objects and tested on unseen ones has to recognise the motion, not the object.

Backdrops are drawn from one distribution for both families and kept desaturated, so the
saturated objects stand out and the backdrop carries no hint of the family.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

FAMILIES = ("seen", "unseen")
_HUES = {"seen": (-0.06, 0.16), "unseen": (0.45, 0.78)}  # fractions of the colour wheel
_TEXTURES = {"seen": ("stripes", "sectors"), "unseen": ("checker", "spots")}
_SHAPES = {"seen": "round", "unseen": "square"}

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Look:
    """An object's appearance. Textures are two-coloured so that turning and moving show."""

    family: str
    primary: RGB  # linear 0..1
    secondary: RGB
    texture: str  # "stripes" | "sectors" | "checker" | "spots"
    density: int  # repetitions of the texture across the object's half-size
    shape: str  # "round" | "square": outline where physics does not fix it (pendulum bob, props)


def sample_look(rng: np.random.Generator, family: str) -> Look:
    if family not in FAMILIES:
        raise ValueError(f"appearance family must be one of {FAMILIES}, got {family!r}")
    lo, hi = _HUES[family]
    hue = rng.uniform(lo, hi) % 1.0
    saturation = rng.uniform(0.65, 0.95)
    value = rng.uniform(0.75, 1.0)
    textures = _TEXTURES[family]
    return Look(
        family=family,
        primary=colorsys.hsv_to_rgb(hue, saturation, value),
        secondary=colorsys.hsv_to_rgb(hue, saturation, value * rng.uniform(0.25, 0.4)),
        texture=textures[int(rng.integers(len(textures)))],
        density=int(rng.integers(2, 4)),
        shape=_SHAPES[family],
    )


@dataclass(frozen=True)
class Backdrop:
    """A wall of summed plane waves over a floor of boards, both two-coloured.

    ``waves`` holds (cycles per unit along x, along y, phase, amplitude) per wave: a smooth
    random texture that is a function of continuous position, so a panning camera can shift it
    by any sub-pixel amount.
    """

    waves: tuple[tuple[float, float, float, float], ...]
    wall: tuple[RGB, RGB]
    floor: tuple[RGB, RGB]
    board: float  # width of a floor board, units


def _muted_pair(rng: np.random.Generator) -> tuple[RGB, RGB]:
    """A dark and a light desaturated colour: enough contrast that a panned texture visibly moves."""
    dark = colorsys.hsv_to_rgb(rng.uniform(0.0, 1.0), rng.uniform(0.05, 0.3), rng.uniform(0.2, 0.4))
    light = colorsys.hsv_to_rgb(rng.uniform(0.0, 1.0), rng.uniform(0.05, 0.3), rng.uniform(0.55, 0.8))
    return dark, light


def sample_backdrop(rng: np.random.Generator, n_waves: int = 8) -> Backdrop:
    direction = rng.uniform(0.0, 2.0 * np.pi, n_waves)
    frequency = rng.uniform(1.0, 12.0, n_waves)
    waves = zip(
        frequency * np.cos(direction),
        frequency * np.sin(direction),
        rng.uniform(0.0, 2.0 * np.pi, n_waves),
        rng.uniform(0.3, 1.0, n_waves) / np.sqrt(frequency),  # pink-ish: coarse waves dominate
    )
    return Backdrop(
        waves=tuple(tuple(float(v) for v in wave) for wave in waves),
        wall=_muted_pair(rng),
        floor=_muted_pair(rng),
        board=rng.uniform(0.08, 0.2),
    )
