"""Action recognition on top of a pretrained backbone: the fine-tuning task of both papers' transfer
tables (RSPNet section 4.1, SpeedNet section 5.1).

The backbone's pooled clip embedding goes through dropout and a new linear head to one logit per
class; the loss is cross-entropy against each clip's label. It is a pretext task like the others
(``models.pretext``): the pretraining loop trains it unchanged, with ``model.init`` loading the
backbone from a pretraining checkpoint and the head starting at random (RSPNet, after Xu et al.).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.base import Backbone
from pipeline.batches import Batch


class Classifier(nn.Module):
    def __init__(self, backbone: Backbone, classes: int, dropout: float = 0.0):
        super().__init__()
        if classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {classes}")
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(backbone.out_channels, classes)

    def logits(self, video: torch.Tensor) -> torch.Tensor:
        """(N, C, T, H, W) clips -> (N, classes) logits."""
        return self.head(self.dropout(self.backbone(video)))

    def forward(self, video: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        labels = batch.label_index.to(video.device)
        if (labels < 0).any():
            raise ValueError("fine-tuning needs labelled clips; this batch has unlabelled ones")
        logits = self.logits(video)
        loss = F.cross_entropy(logits.float(), labels)  # float32 under autocast, as the other losses
        return {"loss": loss, "acc": (logits.detach().argmax(1) == labels).float().mean()}
