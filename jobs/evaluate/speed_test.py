"""SpeedNet's speed test (table 1): 16-frame clips played at 1x and uniformly at 2x from the same
stretch of each video, centre crop, no augmentation; the accuracy of "sped up" against "normal"."""

from __future__ import annotations

import torch
from tqdm import tqdm

from pipeline.loader import eval_loader


@torch.no_grad()
def speed_accuracy(
    speednet: torch.nn.Module,
    shards,
    *,
    T: int = 16,
    size: int = 224,
    batch_size: int = 8,
    clips_per_video: int = 1,
    device: str = "cpu",
    progress: bool = False,
) -> dict:
    """Normal-vs-2x accuracy of a SpeedNet (``(N, C, T, H, W) -> (N,)`` logits) on ``shards``."""
    options = {"T": T, "n": clips_per_video}
    loader = eval_loader(shards, "speedtest", options, size=size, batch_size=batch_size, device=device)
    right = total = 0
    for batch in tqdm(loader, desc="speed test", disable=not progress):
        logits = speednet(batch.video.to(device))
        sped_up = torch.tensor([r == "sped_up" for r in batch.role], device=logits.device)
        right += int(((logits > 0) == sped_up).sum())
        total += len(sped_up)
    return {"speed_accuracy": right / total, "clips": total, "dropped": len(loader.dropped)}
