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
name, so a kill at any moment leaves the previous checkpoints whole and no partial file under a
checkpoint name. ``latest`` picks the highest step that loads.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

PATTERN = re.compile(r"^step-(\d{8})\.pt$")


def path_for(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:08d}.pt"


def save(run_dir: Path, state: dict, keep: int = 2) -> Path:
    """Write ``state`` as the checkpoint of ``state["step"]``; keep the newest ``keep`` (0: all)."""
    final = path_for(run_dir, state["step"])
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(final.parent)
    if keep:
        for old in all_steps(run_dir)[:-keep]:
            path_for(run_dir, old).unlink(missing_ok=True)
    return final


def all_steps(run_dir: Path) -> list[int]:
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for p in folder.iterdir() if (m := PATTERN.match(p.name)))


def load(path: Path, map_location="cpu") -> dict:
    return torch.load(path, map_location=map_location, weights_only=True)


def latest(run_dir: Path) -> Path | None:
    """The newest checkpoint of ``run_dir`` that loads, or None when there is none."""
    for step in reversed(all_steps(run_dir)):
        path = path_for(run_dir, step)
        try:
            load(path)
            return path
        except Exception:  # noqa: BLE001 - a damaged file (e.g. disk full) must not block resuming
            continue
    return None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_pretext(path: Path):
    """The pretext task saved in checkpoint ``path``, weights loaded, in eval mode; and its Config.
    A missing file or one that is not a checkpoint raises ValueError saying so in one line."""
    return pretext_of(load_checked(path))


def load_checked(path: Path) -> dict:
    """A checkpoint's saved state, its config checked to be readable (ValueError otherwise)."""
    from jobs.config import from_dict

    if not Path(path).is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        state = load(path)
        from_dict(state["config"])
    except Exception as e:  # noqa: BLE001 - whatever the file is, the user needs one line
        raise ValueError(f"{path} is not a checkpoint written by jobs.pretrain ({type(e).__name__})") from None
    return state


def pretext_of(state: dict):
    """The pretext task of a saved ``state`` (``load_checked``), weights loaded, in eval mode; and its Config."""
    from jobs.config import from_dict
    from models.pretext import build_pretext

    config = from_dict(state["config"])
    model = build_pretext(config.model.method, config.model.backbone, config.model.backbone_options,
                          seed=config.run.seed, **config.model.options)
    model.load_state_dict(state["model"])
    return model.eval(), config


def init_backbone(model: torch.nn.Module, path: Path) -> None:
    """Start ``model``'s backbone (and its momentum copy, if any) from the backbone in checkpoint
    ``path``; the architectures must match exactly."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model.init: no checkpoint at {path}")
    state = load(path)["model"]
    weights = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    try:
        model.backbone.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ValueError(f"model.init: {path}'s backbone does not fit this one ({first}); "
                         "use the same backbone and backbone_options") from None
    if hasattr(model, "key_backbone"):
        model.key_backbone.load_state_dict(weights)
