"""RSPNet's relative-speed test on videos it never trained on: does g_m put two clips at one speed
nearer each other than a clip at another speed?

Per video, one ``rspnet`` plan triplet (c_i and c_j at one speed, c_k at the other, c_k from c_j's
window as in the released code), centre crop, no colour augmentation, the online encoder and g_m in
eval mode; a triplet is right when cos(m_i, m_j) > cos(m_i, m_k). Chance is 0.5. The plan's random
draws are seeded, so a model scores the same on every run.
"""

from __future__ import annotations

import torch

from objectives.rsp import ranked_right
from pipeline.loader import eval_loader
from pipeline.progress import progress as progress_bar


@torch.no_grad()
def rsp_accuracy(
    rspnet: torch.nn.Module,
    shards,
    *,
    T: int = 16,
    speeds=(1, 2),
    size: int = 112,
    batch_size: int = 8,
    device: str = "cpu",
    progress: bool = False,
) -> dict:
    """Share of held-out triplets an ``RSPNet`` (with its RSP head ``g_m``) ranks right."""
    if getattr(rspnet, "motion", None) != "rsp":
        raise ValueError("the RSP test needs an RSPNet trained with motion 'rsp' (its g_m head)")
    rspnet.eval()
    options = {"T": T, "speeds": list(speeds), "shared_start": True}
    loader = eval_loader(shards, "rspnet", options, size=size, batch_size=batch_size, device=device)
    right = total = 0
    for batch in progress_bar(loader, desc="RSP test", unit="batch", enabled=progress):
        m = rspnet.g_m(rspnet.backbone(batch.video.to(device)))
        m = m.view(-1, 3, m.shape[1])  # rows: the plan's anchor, positive, negative per video
        right += int(ranked_right(m[:, 0], m[:, 1], m[:, 2]).sum())
        total += len(m)
    return {"rsp_accuracy": right / total, "videos": total, "dropped": len(loader.dropped)}
