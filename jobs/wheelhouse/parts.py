"""Wheels into parts of at most ``part_size`` bytes, and parts back into wheels, every byte checked
against the manifest. ``split_plan`` and ``part_names`` are the pure rule; the rest streams files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from jobs.wheelhouse.manifest import Part, Wheel, WheelhouseError

CHUNK = 1 << 20


def split_plan(size: int, part_size: int) -> list[tuple[int, int]]:
    """(offset, length) of each part of a ``size``-byte file: one part if it fits, else full parts of
    ``part_size`` and a shorter last one."""
    if part_size <= 0:
        raise ValueError(f"part size must be positive, got {part_size}")
    if size <= part_size:
        return [(0, size)]
    return [(offset, min(part_size, size - offset)) for offset in range(0, size, part_size)]


def part_names(wheel: str, count: int) -> list[str]:
    """The file names of a wheel's ``count`` parts: the wheel's own name when it is one part; else
    names that sort in joining order and say how many there are."""
    if count == 1:
        return [wheel]
    return [f"{wheel}.part-{i:03d}-of-{count:03d}" for i in range(1, count + 1)]


def split_wheel(path: Path, out: Path, part_size: int) -> Wheel:
    """Write the parts of the wheel at ``path`` into the folder ``out``; its manifest entry."""
    plan = split_plan(path.stat().st_size, part_size)
    whole, parts = hashlib.sha256(), []
    with path.open("rb") as src:
        for name, (_, length) in zip(part_names(path.name, len(plan)), plan):
            digest = hashlib.sha256()
            with (out / name).open("xb") as dst:
                for chunk in _read_exactly(src, length, path):
                    digest.update(chunk)
                    whole.update(chunk)
                    dst.write(chunk)
            parts.append(Part(name, length, digest.hexdigest()))
    return Wheel(path.name, sum(p.size for p in parts), whole.hexdigest(), tuple(parts))


def check_present(wheels: tuple[Wheel, ...], folder: Path) -> None:
    """Every part is in ``folder`` with its manifest size; WheelhouseError naming the first that is not.
    Cheap (no reading), so a transfer that lost or cut a part fails at once."""
    for wheel in wheels:
        for part in wheel.parts:
            try:
                size = (folder / part.name).stat().st_size
            except FileNotFoundError:
                raise WheelhouseError(f"{_label(wheel, part)} is missing from {folder}") from None
            if size < part.size:
                raise WheelhouseError(f"{_label(wheel, part)} is truncated: {size} of {part.size} bytes")
            if size > part.size:
                raise WheelhouseError(f"{_label(wheel, part)} has {size} bytes, the manifest says {part.size}")


def join_wheel(wheel: Wheel, folder: Path, dest: Path | None) -> None:
    """Check each part's sha256 and the joined wheel's, writing the joined wheel to ``dest`` (None:
    only check). WheelhouseError naming the part or wheel that does not match the manifest; run
    ``check_present`` first for the precise message about a missing or cut part."""
    whole = hashlib.sha256()
    with open(dest, "xb") if dest else _Discard() as out:
        for part in wheel.parts:
            digest = hashlib.sha256()
            try:
                with (folder / part.name).open("rb") as src:
                    for chunk in iter(lambda: src.read(CHUNK), b""):  # noqa: B023 (called in the loop)
                        digest.update(chunk)
                        whole.update(chunk)
                        out.write(chunk)
            except FileNotFoundError:
                raise WheelhouseError(f"{_label(wheel, part)} is missing from {folder}") from None
            if digest.hexdigest() != part.sha256:
                raise WheelhouseError(f"{_label(wheel, part)} is corrupted: {_differ(digest.hexdigest(), part.sha256)}")
    if whole.hexdigest() != wheel.sha256:
        raise WheelhouseError(
            f"wheel {wheel.name} joined from its parts differs: {_differ(whole.hexdigest(), wheel.sha256)}"
        )


def _label(wheel: Wheel, part: Part) -> str:
    return f"wheel {wheel.name}" if len(wheel.parts) == 1 else f"part {part.name} of wheel {wheel.name}"


def _differ(found: str, expected: str) -> str:
    return f"sha256 {found[:16]}..., the manifest says {expected[:16]}..."


def _read_exactly(src: BinaryIO, length: int, path: Path) -> Iterator[bytes]:
    """``length`` bytes of ``src`` in chunks; WheelhouseError if it ends sooner (changed meanwhile)."""
    left = length
    while left:
        chunk = src.read(min(CHUNK, left))
        if not chunk:
            raise WheelhouseError(f"{path} ended {left} bytes early: did it change while being split?")
        left -= len(chunk)
        yield chunk


class _Discard:
    """A file that forgets what is written to it: ``join_wheel`` checking without joining."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, data: bytes) -> int:
        return len(data)
