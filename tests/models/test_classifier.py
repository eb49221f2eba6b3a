"""models.classifier: the fine-tuning task, a backbone with a new linear head."""

from __future__ import annotations

import math

import pytest
import torch

from models.pretext import PLAN_OF, build_pretext
from pipeline.batches import Batch


def _labelled(n: int, classes: int, T: int = 4, side: int = 16) -> Batch:
    video = torch.randn(n, 3, T, side, side, generator=torch.Generator().manual_seed(0))
    batch = Batch.of_roles(video, ["train"] * n)
    batch.label_index = torch.arange(n) % classes
    return batch


def test_classifier_loss_is_cross_entropy_of_the_heads_logits():
    torch.manual_seed(0)
    model = build_pretext("classifier", "r3d10", {"width": 4}, classes=5).eval()
    batch = _labelled(6, 5)
    out = model(batch.video, batch)
    logits = model.head(model.backbone(batch.video))
    by_hand = -torch.log_softmax(logits, 1)[torch.arange(6), batch.label_index].mean()
    assert out["loss"].item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx(math.log(5), abs=0.3)  # a fresh head is near uniform
    assert out["acc"].item() == pytest.approx((logits.argmax(1) == batch.label_index).float().mean().item())
    assert PLAN_OF["classifier"] == "supervised"


def test_classifier_refuses_unlabelled_clips():
    model = build_pretext("classifier", "r3d10", {"width": 4}, classes=3)
    batch = _labelled(4, 3)
    batch.label_index[1] = -1
    with pytest.raises(ValueError, match="labelled"):
        model(batch.video, batch)


def test_fine_tuning_starts_from_the_checkpoints_backbone_and_a_new_head(tiny_checkpoint):
    from jobs.pretrain.checkpoint import init_backbone
    from models.trained import load_trained

    pretrained = load_trained(tiny_checkpoint)
    config = pretrained.config["model"]
    torch.manual_seed(1)
    model = build_pretext("classifier", config["backbone"], config["backbone_options"], classes=7)
    fresh_head = {k: v.clone() for k, v in model.head.state_dict().items()}
    init_backbone(model, tiny_checkpoint)
    for name, value in pretrained.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[name], value), name
    assert model.head.out_features == 7
    assert all(torch.equal(model.head.state_dict()[k], v) for k, v in fresh_head.items())  # untouched
    assert not any(k.startswith(("g_m", "g_a", "key_", "queue")) for k in model.state_dict())  # pretext heads dropped
