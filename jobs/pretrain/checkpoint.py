"""Checkpoints: written atomically, loaded with ``weights_only=True``, found again after a crash.

A checkpoint is ``run_dir/checkpoints/step-<NNNNNNNN>.pt``, a dict of tensors and plain values only
(so ``torch.load(..., weights_only=True)`` reads it: no pickled code runs when it is loaded)::

    step        int   optimiser steps done
    loader      dict  {"epoch", "step", "seed"}: where the next batch comes from (VideoLoader.state_dict)
    model       dict  the pretext task's state_dict (backbone, heads, key encoder, queue)
    optimizer   dict  the optimiser's state_dict
    rng         dict  {"torch": ByteTensor}: the CPU generator, for anything not seeded by the step
    config      dict  the run's Config.to_dict()

It is written to a temporary file in the same folder, flushed to disk, then renamed over its final
name (``pipeline.atomic``), so a kill at any moment leaves the previous checkpoints whole and no
partial file under a checkpoint name. ``latest`` picks the highest step that loads. Everything that
uses a trained model reads it through ``models.trained.load_trained``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from models.trained import read_checkpoint
from pipeline.atomic import atomic_path

PATTERN = re.compile(r"^step-(\d{8})\.pt$")


def path_for(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:08d}.pt"


def save(run_dir: Path, state: dict, keep: int = 2) -> Path:
    """Write ``state`` as the checkpoint of ``state["step"]``; keep the newest ``keep`` (0: all)."""
    final = path_for(run_dir, state["step"])
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(final, durable=True) as tmp:
        torch.save(state, tmp)
    if keep:
        for old in all_steps(run_dir)[:-keep]:
            path_for(run_dir, old).unlink(missing_ok=True)
    return final


def all_steps(run_dir: Path) -> list[int]:
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := PATTERN.match(p.name)))


def latest(run_dir: Path) -> Path | None:
    """The newest checkpoint of ``run_dir`` that loads, or None when there is none."""
    for step in reversed(all_steps(run_dir)):
        path = path_for(run_dir, step)
        try:
            read_checkpoint(path)
            return path
        except Exception:  # noqa: BLE001 - a damaged file (e.g. disk full) must not block resuming
            continue
    return None


def init_backbone(model: torch.nn.Module, path: Path) -> None:
    """Start ``model``'s backbone (and its momentum copy, if any) from the backbone in checkpoint
    ``path``; the architectures must match exactly."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model.init: no checkpoint at {path}")
    state = read_checkpoint(path)["model"]
    weights = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    try:
        model.backbone.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ValueError(
            f"model.init: {path}'s backbone does not fit this one ({first}); use the same backbone and backbone_options"
        ) from None
    if hasattr(model, "key_backbone"):
        model.key_backbone.load_state_dict(weights)
