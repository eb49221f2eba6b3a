"""The learning-rate schedule: linear scaling with batch size, linear warmup, then cosine decay to
zero or step decay at milestones (RSPNet's released HMDB51 fine-tuning configs)."""

from __future__ import annotations

import bisect
import math


def scaled_lr(lr: float, global_batch: int, lr_batch: int) -> float:
    """Goyal et al.'s linear scaling rule: ``lr`` is right at ``lr_batch`` videos per step."""
    return lr * global_batch / lr_batch


def lr_at(
    step: int, total: int, peak: float, warmup: int = 0, milestones: tuple[int, ...] = (), gamma: float = 0.1
) -> float:
    """Learning rate for optimiser step ``step`` (0-based) of ``total``.

    Warmup ramps linearly from peak / warmup at step 0 to ``peak`` at step ``warmup - 1``. Then, with
    no ``milestones``, cosine decay falls from ``peak`` towards 0 at step ``total``; with milestones
    (sorted steps), the rate is ``peak * gamma ** (milestones passed)``, as torch's MultiStepLR.
    """
    if not 0 <= step < total:
        raise ValueError(f"step {step} outside 0..{total - 1}")
    if step < warmup:
        return peak * (step + 1) / warmup
    if milestones:
        return peak * gamma ** bisect.bisect_right(milestones, step)
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * peak * (1.0 + math.cos(math.pi * progress))
