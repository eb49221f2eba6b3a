"""The commands' logging (pipeline/logs.py): INFO to stdout, warnings and errors to stderr as one
plain line each, only rank 0's INFO in a multi-process run, the other ranks' lines marked."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from pipeline import logs
from tests.support.paths import REPO

log = logging.getLogger("jobs.some_command")  # a module of the project, as getLogger(__name__) names it


@pytest.fixture(autouse=True)
def _alone(monkeypatch):
    """A process on its own: no rank in the environment, and no Accelerate state (a training test
    earlier in the session leaves one; its rank would win over the environment's)."""
    for name in ("RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "accelerate.state", raising=False)


def test_info_goes_to_stdout_warnings_and_errors_to_stderr_one_plain_line_each(capsys):
    logs.configure()
    log.info("run folder: %s", "runs/x")
    log.warning("resuming with another config")
    log.error("no shards found")
    out, err = capsys.readouterr()
    assert out == "run folder: runs/x\n"
    assert err == "warning: resuming with another config\nerror: no shards found\n"


def test_configure_again_replaces_its_handlers_and_quiet_keeps_info_off(capsys):
    logs.configure()
    logs.configure()
    log.info("once")
    assert capsys.readouterr().out == "once\n"  # not twice
    logs.configure(quiet=True)
    log.info("progress")
    log.warning("still said")
    out, err = capsys.readouterr()
    assert out == "" and err == "warning: still said\n"


def test_other_libraries_speak_from_warning_up(capsys):
    logs.configure()
    logging.getLogger("faiss.loader").info("Loading faiss with AVX2 support.")
    logging.getLogger("faiss.loader").warning("no GPU")
    out, err = capsys.readouterr()
    assert out == "" and err == "warning: no GPU\n"


def test_rank_comes_from_the_environment(monkeypatch):
    assert logs.rank() == 0
    monkeypatch.setenv("SLURM_PROCID", "3")
    assert logs.rank() == 3
    monkeypatch.setenv("RANK", "2")  # torchrun's and submitit's, when both are set
    assert logs.rank() == 2


def test_accelerates_rank_wins_once_its_state_exists():
    code = (
        "import os; from accelerate import PartialState; PartialState(cpu=True); os.environ['RANK'] = '1'; "
        "from pipeline.logs import rank; print(rank())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout == "0\n"  # Accelerate's process index, not the environment's


@pytest.mark.parametrize("variable", ["RANK", "SLURM_PROCID"])
def test_only_rank_zero_prints_info_and_other_ranks_mark_their_warnings(capsys, monkeypatch, variable):
    logs.configure()
    monkeypatch.setenv(variable, "1")
    log.info("resumed from step 4")
    log.warning("config differs")
    out, err = capsys.readouterr()
    assert out == "" and err == "[rank 1] warning: config differs\n"
    monkeypatch.setenv(variable, "0")
    log.info("resumed from step 4")
    assert capsys.readouterr().out == "resumed from step 4\n"


def test_the_handlers_follow_a_redirection_made_after_configure(capsys):
    import contextlib
    import io

    logs.configure()
    with contextlib.redirect_stdout(io.StringIO()) as out:
        log.info("into the redirection")
    assert out.getvalue() == "into the redirection\n" and capsys.readouterr().out == ""
