"""A-VID: InfoNCE between a query clip and a key clip of the same video, against a queue of keys
from other videos (RSPNet section 3.2; MoCo's mechanism).

    L_a = -log( exp(q.k+ / tau) / (exp(q.k+ / tau) + sum_n exp(q.k_n / tau)) ),  tau = 0.07,

with q, k unit vectors (128-d heads g_a). Keys carry no gradient. The momentum encoder that makes the
keys and the queue that holds them are part of the model (``models.rspnet``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, tau: float = 0.07) -> torch.Tensor:
    """Mean InfoNCE of queries (N, D) against their keys (N, D) and the queue's negatives (K, D).
    Computed in float32 even under autocast: at 1 / tau = 14, bf16's rounding of the similarities
    would move the logits by a few hundredths."""
    with torch.autocast(q.device.type, enabled=False):
        q, k = F.normalize(q.float(), dim=1), F.normalize(k.detach().float(), dim=1)
        positive = (q * k).sum(dim=1, keepdim=True)
        negatives = q @ queue.detach().float().t()
        logits = torch.cat([positive, negatives], dim=1) / tau
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))
