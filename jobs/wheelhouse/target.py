"""The machine a wheelhouse is for, from a Python version and one wheel platform tag (pure).

    target = Target.parse("3.12", "manylinux_2_28_x86_64")
    target.platform_tags()       # what to pass pip as repeated --platform, most specific first
    target.marker_environment()  # what PEP 508 markers must see while resolving for it

Two gaps in pip (23.2 and later) that these fill: pip takes ``--platform manylinux_2_28_x86_64``
literally, accepting neither the ``manylinux_2_17``/``manylinux2014`` wheels most projects publish nor
any other older glibc, all of which a glibc 2.28 system runs; and it evaluates environment markers
(``platform_machine == 'x86_64'``, ``python_version >= '3.12'``) for the machine it runs on, not for the
target. Only Linux targets: GPU clusters run Linux, and DALI ships nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The first glibc minor of each architecture's manylinux wheels: x86 had manylinux1 (glibc 2.5),
# the others start at manylinux2014 (glibc 2.17).
_FIRST_GLIBC_MINOR = {"x86_64": 5, "i686": 5}
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}  # PEP 600's aliases
_PLATFORM = re.compile(
    r"(?P<kind>manylinux|musllinux)_(?P<major>\d+)_(?P<minor>\d+)_(?P<arch>[a-z0-9_]+)"
    r"|(?P<legacy>manylinux2014|manylinux2010|manylinux1)_(?P<legacy_arch>[a-z0-9_]+)"
    r"|linux_(?P<plain_arch>[a-z0-9_]+)"
)
_PYTHON = re.compile(r"3\.(\d+)(\.\d+)?")


@dataclass(frozen=True)
class Target:
    """A CPython version (``3.12`` or ``3.12.7``) on a Linux platform tag."""

    python: str
    platform: str

    @classmethod
    def parse(cls, python: str, platform: str) -> Target:
        """The target, or ValueError saying which of the two is not understood."""
        return cls(parse_python(python), parse_platform(platform))

    @property
    def python_version(self) -> str:
        """``3.12``: the ``python_version`` marker, and the interpreter that can install the wheels."""
        return ".".join(self.python.split(".")[:2])

    @property
    def arch(self) -> str:
        m = _PLATFORM.fullmatch(self.platform)
        return m["arch"] or m["legacy_arch"] or m["plain_arch"]

    def platform_tags(self) -> list[str]:
        """Every platform tag whose wheels run on the target, most specific first."""
        m = _PLATFORM.fullmatch(self.platform)
        arch = self.arch
        if m["plain_arch"]:
            return [self.platform]
        if m["legacy"]:
            kind, major, minor = "manylinux", 2, {v: k for k, v in _LEGACY_MANYLINUX.items()}[m["legacy"]]
        else:
            kind, major, minor = m["kind"], int(m["major"]), int(m["minor"])
        if kind == "musllinux":
            return [f"musllinux_{major}_{n}_{arch}" for n in range(minor, 0, -1)]
        if major != 2:  # no glibc 3 exists; take the tag as given
            return [self.platform]
        tags = []
        for glibc in range(minor, min(minor, _FIRST_GLIBC_MINOR.get(arch, 17)) - 1, -1):
            tags.append(f"manylinux_2_{glibc}_{arch}")
            if glibc in _LEGACY_MANYLINUX:
                tags.append(f"{_LEGACY_MANYLINUX[glibc]}_{arch}")
        return tags

    def marker_environment(self) -> dict[str, str]:
        """PEP 508's marker variables as CPython on the target sets them. A bare ``3.12`` stands for
        3.12.0 in ``python_full_version``; give the full version where a marker needs it."""
        full = self.python if self.python.count(".") == 2 else f"{self.python}.0"
        return {
            "implementation_name": "cpython",
            "implementation_version": full,
            "os_name": "posix",
            "platform_machine": self.arch,
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": full,
            "platform_python_implementation": "CPython",
            "python_version": self.python_version,
            "sys_platform": "linux",
        }

    def mismatch(self, python_version: str, sys_platform: str, machine: str) -> str | None:
        """Why an interpreter (``3.11``, ``sys.platform``, ``platform.machine()``) cannot install this
        target's wheels, or None when it can."""
        if python_version != self.python_version:
            return f"the wheelhouse is for Python {self.python_version}, this is Python {python_version}"
        if sys_platform != "linux" or machine != self.arch:
            return f"the wheelhouse is for Linux on {self.arch}, this is {sys_platform} on {machine}"
        return None


def parse_python(text: str) -> str:
    """``text`` if it is a CPython 3 version (``3.12``, ``3.12.7``); ValueError otherwise."""
    if not _PYTHON.fullmatch(text):
        raise ValueError(f"{text!r} is not a CPython 3 version such as 3.12 or 3.12.7")
    return text


def parse_platform(text: str) -> str:
    """``text`` if it is a Linux wheel platform tag; ValueError otherwise."""
    if not _PLATFORM.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a Linux wheel platform tag such as manylinux_2_28_x86_64, manylinux2014_aarch64, "
            "musllinux_1_2_x86_64 or linux_x86_64"
        )
    return text
