"""Which packages of a resolution go into the wheelhouse, and which the cluster image provides (pure).

The rule: a resolved package is left out when the image's packages (``--image-has``, torch by
default) need it and nothing else does. Two walks along ``Requires-Dist`` from what was asked for
(the project with its extra, and its build requirements): one through everything, one that never
enters an image package. What the first reaches and the second does not is left to the image: torch,
triton and the CUDA wheels only torch requires. A wheel another package also needs ships, even if
torch requires it too: faiss-gpu's CUDA 12 runtime must ship beside a CUDA 13 torch that lacks it.

A requirement gated by an extra (``sympy; extra == "symfont"``) is followed only where that extra
was asked for (``fonttools[symfont]``); every other marker is taken as true, since pip already
applied them when it chose the resolved set. Where that guess errs it errs towards shipping: a
package neither walk reaches ships.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?")
_EXTRA = re.compile(r"""\bextra\s*==\s*['"]([^'"]+)['"]|['"]([^'"]+)['"]\s*==\s*extra\b""")


def canonical(name: str) -> str:
    """PEP 503's normalised name: ``Jinja2``, ``typing_extensions`` -> ``jinja2``, ``typing-extensions``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Requirement:
    """One ``Requires-Dist`` of a package, as far as the walk needs it."""

    name: str  # canonical
    extras: frozenset[str] = frozenset()  # asked of the required package: ``nvimgcodec[all]``
    only_with: frozenset[str] = frozenset()  # the requiring package's extras that gate it; empty: always

    @classmethod
    def parse(cls, text: str) -> Requirement:
        """A PEP 508 requirement string; ValueError if it does not start with a name."""
        m = _NAME.match(text)
        if not m:
            raise ValueError(f"not a requirement: {text!r}")
        marker = text.partition(";")[2]
        return cls(
            canonical(m[1]),
            frozenset(canonical(e.strip()) for e in (m[2] or "").split(",") if e.strip()),
            frozenset(canonical(a or b) for a, b in _EXTRA.findall(marker)),
        )


def requirement_name(requirement: str) -> str:
    """The canonical name a PEP 508 requirement string starts with."""
    return Requirement.parse(requirement).name


@dataclass(frozen=True)
class Resolved:
    """One package of a pip installation report (``pip install --dry-run --report``)."""

    name: str  # canonical
    version: str
    requires: tuple[Requirement, ...]
    requested: bool  # asked for on the command line, not pulled in as a dependency
    requested_extras: frozenset[str]  # the extras it was asked for with, on the command line
    url: str
    sha256: str | None  # of the wheel at url, where the index gave one
    is_direct: bool  # a URL or path requirement, not found by name on an index
    is_local_dir: bool  # a source tree (the project itself), not a file to download

    @property
    def pin(self) -> str:
        """What ``pip download`` must be given to fetch exactly this package."""
        return self.url if self.is_direct else f"{self.name}=={self.version}"


def resolved_packages(report: dict) -> dict[str, Resolved]:
    """The packages of a version-1 installation report, by canonical name; ValueError if it is not one."""
    if str(report.get("version")) != "1" or not isinstance(report.get("install"), list):
        raise ValueError(f"not a version 1 pip installation report (version {report.get('version')!r})")
    found = {}
    for item in report["install"]:
        meta, info = item["metadata"], item["download_info"]
        name = canonical(meta["name"])
        found[name] = Resolved(
            name=name,
            version=meta["version"],
            requires=tuple(Requirement.parse(r) for r in meta.get("requires_dist") or ()),
            requested=bool(item.get("requested")),
            requested_extras=frozenset(canonical(e) for e in item.get("requested_extras") or ()),
            url=info["url"],
            sha256=info.get("archive_info", {}).get("hashes", {}).get("sha256"),
            is_direct=bool(item.get("is_direct")),
            is_local_dir="dir_info" in info,
        )
    return found


def shipped(packages: dict[str, Resolved], image_has: set[str]) -> set[str]:
    """The names that ship (canonical names; the module docstring states the rule)."""
    return set(packages) - (_reach(packages, avoid=set()) - _reach(packages, avoid=image_has))


def _reach(packages: dict[str, Resolved], avoid: set[str]) -> set[str]:
    """The packages reached from the requested ones without entering ``avoid``. The walk is over
    (package, extra) pairs, extra None standing for the package's requirements that no extra gates."""
    todo = [
        (p.name, e)
        for p in packages.values()
        if p.name not in avoid and p.requested
        for e in (None, *p.requested_extras)
    ]
    seen = set()
    while todo:
        name, extra = state = todo.pop()
        if state in seen:
            continue
        seen.add(state)
        for r in packages[name].requires:
            if (
                r.name in packages
                and r.name not in avoid
                and (extra in r.only_with or (extra is None and not r.only_with))
            ):
                todo += [(r.name, None)] + [(r.name, e) for e in r.extras]
    return {name for name, _ in seen}
