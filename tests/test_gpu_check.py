"""``python -m bench.gpu_check`` where there is no GPU to check (this machine, or any with CUDA hidden
by ``CUDA_VISIBLE_DEVICES=""``): it skips cleanly and says why; bad arguments are one-line errors.
Run as a subprocess, as a user runs it (tests do not import bench). The GPU parts themselves run only
on a GPU; their exact search is tested on the CPU in tests/index/test_torch_search.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO


def gpu_check(*args: str, path_first: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no device, even on a GPU machine
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_without_a_cuda_device_it_writes_why_and_exits_0(tmp_path):
    out = tmp_path / "reports" / "gpu.json"  # its folder does not exist yet
    done = gpu_check("--out", str(out), "--parts", "faiss, tests")  # a valid subset, spaces and order free
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check skipped: no CUDA device"), done.stdout
    report = json.loads(out.read_text())
    assert list(report) == ["skipped"] and report["skipped"] in lines[0]
    assert "CUDA_VISIBLE_DEVICES is ''" in report["skipped"]
    if shutil.which("nvidia-smi") is None:
        assert "nvidia-smi is absent" in report["skipped"]
    assert [p.name for p in out.parent.iterdir()] == ["gpu.json"]  # written whole: no temporary file left


def test_a_gpu_that_torch_cannot_use_is_named_in_the_reason(tmp_path):
    """nvidia-smi sees a GPU but torch does not (here: hidden; on machines: a driver too old for
    torch's CUDA): the line says what nvidia-smi lists, the first thing to compare."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"  # stands in for the driver's tool only: the answer it gives is the input
    fake.write_text('#!/bin/sh\necho "NVIDIA H100 80GB HBM3, 580.65.06"\n')
    fake.chmod(0o755)
    done = gpu_check("--out", str(tmp_path / "gpu.json"), path_first=bin_dir)
    assert done.returncode == 0, done.stderr
    assert "nvidia-smi lists 1 GPU(s) (NVIDIA H100 80GB HBM3, 580.65.06) that torch" in done.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--parts", "tests,bogus"], "unknown 'bogus'"),
        (["--parts", ","], "no part named"),
        (["--budget-s", "0"], "--budget-s must be a positive number"),
        (["--out", "."], "is a folder"),
    ],
)
def test_bad_arguments_are_one_line_errors_and_write_nothing(tmp_path, args, says):
    out = tmp_path / "gpu.json"
    done = gpu_check("--out", str(out), *args)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert says in done.stderr and done.stdout == ""
    assert not out.exists()


def test_help_shows_every_option_with_its_default():
    done = gpu_check("--help")
    assert done.returncode == 0
    for option, default in [("--out", "gpu-check.json"), ("--budget-s", "480"), ("--parts", "tests,parity,nvdec")]:
        assert option in done.stdout and f"default {default}" in done.stdout
