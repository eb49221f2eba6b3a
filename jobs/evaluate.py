"""Evaluate a pretrained checkpoint on held-out shards.

    python -m jobs.evaluate CHECKPOINT speed --shards heldout/test
    python -m jobs.evaluate CHECKPOINT retrieval --shards heldout/test --gallery heldout/train

``speed``: SpeedNet's test (table 1): 16-frame clips played at 1x and uniformly at 2x from the same
stretch of each video, centre crop, no augmentation; the accuracy of "sped up" vs "normal".
``retrieval``: the VCOP protocol (RSPNet section 4.3): each video is 10 evenly spaced 16-frame clips,
the backbone's last conv features average-pooled per clip and averaged over clips; every query video
(``--shards``) ranks the gallery (``--gallery``) by cosine similarity; top-k accuracy is the share of
queries with a same-class video among the k nearest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from jobs import checkpoint
from jobs.embed import loader_device, video_embeddings
from models.base import Backbone
from pipeline.augment import AugmentConfig
from pipeline.loader import VideoLoader

TOP_K = (1, 5, 10, 20, 50)


@torch.no_grad()
def speed_accuracy(speednet: torch.nn.Module, shards, *, T: int = 16, size: int = 224, batch_size: int = 8,
                   clips_per_video: int = 1, device: str = "cpu", progress: bool = False) -> dict:
    """Normal-vs-2x accuracy of a SpeedNet (``(N, C, T, H, W) -> (N,)`` logits) on ``shards``."""
    loader = VideoLoader(shards, plan="speedtest", plan_options={"T": T, "n": clips_per_video},
                         augment=AugmentConfig("eval", out=size), batch_size=batch_size, device=loader_device(device),
                         shuffle=False)
    right = total = 0
    for video, batch in tqdm(loader, desc="speed test", disable=not progress):
        logits = speednet(video.to(device))
        sped_up = torch.tensor([r == "sped_up" for r in batch["role"]], device=logits.device)
        right += int(((logits > 0) == sped_up).sum())
        total += len(sped_up)
    return {"speed_accuracy": right / total, "clips": total, "dropped": len(loader.dropped)}


def retrieval_topk(query: np.ndarray, query_labels: list, gallery: np.ndarray, gallery_labels: list,
                   ks=TOP_K) -> dict[int, float]:
    """Share of queries with a same-class gallery item among their k most similar (cosine, unit rows)."""
    order = np.argsort(-(query @ gallery.T), axis=1, kind="stable")
    same = np.array(gallery_labels, dtype=object)[order] == np.array(query_labels, dtype=object)[:, None]
    return {k: float(same[:, :k].any(axis=1).mean()) for k in ks if k <= gallery.shape[0]}


def retrieval(backbone: Backbone, query_shards, gallery_shards, **kw) -> dict:
    _, q_labels, q = video_embeddings(backbone, query_shards, **kw)
    _, g_labels, g = video_embeddings(backbone, gallery_shards, **kw)
    return {f"top{k}": v for k, v in retrieval_topk(q, q_labels, g, g_labels).items()} | {"queries": len(q)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a checkpoint written by jobs.pretrain")
    p.add_argument("task", choices=("speed", "retrieval"))
    p.add_argument("--shards", required=True, help="held-out shards (the queries, for retrieval)")
    p.add_argument("--gallery", help="retrieval: the shards searched (e.g. the train split)")
    p.add_argument("--size", type=int, help="centre crop side (default: 224 speed, 112 retrieval)")
    p.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        model, config = checkpoint.load_pretext(args.checkpoint)
        model.to(device)
        if args.task == "speed":
            if config.model.method != "speednet":
                raise ValueError(f"{args.checkpoint} is a {config.model.method} model: the speed test needs SpeedNet")
            result = speed_accuracy(model.net, args.shards, T=args.frames, size=args.size or 224, device=device,
                                    progress=True)
        else:
            if not args.gallery:
                raise ValueError("retrieval needs --gallery, the shards to search")
            result = retrieval(model.backbone, args.shards, args.gallery, T=args.frames, size=args.size or 112,
                               device=device, progress=True)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                        for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
