"""The losses (SpeedNet BCE, RSP triplet, speed classification, InfoNCE) against values worked out by hand."""

import math

import pytest
import torch

from objectives.avid import info_nce
from objectives.rsp import rsp_loss, speed_classification_loss
from objectives.speednet import sped_up_targets, speed_accuracy, speed_loss


def test_speednet_bce_by_hand():
    logits, targets = torch.tensor([0.0, 2.0]), sped_up_targets(["normal", "sped_up"])
    expected = (math.log(2) + math.log(1 + math.exp(-2))) / 2  # -log sigmoid(-0), -log sigmoid(2)
    assert speed_loss(logits, targets).item() == pytest.approx(expected)
    assert speed_accuracy(torch.tensor([-1.0, 3.0, 0.5]), torch.tensor([0.0, 1.0, 0.0])).item() == pytest.approx(2 / 3)


def test_rsp_triplet_by_hand():
    anchor = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    same = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # cosine 1, 0, 1/sqrt(2)
    other = torch.tensor([[0.0, 3.0], [5.0, 0.0], [1.0, 0.8]])  # cosine 0, 1, 1/sqrt(1.64)
    per_triplet = [
        max(0, 0.15 - (1 - 0)),
        max(0, 0.15 - (0 - 1)),
        max(0, 0.15 - (1 / math.sqrt(2) - 1 / math.sqrt(1.64))),
    ]  # 0, 1.15, 0.2238
    assert rsp_loss(anchor, same, other).item() == pytest.approx(sum(per_triplet) / 3, rel=1e-6)
    assert rsp_loss(anchor, same, other, scale=1 / 0.07).item() == pytest.approx(sum(per_triplet) / 3 / 0.07, rel=1e-6)


def test_speed_classification_by_hand():
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    loss = speed_classification_loss(logits, torch.tensor([2.0, 1.0]), (1.0, 2.0))
    expected = (math.log(2) + math.log(1 + math.exp(-2))) / 2  # uniform; right class at +2
    assert loss.item() == pytest.approx(expected)


def test_info_nce_by_hand():
    q, k = torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    # logits (1, 0, -1) / 0.5 = (2, 0, -2); loss = -log softmax(...)[0]
    expected = math.log(math.exp(2) + 1 + math.exp(-2)) - 2
    assert info_nce(q, k, queue, tau=0.5).item() == pytest.approx(expected, rel=1e-6)
