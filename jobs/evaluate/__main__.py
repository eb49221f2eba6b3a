"""``python -m jobs.evaluate CHECKPOINT speed|retrieval``: a pretrained checkpoint on held-out shards.

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

from jobs.evaluate.retrieval import retrieval
from jobs.evaluate.speed_test import speed_accuracy
from models.trained import load_trained
from pipeline.device import torch_device


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
    device = torch_device()
    try:
        trained = load_trained(args.checkpoint)
        model = trained.pretext.to(device)
        if args.task == "speed":
            if trained.method != "speednet":
                raise ValueError(f"{args.checkpoint} is a {trained.method} model: the speed test needs SpeedNet")
            result = speed_accuracy(
                model.net, args.shards, T=args.frames, size=args.size or 224, device=device, progress=True
            )
        else:
            if not args.gallery:
                raise ValueError("retrieval needs --gallery, the shards to search")
            result = retrieval(
                model.backbone,
                args.shards,
                args.gallery,
                T=args.frames,
                size=args.size or 112,
                device=device,
                progress=True,
            )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        json.dumps(result)
        if args.json
        else "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
