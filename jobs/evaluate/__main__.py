"""``python -m jobs.evaluate CHECKPOINT speed|rsp|retrieval``: a pretrained checkpoint on held-out shards.

    python -m jobs.evaluate CHECKPOINT speed --shards heldout/test [--positions 10]
    python -m jobs.evaluate CHECKPOINT rsp --shards heldout/test
    python -m jobs.evaluate CHECKPOINT retrieval --shards heldout/test --gallery heldout/train [--pooling speednet]

``speed``: SpeedNet's test (table 1): 16-frame clips played at 1x and uniformly at 2x from the same
stretch of video, at ``--positions`` evenly spaced positions across each video (default 10), centre
crop, no augmentation; the accuracy of "sped up" vs "normal" over all those clips.
``rsp``: RSPNet's relative-speed test: one triplet per video (c_i and c_j at one speed, c_k at the
other, from c_j's window), centre crop; the share where g_m puts c_j nearer c_i than c_k (chance 0.5).
``retrieval``: the VCOP protocol (RSPNet section 4.3): each video is 10 evenly spaced 16-frame clips,
the backbone's last conv features pooled per clip (``--pooling``: "avg", the protocol's global
average, by default; "speednet", SpeedNet's max over space then mean over time) and averaged over
clips; every query video (``--shards``) ranks the gallery (``--gallery``) by cosine similarity; top-k
accuracy is the share of queries with a same-class video among the k nearest.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from jobs.evaluate.retrieval import POOLINGS, retrieval
from jobs.evaluate.rsp_test import rsp_accuracy
from jobs.evaluate.speed_test import POSITIONS, speed_accuracy
from models.trained import load_trained
from pipeline import logs
from pipeline.device import add_device_option, apply_device_option, torch_device
from pipeline.help_format import HelpFormatter

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jobs.evaluate", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("checkpoint", type=Path, help="a checkpoint written by jobs.pretrain")
    p.add_argument(
        "task",
        choices=("speed", "rsp", "retrieval"),
        help="speed: SpeedNet's 1x-vs-2x test; rsp: RSPNet's relative-speed test; retrieval: the VCOP protocol",
    )
    p.add_argument("--shards", required=True, help="held-out shards (the queries, for retrieval)")
    p.add_argument(
        "--gallery", help="retrieval: the shards searched, e.g. the train split (no default: retrieval needs it)"
    )
    p.add_argument("--size", type=int, help="centre crop side (default: 224 speed, 112 rsp and retrieval)")
    p.add_argument("--frames", type=int, default=16, help="frames per clip (default 16)")
    p.add_argument(
        "--positions",
        type=int,
        help="speed: evenly spaced positions per video, first to last frame, a 1x and a 2x clip at each "
        f"(default {POSITIONS}; a short video gives each distinct position once)",
    )
    p.add_argument(
        "--pooling",
        choices=POOLINGS,
        help="retrieval: how each clip's last conv features are pooled: avg (global average, the VCOP "
        "protocol; the default) or speednet (max over space, then mean over time, as SpeedNet pools)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON (and nothing else on stdout)")
    add_device_option(p)
    args = p.parse_args(argv)
    apply_device_option(args)
    logs.configure(quiet=args.json)
    device = torch_device()
    try:
        if args.positions is not None and (args.task != "speed" or args.positions < 1):
            raise ValueError("--positions is for the speed test and must be at least 1")
        if args.pooling is not None and args.task != "retrieval":
            raise ValueError("--pooling is for retrieval")
        trained = load_trained(args.checkpoint)
        model = trained.pretext.to(device)
        if args.task == "speed":
            if trained.method != "speednet":
                raise ValueError(f"{args.checkpoint} is a {trained.method} model: the speed test needs SpeedNet")
            result = speed_accuracy(
                model.net,
                args.shards,
                T=args.frames,
                size=args.size or 224,
                positions=args.positions or POSITIONS,
                device=device,
                progress=True,
            )
        elif args.task == "rsp":
            result = rsp_accuracy(
                model, args.shards, T=args.frames, size=args.size or 112, device=device, progress=True
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
                pooling=args.pooling or "avg",
                device=device,
                progress=True,
            )
    except ValueError as error:
        log.error("%s", error)
        return 2
    print(
        json.dumps(result)
        if args.json
        else "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
