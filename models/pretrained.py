"""A trained encoder as a self-describing folder: ``config.json`` + ``model.safetensors``.

``Encoder.save_pretrained(dir)`` writes it and ``Encoder.from_pretrained(dir)`` reads it back
(``huggingface_hub.PyTorchModelHubMixin``), needing neither the training code's config classes nor
pickle. The folder holds what retrieval and the SpeedNet applications use of a pretext task: the
backbone, and for SpeedNet its 1x1 speed head (``.speednet``, for speediness, speedup and
activation maps). RSPNet's projection heads, momentum encoder and key queue are training state and
are left out. ``config.json`` holds the constructor's arguments: method, backbone, its options, the
optimiser step, and the training run's config as a plain dict (``Trained.config``).

A folder that cannot be loaded (no config, a config naming an unknown backbone, weights missing or
of other shapes) raises ``EncoderFolderError`` with one line saying which.
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import PyTorchModelHubMixin
from huggingface_hub.constants import CONFIG_NAME, SAFETENSORS_SINGLE_FILE
from torch import nn

from models import build_backbone
from models.base import Backbone
from models.speednet import SpeedNet

METHODS = ("speednet", "rspnet")


class EncoderFolderError(ValueError):
    """The folder is not a loadable encoder folder; the message says why in one line."""


def is_encoder_folder(path: Path) -> bool:
    """Whether ``path`` is a folder meant to be one (it has a ``config.json``); its content is checked on load."""
    return Path(path).is_dir() and (Path(path) / CONFIG_NAME).is_file()


class Encoder(nn.Module, PyTorchModelHubMixin, library_name="speedrep", tags=["video", "self-supervised"]):
    """A pretext task's backbone (and SpeedNet's speed head), in eval mode once loaded."""

    def __init__(
        self,
        method: str,
        backbone: str,
        backbone_options: dict | None = None,
        step: int = 0,
        training_config: dict | None = None,
    ):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        self.method, self.step = method, int(step)
        self.backbone_name, self.backbone_options = backbone, dict(backbone_options or {})
        self.training_config = training_config or {}
        trunk = build_backbone(backbone, **self.backbone_options)
        # Registered once, under the name the weights file uses: SpeedNet's trunk is reached through it.
        if method == "speednet":
            self.speednet = SpeedNet(trunk)
        else:
            self.trunk = trunk

    @property
    def backbone(self) -> Backbone:
        return self.speednet.backbone if self.method == "speednet" else self.trunk

    @classmethod
    def _from_pretrained(cls, *, model_id: str, map_location: str = "cpu", strict: bool = True, **model_kwargs):
        """Local folders only, every weight required (the mixin's default would load a partial file
        silently and fall back to the Hub for a folder without weights)."""
        folder = Path(model_id)
        weights = folder / SAFETENSORS_SINGLE_FILE
        if not weights.is_file():
            raise EncoderFolderError(f"{folder} has no {SAFETENSORS_SINGLE_FILE}: not a complete encoder folder")
        for hub_arg in ("revision", "cache_dir", "force_download", "local_files_only", "token"):
            model_kwargs.pop(hub_arg, None)
        try:
            model = cls(**model_kwargs)
        except (TypeError, ValueError) as e:
            raise EncoderFolderError(f"{folder / CONFIG_NAME} does not describe an encoder: {e}") from None
        return cls._load_as_safetensor(model, str(weights), map_location, strict)


def load_encoder(folder: Path, map_location: str = "cpu") -> Encoder:
    """The encoder in ``folder``, in eval mode; ``EncoderFolderError`` (one line) if it cannot be."""
    folder = Path(folder)
    if not is_encoder_folder(folder):
        raise EncoderFolderError(f"{folder} has no {CONFIG_NAME}: not an encoder folder")
    try:
        json.loads((folder / CONFIG_NAME).read_text())
    except ValueError:
        raise EncoderFolderError(f"{folder / CONFIG_NAME} is not valid JSON") from None
    try:
        return Encoder.from_pretrained(folder, map_location=map_location).eval()
    except EncoderFolderError:
        raise
    except Exception as e:  # noqa: BLE001 - a bad weights file raises many kinds; the user needs one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EncoderFolderError(f"{folder / SAFETENSORS_SINGLE_FILE} does not fit its config: {first}") from None


def encoder_of(
    pretext: nn.Module, method: str, backbone: str, backbone_options: dict, step: int, config: dict
) -> Encoder:
    """An ``Encoder`` holding ``pretext``'s backbone (and SpeedNet head) weights, copied exactly."""
    encoder = Encoder(method, backbone, backbone_options, step, config)
    source = pretext.net if method == "speednet" else pretext.backbone
    target = encoder.speednet if method == "speednet" else encoder.trunk
    target.load_state_dict(source.state_dict(), strict=True)
    return encoder.eval()
