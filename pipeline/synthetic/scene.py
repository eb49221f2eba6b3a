"""A scene: everything needed to render one video, drawn from a seeded Generator.

The classes are the motion models, one label each. Labels are human strings in the style of
Kinetics, chosen so that spaces, an apostrophe and parentheses all travel through the CSVs.
A ``Scene`` is frozen and holds plain numbers only, so rendering it is a pure function of time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import motion
from .appearance import Backdrop, Look, sample_backdrop, sample_look

# label -> motion model name; the order fixes class indices and must not change.
CLASSES: dict[str, str] = {
    "bouncing ball": "bounce",
    "swinging pendulum": "pendulum",
    "walking (figure)": "walk",
    "rolling ball": "roll",
    "camera pan": "pan",
    "dropping 'n' bouncing box": "box",
}

_SAMPLERS = {
    "bounce": motion.sample_bouncing_ball,
    "pendulum": motion.sample_pendulum,
    "walk": motion.sample_walker,
    "roll": motion.sample_rolling_ball,
    "pan": motion.sample_camera_pan,
    "box": motion.sample_tumbling_box,
}


@dataclass(frozen=True)
class Prop:
    """A static object standing on the floor of a panned world: a post or a block."""

    x: float  # world position of its centre, in [0, world width)
    half_w: float
    half_h: float


@dataclass(frozen=True)
class Scene:
    width: int  # pixels
    height: int
    label: str
    kind: str  # motion model name, a value of CLASSES
    motion: object  # that model's parameter dataclass
    look: Look
    backdrop: Backdrop
    props: tuple[Prop, ...] = ()  # only a camera pan has them: it needs something to pan over

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def world_width(self) -> float:
        """Period of the panned world: wider than the view, so props leave before they return."""
        return self.aspect + 0.6


def _sample_props(rng: np.random.Generator, world_width: float) -> tuple[Prop, ...]:
    count = int(rng.integers(3, 6))
    slots = (np.arange(count) + rng.uniform(0.2, 0.8, count)) * (world_width / count)
    return tuple(Prop(x=float(x), half_w=rng.uniform(0.03, 0.08), half_h=rng.uniform(0.05, 0.25)) for x in slots)


def sample_scene(label: str, rng: np.random.Generator, width: int, height: int, family: str) -> Scene:
    """Draw a scene of class ``label`` whose objects look like ``family`` ("seen" or "unseen")."""
    kind = CLASSES[label]
    aspect = width / height
    scene = Scene(
        width=width,
        height=height,
        label=label,
        kind=kind,
        motion=_SAMPLERS[kind](rng, aspect),
        look=sample_look(rng, family),
        backdrop=sample_backdrop(rng),
    )
    if kind == "pan":
        return replace(scene, props=_sample_props(rng, scene.world_width))
    return scene
