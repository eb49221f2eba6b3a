"""The pretext tasks the trainer runs, behind one interface, and how a config builds them.

A pretext task is an ``nn.Module`` whose ``forward(video, batch)`` takes the loader's (N, C, T, H, W)
clips and batch dict (``pipeline.batches``) and returns a dict of scalars: ``"loss"``, which the
trainer minimises, and metrics it logs (``speed_acc``, ``rsp_acc``, ``avid_acc``, ...). Its
``backbone`` is what pretraining is for: export, retrieval and fine-tuning take only that. Putting the
loss inside ``forward`` lets Accelerate's DDP wrapper see every parameter that gets a gradient.
"""

from __future__ import annotations

import torch
from torch import nn

from models import build_backbone
from models.classifier import Classifier
from models.rspnet import RSPNet
from models.speednet import SpeedNet
from objectives.speednet import sped_up_targets, speed_accuracy, speed_loss

PLAN_OF = {
    "speednet": "speednet",
    "rspnet": "rspnet",
    "classifier": "supervised",
}  # the loader plan each task trains on


class SpeedNetTask(nn.Module):
    """SpeedNet's binary task: both versions of every clip in the batch (same-batch training)."""

    def __init__(self, net: SpeedNet):
        super().__init__()
        self.net = net
        self.backbone = net.backbone

    def forward(self, video: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        logits = self.net(video)
        targets = sped_up_targets(batch.role, device=logits.device)
        return {"loss": speed_loss(logits, targets), "speed_acc": speed_accuracy(logits.detach(), targets)}


def build_pretext(
    method: str, backbone: str, backbone_options: dict | None = None, seed: int = 0, micro_batches: int = 1, **options
) -> nn.Module:
    """``method`` "speednet", "rspnet" or "classifier" (fine-tuning) on the named backbone; ``options``
    go to ``RSPNet`` or ``Classifier`` (``classes``, ``dropout``), and ``micro_batches`` (forward
    passes per optimiser step) to RSPNet's momentum encoder."""
    trunk = build_backbone(backbone, **(backbone_options or {}))
    if method == "speednet":
        if options:
            raise ValueError(f"speednet takes no options, got {sorted(options)}")
        return SpeedNetTask(SpeedNet(trunk))
    if method == "rspnet":
        return RSPNet(trunk, seed=seed, micro_batches=micro_batches, **options)
    if method == "classifier":
        return Classifier(trunk, **options)
    raise ValueError(f"unknown method {method!r}: use speednet, rspnet or classifier")
