"""A-VID: InfoNCE between a query clip and a key clip of the same video, against a queue of keys
from other videos, keys from a momentum encoder (RSPNet section 3.2; MoCo's mechanism).

    L_a = -log( exp(q.k+ / tau) / (exp(q.k+ / tau) + sum_n exp(q.k_n / tau)) ),  tau = 0.07,

with q, k unit vectors (128-d heads g_a). Keys carry no gradient. In multi-process training every
rank's keys are gathered before they enter the queue, so all ranks hold the same negatives.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


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


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, m: float = 0.999) -> None:
    """target <- m * target + (1 - m) * online, parameter by parameter; buffers are copied."""
    for p_o, p_t in zip(online.parameters(), target.parameters()):
        p_t.mul_(m).add_(p_o.detach(), alpha=1 - m)
    for b_o, b_t in zip(online.buffers(), target.buffers()):
        b_t.copy_(b_o)


class KeyQueue(nn.Module):
    """A FIFO ring of ``size`` unit keys of ``dim`` dimensions, saved with the model's state."""

    def __init__(self, dim: int = 128, size: int = 16384, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("keys", F.normalize(torch.randn(size, dim, generator=g), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Add a batch of keys (gathered from every rank first), overwriting the oldest."""
        keys = F.normalize(_gather(keys.detach()), dim=1)
        size = self.keys.shape[0]
        idx = (self.ptr + torch.arange(len(keys), device=keys.device)) % size
        self.keys[idx] = keys.to(self.keys.dtype)
        self.ptr.copy_((self.ptr + len(keys)) % size)


def _gather(x: torch.Tensor) -> torch.Tensor:
    """Every rank's rows, in rank order. Ranks may hold different numbers of rows (the loader
    drops samples it cannot decode), so rows are padded to the largest count for the exchange."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    world = dist.get_world_size()
    counts = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([len(x)], device=x.device))
    padded = x.new_zeros((int(max(counts)), *x.shape[1:]))
    padded[: len(x)] = x
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(n)] for part, n in zip(parts, counts)])
