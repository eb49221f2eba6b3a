"""``install``: check a wheelhouse against its manifest, join the parts and install the project from
the joined wheels with pip, offline. Every check runs before pip does, so a wheelhouse that lost,
cut or damaged a part installs nothing."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import sys
import tempfile
from pathlib import Path

from jobs.wheelhouse import pip_commands
from jobs.wheelhouse.closure import requirement_name
from jobs.wheelhouse.manifest import Manifest, WheelhouseError, read
from jobs.wheelhouse.parts import check_present, join_wheel
from jobs.wheelhouse.sizes import human_size
from jobs.wheelhouse.target import Target


def check(folder: Path) -> Manifest:
    """Every part and every joined wheel of ``folder`` matches the manifest; WheelhouseError naming the
    first that does not. Runs on any machine: nothing is compared with this interpreter."""
    manifest = read(folder)
    check_present(manifest.wheels, folder)
    _each_joined(manifest, folder, None)
    _say(f"{folder}: {len(manifest.wheels)} wheels match the manifest")
    return manifest


def install(folder: Path, project: Path, extra: str | None, tmp: Path | None, pip_args: list[str]) -> None:
    """Install ``project[extra]`` (extra None: the wheelhouse's) editable from ``folder``, offline, with
    this interpreter's pip; the joined wheels live in a folder under ``tmp`` (None: ``folder``) until
    pip is done."""
    manifest = read(folder)
    try:
        target = Target.parse(manifest.python, manifest.platform)
    except ValueError as e:
        raise WheelhouseError(f"the manifest's target is not understood: {e}") from None
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    why = target.mismatch(here, sys.platform, platform.machine())
    if why:
        raise WheelhouseError(f"{why}; install with that Python, or build a wheelhouse for this one")
    _image_provides(manifest)
    check_present(manifest.wheels, folder)
    joined = Path(tempfile.mkdtemp(prefix=".joined-", dir=tmp or folder))
    try:
        _each_joined(manifest, folder, joined)
        pip_commands.install_offline(joined, project.resolve(), manifest.extra if extra is None else extra, pip_args)
    finally:
        shutil.rmtree(joined, ignore_errors=True)


def _image_provides(manifest: Manifest) -> None:
    """The packages the build left to the image (``--image-has``) are installed here; else pip would
    fail offline, after the joining, with a far less clear message."""
    left_out = {requirement_name(pin) for pin in manifest.left_out}
    for name in sorted(set(manifest.image_has) & left_out):
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise WheelhouseError(
                f"the wheelhouse leaves {name} to the image, but this Python has no {name}: "
                f"use the image's Python, or rebuild the wheelhouse with --image-has ''"
            ) from None


def _each_joined(manifest: Manifest, folder: Path, dest: Path | None) -> None:
    total, done = sum(w.size for w in manifest.wheels), 0
    for i, wheel in enumerate(manifest.wheels, 1):
        join_wheel(wheel, folder, dest / wheel.name if dest else None)
        done += wheel.size
        _say(f"[{i}/{len(manifest.wheels)}] {wheel.name} ok ({human_size(done)} of {human_size(total)})")


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
