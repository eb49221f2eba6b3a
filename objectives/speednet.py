"""SpeedNet's objective: is this clip sped up? Binary cross-entropy on one logit per clip."""

from __future__ import annotations

import torch
import torch.nn.functional as F

SPED_UP_ROLE = "sped_up"


def sped_up_targets(roles: list[str], device=None) -> torch.Tensor:
    """1.0 for the sped-up version of each clip, 0.0 for the normal one (the loader's ``role``)."""
    return torch.tensor([float(r == SPED_UP_ROLE) for r in roles], device=device)


def speed_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy; ``logits`` (N,), ``targets`` (N,) in {0, 1}."""
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype))


def speed_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return ((logits > 0).to(targets.dtype) == targets).float().mean()
