"""Which device work runs on: the one place that asks torch whether there is a GPU.

Torch names it ``cuda``; DALI's loader names the same choice ``gpu`` (decode with NVDEC, tensors
on the GPU), so both names are derived here from one answer.

``SPEEDREP_DEVICE=cpu|cuda`` in the environment overrides ``auto`` for every command (a command's
own ``--device`` still wins), so a GPU machine can run the CPU-exact test suite, or a job can be kept
off the GPU. In a multi-process job each process binds the GPU of its local rank (``LOCAL_RANK``, or
SLURM's ``SLURM_LOCALID``) before anything touches CUDA, so plain ``cuda`` means that GPU from then on.
"""

from __future__ import annotations

import os
import sys

import torch

ENV = "SPEEDREP_DEVICE"
CHOICES = ("auto", "cpu", "cuda")


def local_rank(env=os.environ) -> int:
    """This process's rank on its node: ``LOCAL_RANK`` (torchrun, Accelerate, submitit's export),
    else ``SLURM_LOCALID`` (srun), else 0."""
    for name in ("LOCAL_RANK", "SLURM_LOCALID"):
        if env.get(name, "") != "":
            return int(env[name])
    return 0


def cuda_index(rank: int, visible: int) -> int:
    """The GPU a process of local rank ``rank`` takes among ``visible`` ones: its own, or the only one
    there is (a site that binds one GPU per task shows each task just its own)."""
    if visible < 1:
        raise RuntimeError("no CUDA device is visible")
    if visible == 1:
        return 0
    if rank >= visible:
        raise RuntimeError(f"local rank {rank} but only {visible} GPUs are visible: ask for one GPU per task")
    return rank


def bind_cuda() -> int:
    """Make the local rank's GPU the current one (``torch.cuda.set_device``) and return its index."""
    index = cuda_index(local_rank(), torch.cuda.device_count())
    torch.cuda.set_device(index)
    return index


def torch_device(choice: str = "auto") -> str:
    """``cuda`` when a CUDA device is visible and ``choice`` is ``auto`` (``SPEEDREP_DEVICE`` decides
    ``auto`` where set), else ``cpu``; an explicit ``cuda`` without one is an error, not a silent
    fallback. ``cuda`` binds the local rank's GPU first (``bind_cuda``)."""
    if choice == "auto":
        choice = os.environ.get(ENV, "") or "auto"
        if choice not in CHOICES:
            raise ValueError(f"{ENV}={choice!r}: choose one of {', '.join(CHOICES)}")
    elif choice not in CHOICES:
        raise ValueError(f"device must be auto, cpu or cuda, not {choice!r}")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device cuda asked for, but torch sees no CUDA device")
        bind_cuda()
    return choice


def loader_device(choice: str = "auto") -> str:
    """The loader's name, ``cpu`` or ``gpu``, for a choice in either naming (auto, cpu, gpu, cuda, cuda:N)."""
    name = {"gpu": "cuda"}.get(choice, str(choice).split(":")[0])
    return "gpu" if torch_device(name) == "cuda" else "cpu"


def add_device_option(parser) -> None:
    """``--device auto|cpu|cuda`` on a command: the same choice as ``SPEEDREP_DEVICE``, for one run."""
    parser.add_argument(
        "--device",
        choices=CHOICES,
        default="auto",
        help=f"where the work runs: auto is a GPU when there is one ({ENV} decides it where set), or cpu, or cuda",
    )


def apply_device_option(args) -> None:
    """Make ``--device`` the choice of every ``auto`` in this process and the processes it starts;
    ``cuda`` on a host without one ends the command here, in one line (exit status 2)."""
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no CUDA device", file=sys.stderr)
        raise SystemExit(2)
    if args.device != "auto":
        os.environ[ENV] = args.device
