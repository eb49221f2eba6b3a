"""``build``: resolve the project with an extra for a target, download the wheels the cluster image
lacks, split them into parts and write the manifest. Everything is written into a hidden folder beside
OUT that becomes OUT by one rename at the end, so a crash or Ctrl-C leaves no half wheelhouse."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jobs.wheelhouse import pip_commands
from jobs.wheelhouse.closure import Resolved, canonical, resolved_packages, shipped
from jobs.wheelhouse.manifest import NAME, Manifest, WheelhouseError
from jobs.wheelhouse.parts import split_wheel
from jobs.wheelhouse.sizes import human_size
from jobs.wheelhouse.target import Target


@dataclass(frozen=True)
class BuildRequest:
    out: Path
    project: Path  # a checkout with pyproject.toml
    target: Target
    extra: str
    image_has: frozenset[str]  # canonical names
    part_size: int
    pip_args: tuple[str, ...] = ()
    overwrite: bool = False


def build(request: BuildRequest) -> Manifest:
    """The wheelhouse ``request.out``, complete, or WheelhouseError and nothing at ``out``."""
    out = request.out
    if out.exists() and not request.overwrite:
        raise WheelhouseError(f"{out} exists; pass --overwrite to replace it")
    build_requires = build_requirements(request.project, request.extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        manifest = _fill(staging, request, build_requires)
        staging.chmod(0o777 & ~_umask())  # mkdtemp's folder is private; OUT is as any folder made here
        if out.exists():  # --overwrite: the old one goes only once the new one is complete
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            out.rename(old / "wheelhouse")
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def build_requirements(project: Path, extra: str) -> list[str]:
    """The project's ``[build-system] requires``, after checking it has ``extra``; WheelhouseError else."""
    path = project / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise WheelhouseError(f"{path} is missing: run from the project's checkout or pass --project") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise WheelhouseError(f"{path} is unreadable: {e}") from None
    extras = data.get("project", {}).get("optional-dependencies", {})
    if extra and extra not in extras:
        raise WheelhouseError(f"the project has no extra {extra!r}; its extras: {', '.join(sorted(extras)) or 'none'}")
    return list(data.get("build-system", {}).get("requires", ["setuptools>=40.8.0"]))  # PEP 518's default


def _fill(staging: Path, request: BuildRequest, build_requires: list[str]) -> Manifest:
    target, project = request.target, request.project.resolve()
    wanted = f"{project}[{request.extra}]" if request.extra else str(project)
    _say(f"resolving {wanted} and its build requirements for CPython {target.python} on {target.platform}")
    report = pip_commands.resolve([wanted, *build_requires], target, list(request.pip_args))
    try:
        packages = resolved_packages(report)
    except (ValueError, KeyError) as e:
        raise WheelhouseError(f"pip's installation report is not understood: {e!r}") from None
    ship = shipped(packages, set(request.image_has))
    to_get = sorted((packages[n] for n in ship if not packages[n].is_local_dir), key=lambda p: p.name)
    left_out = sorted(f"{p.name}=={p.version}" for p in packages.values() if p.name not in ship)
    for name in sorted(request.image_has - packages.keys()):
        _say(f"note: --image-has {name}: nothing in the resolution needs it")
    _say(f"{len(to_get)} wheels to download; left to the image: {', '.join(left_out) or 'nothing'}")

    downloads = staging / ".download"
    downloads.mkdir()
    pip_commands.download([p.pin for p in to_get], target, downloads, list(request.pip_args))
    wheels = []
    for i, (package, path) in enumerate(_downloaded(to_get, downloads), 1):
        wheel = split_wheel(path, staging, request.part_size)
        path.unlink()  # the parts replace it: the build needs room for one copy, not two
        if package.sha256 and wheel.sha256 != package.sha256:
            raise WheelhouseError(
                f"pip download fetched another {path.name} than the resolution chose (sha256 differs)"
            )
        parts = f" in {len(wheel.parts)} parts" if len(wheel.parts) > 1 else ""
        _say(f"[{i}/{len(to_get)}] {wheel.name}: {human_size(wheel.size)}{parts}")
        wheels.append(wheel)
    downloads.rmdir()
    manifest = Manifest(
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        python=target.python,
        platform=target.platform,
        extra=request.extra,
        part_size=request.part_size,
        image_has=tuple(sorted(request.image_has)),
        left_out=tuple(left_out),
        build_requires=tuple(build_requires),
        wheels=tuple(wheels),
    )
    (staging / NAME).write_text(manifest.to_json())
    files = sum(len(w.parts) for w in wheels)
    _say(f"{request.out}: {len(wheels)} wheels, {human_size(sum(w.size for w in wheels))} in {files} files")
    return manifest


def _downloaded(packages: list[Resolved], folder: Path) -> list[tuple[Resolved, Path]]:
    """Each package beside the wheel pip downloaded for it; WheelhouseError if one is missing."""
    files = {canonical(p.name.split("-")[0]): p for p in folder.iterdir() if p.suffix == ".whl"}
    missing = [p.name for p in packages if p.name not in files]
    if missing:
        raise WheelhouseError(f"pip download left out {', '.join(missing)}")
    return [(p, files[p.name]) for p in packages]


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
