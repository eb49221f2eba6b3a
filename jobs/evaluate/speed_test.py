"""SpeedNet's speed test (table 1): 16-frame clips played at 1x and uniformly at 2x from the same
stretch of video, centre crop, no augmentation; the accuracy of "sped up" against "normal". Each
video is read at evenly spaced positions across its whole length (``pipeline.plans.speed_test_plan``),
a 1x and a 2x clip at each, so the score covers every part of a video, not just its opening."""

from __future__ import annotations

import torch

from pipeline.loader import eval_loader
from pipeline.progress import progress as progress_bar

POSITIONS = 10  # per video, as the VCOP protocol's 10 evenly spaced clips


@torch.no_grad()
def speed_accuracy(
    speednet: torch.nn.Module,
    shards,
    *,
    T: int = 16,
    size: int = 224,
    batch_size: int = 2,
    positions: int = POSITIONS,
    max_clips: int = 16,
    device: str = "cpu",
    progress: bool = False,
) -> dict:
    """Normal-vs-2x accuracy of a SpeedNet (``(N, C, T, H, W) -> (N,)`` logits) on ``shards``.

    ``positions``: evenly spaced positions per video, each giving a 1x and a 2x clip (fewer on
    a video with fewer distinct positions; see ``speed_test_plan``). ``batch_size`` videos are
    decoded together and pass the network ``max_clips`` clips at a time, so more positions do not
    raise the peak memory of a forward pass. Every clip counts once: "clips" is the total scored.
    """
    options = {"T": T, "n": positions}
    loader = eval_loader(shards, "speedtest", options, size=size, batch_size=batch_size, device=device)
    right = total = 0
    for batch in progress_bar(loader, desc="speed test", unit="batch", enabled=progress):
        logits = torch.cat([speednet(part.to(device)) for part in torch.split(batch.video, max_clips)])
        sped_up = torch.tensor([r == "sped_up" for r in batch.role], device=logits.device)
        right += int(((logits > 0) == sped_up).sum())
        total += len(sped_up)
    return {"speed_accuracy": right / total, "clips": total, "dropped": len(loader.dropped)}
