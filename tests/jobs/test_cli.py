"""The ``speedrep`` entry point: every command is reachable, and each is its ``python -m`` module."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys

import pytest

from jobs.cli import COMMANDS, main
from tests.support.paths import REPO


def runnable_modules() -> set[str]:
    """Every module of the product that runs as a command (``main`` plus a ``__main__`` guard)."""
    found = set()
    for package in ("pipeline", "models", "index", "jobs"):
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text()
            if "\ndef main(" in text and 'if __name__ == "__main__":' in text:
                found.add(".".join(path.relative_to(REPO).with_suffix("").parts))
    return found - {"jobs.cli"}


def test_every_command_module_is_a_speedrep_command():
    assert runnable_modules() == {module for module, _ in COMMANDS.values()}
    for module, _ in COMMANDS.values():
        assert callable(importlib.import_module(module).main)


def test_a_command_gets_its_arguments_and_an_unknown_one_is_refused(capsys):
    with pytest.raises(SystemExit) as done:
        main(["query", "--help"])
    assert done.value.code == 0 and "--k" in capsys.readouterr().out
    assert main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown command 'no-such-command'" in err and "shard" in err


def test_the_installed_console_script_is_the_module():
    script = shutil.which("speedrep")
    if script is None:
        pytest.fail("no `speedrep` on PATH: the project is installed without its [project.scripts]")
    ours = subprocess.run([script, "index", "--help"], capture_output=True, text=True)
    theirs = subprocess.run([sys.executable, "-m", "index.build", "--help"], capture_output=True, text=True, cwd=REPO)
    assert ours.returncode == theirs.returncode == 0 and ours.stdout == theirs.stdout
