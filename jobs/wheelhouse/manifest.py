"""``manifest.json``: what a wheelhouse holds and what it was resolved for.

    {"format": 1, "created": "2026-12-02T10:00:00Z",
     "python": "3.12", "platform": "manylinux_2_28_x86_64", "extra": "gpu", "part_size": 62914560,
     "image_has": ["torch"], "left_out": ["torch==2.10.0", "triton==3.6.0", ...],
     "build_requires": ["setuptools>=69"],
     "wheels": [{"name": "faiss_gpu-1.15.1-....whl", "size": ..., "sha256": "...",
                 "parts": [{"name": "faiss_gpu-1.15.1-....whl", "size": ..., "sha256": "..."}]}, ...]}

A wheel no bigger than ``part_size`` is one part under its own name; a bigger one is parts named
``<wheel>.part-001-of-007`` ..., each at most ``part_size`` bytes, that join in order.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

FORMAT = 1
NAME = "manifest.json"


class WheelhouseError(Exception):
    """A wheelhouse, a project or a pip run that the command cannot go on with; the message is one line."""


@dataclass(frozen=True)
class Part:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Wheel:
    name: str
    size: int
    sha256: str
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Manifest:
    created: str  # ISO 8601, UTC
    python: str
    platform: str
    extra: str
    part_size: int
    image_has: tuple[str, ...]  # what the build was told the cluster image has
    left_out: tuple[str, ...]  # name==version of every resolved package left to the image
    build_requires: tuple[str, ...]  # the project's [build-system] requires, shipped for an isolated build
    wheels: tuple[Wheel, ...]

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """The manifest, or ValueError naming what is wrong with the text."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"not a format {FORMAT} wheelhouse manifest")
        try:
            wheels = tuple(
                Wheel(w["name"], w["size"], w["sha256"], tuple(Part(**p) for p in w["parts"])) for w in data["wheels"]
            )
            fields = {k: data[k] for k in ("created", "python", "platform", "extra", "part_size")}
            lists = {k: tuple(data[k]) for k in ("image_has", "left_out", "build_requires")}
        except (KeyError, TypeError) as e:
            raise ValueError(f"a manifest entry lacks or mistypes {e}") from None
        return cls(**fields, **lists, wheels=wheels)


def read(folder: Path) -> Manifest:
    """The manifest of the wheelhouse ``folder``; WheelhouseError if it is missing or unreadable."""
    path = folder / NAME
    try:
        return Manifest.from_json(path.read_text())
    except FileNotFoundError:
        raise WheelhouseError(f"{path} is missing: is {folder} a wheelhouse?") from None
    except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        raise WheelhouseError(f"{path} is unreadable: {e}") from None
