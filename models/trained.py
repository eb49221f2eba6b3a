"""A trained model from its checkpoint: the one reader that export, query, evaluation and the
SpeedNet applications use.

A checkpoint is written by pretraining (its format is documented in ``jobs/pretrain/checkpoint.py``)
and read here with ``weights_only=True``, so no pickled code runs. Of its fields this needs
``model`` (the pretext task's weights), ``config["model"]`` (method, backbone and their options),
``config["run"]["seed"]`` and ``step``.

An encoder folder (``models.pretrained``, made by ``python -m models.export_model``) is read too,
wherever a checkpoint is: it holds the backbone and SpeedNet's head, not RSPNet's training heads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from models.base import Backbone
from models.pretext import SpeedNetTask, build_pretext
from models.pretrained import EncoderFolderError, is_encoder_folder, load_encoder


class CheckpointError(ValueError):
    """The file is not a readable checkpoint; the message says so in one line."""


class CheckpointMissing(CheckpointError):
    """No file at the checkpoint's path."""


def read_checkpoint(path: Path, map_location="cpu") -> dict:
    """A checkpoint's saved state as written, tensors on ``map_location``."""
    return torch.load(path, map_location=map_location, weights_only=True)


@dataclass
class Trained:
    """A checkpoint's pretext task, weights loaded, in eval mode, and what it was trained as."""

    path: Path
    pretext: nn.Module  # models.pretext: SpeedNetTask (``.net``) or RSPNet; from a folder, RSPNet's backbone only
    method: str  # "speednet" | "rspnet"
    step: int  # optimiser steps it was trained for
    config: dict  # the run's whole config, as saved

    @property
    def backbone(self) -> Backbone:
        return self.pretext.backbone

    def describe(self) -> dict:
        """The embedding store's and the index's record of the model: where it is, what it is, and
        a fingerprint of its backbone's weights (a query refuses a checkpoint whose weights changed)."""
        model = self.config["model"]
        described = {
            "checkpoint": str(Path(self.path).resolve()),
            "step": self.step,
            "method": self.method,
            "backbone": model["backbone"],
            "backbone_options": dict(model["backbone_options"]),
            "fingerprint": fingerprint(self.backbone),
            "config": self.config,
        }
        return json.loads(json.dumps(described))  # as JSON attributes will hold it


def load_trained(path: Path) -> Trained:
    """The model in checkpoint ``path``, or in encoder folder ``path``. A missing path raises
    ``CheckpointMissing``, a file or folder that is not one ``CheckpointError``, each saying so in one line."""
    path = Path(path)
    if path.is_dir():
        return _from_folder(path)
    if not path.is_file():
        raise CheckpointMissing(f"no checkpoint at {path}")
    try:
        state = read_checkpoint(path)
        model, seed = state["config"]["model"], state["config"]["run"]["seed"]
        pretext = build_pretext(
            model["method"], model["backbone"], model["backbone_options"], seed=seed, **model["options"]
        )
        pretext.load_state_dict(state["model"])
    except Exception as e:  # noqa: BLE001 - whatever the file is, the user needs one line
        raise CheckpointError(f"{path} is not a checkpoint written by jobs.pretrain ({type(e).__name__})") from None
    return Trained(path, pretext.eval(), model["method"], int(state["step"]), state["config"])


def _from_folder(path: Path) -> Trained:
    if not is_encoder_folder(path):
        raise CheckpointError(f"{path} is a folder but not an encoder folder (no config.json)")
    try:
        encoder = load_encoder(path)
    except EncoderFolderError as e:
        raise CheckpointError(str(e)) from None
    # SpeedNetTask only wraps the net, so speed commands see what a checkpoint gives them; an RSPNet
    # folder has no pretext heads, so the encoder itself stands in (it has ``.backbone``).
    pretext = SpeedNetTask(encoder.speednet) if encoder.method == "speednet" else encoder
    model = {"method": encoder.method, "backbone": encoder.backbone_name, "backbone_options": encoder.backbone_options}
    config = encoder.training_config or {"model": model}
    return Trained(path, pretext.eval(), encoder.method, encoder.step, config)


def fingerprint(module: nn.Module) -> str:
    """A short hash of a module's weights."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
