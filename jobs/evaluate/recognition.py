"""Action recognition accuracy of a fine-tuned classifier (RSPNet section 4.1, SpeedNet table 2):
``clips`` evenly spaced T-frame clips per test video, centre crop; clip level scores each clip on
its own, video level averages the clips' logits per video, then ranks the classes (as the released
RSPNet code does: ``finetune.py``, ``average_logits``)."""

from __future__ import annotations

import numpy as np
import torch

from jobs.evaluate.probe import topk_accuracy
from pipeline.loader import eval_loader
from pipeline.progress import progress as progress_bar


def video_level(scores: np.ndarray, sample_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean scores per video (V, classes), the row of each video's first clip), videos in order of
    first appearance; ``sample_ids`` says which video each clip row belongs to."""
    sample_ids = np.asarray(sample_ids)
    _, first = np.unique(sample_ids, return_index=True)
    order = np.sort(first)
    means = np.stack([scores[sample_ids == sample_ids[i]].mean(axis=0) for i in order])
    return means, order


@torch.no_grad()
def recognition_accuracy(
    classifier,
    shards,
    *,
    T: int = 16,
    size: int = 112,
    clips: int = 10,
    batch_size: int = 4,
    device: str = "cpu",
    progress: bool = False,
) -> dict:
    """Top-1 and top-5 at clip and video level of ``classifier`` (``models.classifier.Classifier``)
    on labelled ``shards``."""
    loader = eval_loader(shards, "eval", {"T": T, "n": clips}, size=size, batch_size=batch_size, device=device)
    logits, labels, videos = [], [], []
    seen = 0
    for batch in progress_bar(loader, desc="test", unit="batch", enabled=progress):
        if (batch.label_index < 0).any():
            raise ValueError("the test shards have unlabelled videos")
        logits.append(classifier.logits(batch.video.to(device)).float().cpu().numpy())
        labels.append(batch.label_index.numpy())
        videos.append(batch.sample.numpy() + seen)  # sample ids are per batch; make them global
        seen += int(batch.sample.max()) + 1
    logits, labels, videos = np.concatenate(logits), np.concatenate(labels), np.concatenate(videos)
    per_video, first = video_level(logits, videos)
    return {
        "clip": topk_accuracy(logits, labels),
        "video": topk_accuracy(per_video, labels[first]),
        "videos": len(first),
        "clips": len(labels),
        "dropped": len(loader.dropped),
    }
