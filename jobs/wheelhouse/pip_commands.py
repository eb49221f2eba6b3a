"""The pip runs, a thin shell: resolve for a target, download its wheels, install offline.

Resolving and downloading happen for the target, so this machine's own pins must not steer them: a
constraint file or a folder of local wheels made for this machine (a CPU torch, say) would change
the resolution. pip skips empty settings, so they are replaced by empty ones instead: the constraint
file by /dev/null and find-links by an empty folder, whether set in pip's configuration files or in
the environment. Index, proxy and certificate settings, how this machine reaches a registry, stay.
Extra pip arguments (after ``--`` on the command line) go to every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from jobs.wheelhouse.manifest import WheelhouseError
from jobs.wheelhouse.target import Target

# pip evaluates markers with packaging's default_environment(), this machine's; the resolution must see
# the target's. The installation report takes its "environment" from the same function, so the
# report shows whether the replacement took (resolve checks it).
_PIP_FOR_TARGET = """\
import json, sys
from pip._vendor.packaging import markers
target = json.loads(sys.argv[1])
markers.default_environment = lambda: dict(target)
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


def _target_options(target: Target) -> list[str]:
    options = ["--only-binary=:all:", "--implementation", "cp", "--python-version", target.python]
    for tag in target.platform_tags():
        options += ["--platform", tag]
    return options


def _for_target_env(scratch: Path) -> dict[str, str]:
    (scratch / "no-links").mkdir()
    return {**os.environ, "PIP_CONSTRAINT": os.devnull, "PIP_FIND_LINKS": str(scratch / "no-links")}


def _run(what: str, command: list[str], env: dict[str, str] | None = None) -> None:
    rc = subprocess.run(command, env=env).returncode
    if rc:
        raise WheelhouseError(f"{what} failed (exit {rc}); pip's output is above")


def resolve(requirements: list[str], target: Target, pip_args: list[str]) -> dict:
    """pip's installation report of ``requirements`` resolved for ``target`` (nothing is installed)."""
    environment = target.marker_environment()
    with tempfile.TemporaryDirectory(prefix="wheelhouse-resolve-") as scratch:
        report = Path(scratch) / "report.json"
        command = [sys.executable, "-c", _PIP_FOR_TARGET, json.dumps(environment), "install", "--dry-run"]
        command += ["--ignore-installed", "--target", str(Path(scratch) / "target"), "--report", str(report)]
        env = _for_target_env(Path(scratch))
        _run("pip install --dry-run", command + _target_options(target) + pip_args + requirements, env)
        resolution = json.loads(report.read_text())
    if resolution.get("environment") != environment:
        raise WheelhouseError(
            "this pip resolved for this machine's environment markers, not the target's "
            f"(pip {resolution.get('pip_version')}; the build is tested with pip 23.2)"
        )
    return resolution


def download(pins: list[str], target: Target, dest: Path, pip_args: list[str]) -> None:
    """The wheels of ``pins`` (``name==version`` or URLs) for ``target`` into ``dest``, no dependencies."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(dest)]
    with tempfile.TemporaryDirectory(prefix="wheelhouse-download-") as scratch:
        _run("pip download", command + _target_options(target) + pip_args + pins, _for_target_env(Path(scratch)))


def install_offline(find_links: Path, project: Path, extra: str, pip_args: list[str]) -> None:
    """``pip install --no-index --find-links FIND_LINKS -e PROJECT[EXTRA]`` with this interpreter's pip."""
    requirement = f"{project}[{extra}]" if extra else str(project)
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(find_links)]
    _run("pip install", command + ["-e", requirement] + pip_args)
