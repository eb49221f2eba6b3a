"""Projection heads: from a backbone's pooled embedding to the space a pretext loss works in."""

from __future__ import annotations

from torch import nn


def projection_head(in_dim: int, out_dim: int = 128, hidden: int | None = None) -> nn.Module:
    """RSPNet's g_m / g_a: Linear-ReLU-Linear to ``out_dim`` (MoCo v2's MLP head); ``hidden`` defaults
    to ``in_dim``, and ``hidden=0`` gives a single linear layer (the paper's CAM reads its weights)."""
    hidden = in_dim if hidden is None else hidden
    if hidden == 0:
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))
