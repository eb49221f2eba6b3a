"""Byte counts to and from text (pure). Units are exact, since a transfer system's file-size limit is:
kB, MB, GB are powers of 1000, KiB, MiB, GiB powers of 1024."""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([a-z]*)\s*")


def parse_size(text: str) -> int:
    """``60MiB``, ``100MB``, ``1.5GiB`` or a plain byte count, as whole bytes; ValueError otherwise."""
    m = _SIZE.fullmatch(text.lower())
    if not m or m[2] not in _UNITS:
        raise ValueError(f"not a size: {text!r} (a byte count, or a number with B, kB, MB, GB, KiB, MiB or GiB)")
    size = int(float(m[1]) * _UNITS[m[2]])
    if size < 1:
        raise ValueError(f"not a positive size: {text!r}")
    return size


def human_size(size: int) -> str:
    """``412.3 MiB``: a byte count for progress lines."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
