"""RSPNet's relative speed perception (RSP) and its SP ablation (RSPNet section 3.2, table 1).

RSP: clips c_i and c_j play at the same speed, c_k at another; with m = g_m(f(c)) their embeddings,
    L_m = max(0, gamma - (d(m_i, m_j) - d(m_i, m_k))),   d = cosine similarity, gamma = 0.15,
so same-speed pairs must be more similar than different-speed pairs by a margin. ``scale`` multiplies
the loss: the authors' released code ranks similarities divided by the temperature (margin 2.0 on
d / 0.07, the same hinge point as gamma 0.14) so its gradient is 1 / 0.07 times the formula's; RSPNet
here passes scale = 1 / tau for that weighting against A-VID's InfoNCE by default
(``model.options.rsp_scale = 1.0`` for the paper's formula).
SP: classify each clip's speed directly (cross-entropy over the speed set), the ablation RSP beats.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rsp_loss(
    m_i: torch.Tensor, m_j: torch.Tensor, m_k: torch.Tensor, gamma: float = 0.15, scale: float = 1.0
) -> torch.Tensor:
    """Mean triplet margin loss over the batch, times ``scale``; inputs (N, D): anchor, same speed,
    other speed."""
    same = F.cosine_similarity(m_i, m_j, dim=1)
    other = F.cosine_similarity(m_i, m_k, dim=1)
    return scale * F.relu(gamma - (same - other)).mean()


def ranked_right(m_i: torch.Tensor, m_j: torch.Tensor, m_k: torch.Tensor) -> torch.Tensor:
    """Per triplet, whether the same-speed clip is strictly nearer the anchor than the other-speed one
    (cosine similarity; a tie is wrong): RSP's accuracy, in training and on held-out videos."""
    return F.cosine_similarity(m_i, m_j, dim=1) > F.cosine_similarity(m_i, m_k, dim=1)


def speed_classification_loss(logits: torch.Tensor, speeds: torch.Tensor, speed_set: tuple[float, ...]) -> torch.Tensor:
    """SP: cross-entropy of (N, len(speed_set)) logits against each clip's speed."""
    classes = torch.tensor(speed_set, dtype=speeds.dtype, device=speeds.device)
    targets = (speeds[:, None] - classes[None, :]).abs().argmin(dim=1)
    return F.cross_entropy(logits, targets)
