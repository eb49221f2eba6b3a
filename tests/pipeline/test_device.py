"""Device choice: ``SPEEDREP_DEVICE`` overrides ``auto`` everywhere, and each process takes the GPU of
its local rank. No GPU here: CUDA's side is checked through its pure parts and its refusals."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os

import pytest

from pipeline.device import ENV, cuda_index, loader_device, local_rank, torch_device
from tests.support.paths import REPO


@pytest.mark.parametrize(
    "env, rank",
    [
        ({}, 0),
        ({"LOCAL_RANK": "3"}, 3),
        ({"SLURM_LOCALID": "2"}, 2),
        ({"LOCAL_RANK": "1", "SLURM_LOCALID": "5"}, 1),
        ({"LOCAL_RANK": "", "SLURM_LOCALID": "4"}, 4),
    ],
)
def test_local_rank_comes_from_torchrun_or_slurm(env, rank):
    assert local_rank(env) == rank


def test_each_local_rank_takes_its_own_gpu_or_the_only_one_it_sees():
    assert [cuda_index(r, 4) for r in range(4)] == [0, 1, 2, 3]
    assert [cuda_index(r, 1) for r in range(4)] == [0, 0, 0, 0]  # one GPU bound per task
    with pytest.raises(RuntimeError, match="local rank 4 but only 4 GPUs"):
        cuda_index(4, 4)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        cuda_index(0, 0)


def test_the_environment_overrides_auto_and_an_explicit_choice_wins(monkeypatch):
    monkeypatch.setenv(ENV, "cpu")
    assert torch_device() == "cpu" and loader_device() == "cpu"
    monkeypatch.setenv(ENV, "cuda")  # no GPU here: asked for, so an error rather than the CPU
    with pytest.raises(RuntimeError, match="no CUDA device"):
        torch_device()
    assert torch_device("cpu") == "cpu"
    monkeypatch.setenv(ENV, "tpu")
    with pytest.raises(ValueError, match="SPEEDREP_DEVICE='tpu'"):
        torch_device()


def test_only_the_device_module_asks_torch_for_a_gpu():
    """So ``SPEEDREP_DEVICE`` and the local-rank binding reach every command: none decides alone."""
    askers = []
    for package in ("pipeline", "models", "objectives", "index", "jobs"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr in ("is_available", "device_count"):
                    if isinstance(node.value, ast.Attribute) and node.value.attr == "cuda":
                        askers.append(str(path.relative_to(REPO)))
    assert set(askers) == {"pipeline/device.py"}


COMMANDS_WITH_A_DEVICE = [
    "index.query",
    "index.export",
    "jobs.evaluate.linear_probe",
    "jobs.evaluate",
    "jobs.speed.speediness",
    "jobs.speed.cam",
    "jobs.speed.speedup",
    "jobs.pretrain",
    "jobs.finetune",
]


@pytest.mark.parametrize("module", COMMANDS_WITH_A_DEVICE)
def test_every_command_that_computes_takes_device(module, capsys):
    package = importlib.util.find_spec(module).submodule_search_locations is not None
    main = importlib.import_module(f"{module}.__main__" if package else module).main
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "--device {auto,cpu,cuda}" in capsys.readouterr().out


def test_device_cuda_without_one_is_one_line_and_device_cpu_is_everyones_choice(tmp_path, capsys, monkeypatch):
    from jobs.speed.speediness import main

    args = [str(tmp_path / "clip.mp4"), "--checkpoint", str(tmp_path / "model.pt")]
    with pytest.raises(SystemExit) as done:
        main([*args, "--device", "cuda"])
    assert done.value.code == 2
    assert capsys.readouterr().err == "error: --device cuda, but torch sees no CUDA device\n"
    monkeypatch.setenv(ENV, "auto")
    main([*args, "--device", "cpu"])  # fails on the missing files, after choosing the device
    assert os.environ[ENV] == "cpu" and torch_device() == "cpu"
