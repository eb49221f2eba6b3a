"""The pretext tasks (models/pretext.py): SpeedNet's task, its loss and accuracy by hand."""

from __future__ import annotations

import math

import pytest
import torch

from models import build_backbone
from models.pretext import SpeedNetTask
from pipeline.batches import Batch


def test_speednet_task_loss_and_accuracy():
    torch.manual_seed(0)
    task = SpeedNetTask(__import__("models").SpeedNet(build_backbone("r3d10", width=4)))
    video = torch.randn(4, 3, 4, 16, 16)
    out = task(video, Batch.of_roles(video, ["normal", "sped_up"] * 2))
    assert out["loss"].item() == pytest.approx(math.log(2), abs=0.05)  # the head starts near logit 0
    # accuracy by hand: a clip is right when its logit's sign says its role (sped up: logit > 0)
    logits = task.net(video).reshape(-1)
    truth = torch.tensor([0.0, 1.0] * 2)
    assert float(out["speed_acc"]) == pytest.approx(((logits > 0).float() == truth).float().mean().item())
    # and the loss is the binary cross-entropy of those logits
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, truth)
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
