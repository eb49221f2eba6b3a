"""Which device work runs on: the one place that asks torch whether there is a GPU.

Torch names it ``cuda``; DALI's loader names the same choice ``gpu`` (decode with NVDEC, tensors
on the GPU), so both names are derived here from one answer.
"""

from __future__ import annotations

import torch


def torch_device(choice: str = "auto") -> str:
    """``cuda`` when a CUDA device is visible and ``choice`` is ``auto``, else ``cpu``; an explicit
    ``cuda`` without one is an error, not a silent fallback."""
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device cuda asked for, but torch sees no CUDA device")
    return choice


def loader_device(choice: str = "auto") -> str:
    """The loader's name, ``cpu`` or ``gpu``, for a choice in either naming (auto, cpu, gpu, cuda, cuda:N)."""
    name = {"gpu": "cuda"}.get(choice, str(choice).split(":")[0])
    return "gpu" if torch_device(name) == "cuda" else "cpu"
