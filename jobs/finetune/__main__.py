"""``python -m jobs.finetune CKPT --data SHARDS``: fine-tune a pretrained backbone for action
recognition, then test it (RSPNet section 4.1, SpeedNet section 5.1).

    python -m jobs.finetune runs/r3d18/checkpoints/step-00100000.pt --data /data/ucf101-fold1
    python -m jobs.finetune none --data /data/ucf101-fold1          # the random-initialisation row

``--data`` holds the ``train/`` and ``test/`` splits of labelled shards (``just shard ucf101
--fold N``, Kinetics, or any); the classes come from their manifest. The backbone starts from the
checkpoint (or at random with ``none``), the linear head always at random; the pretext heads are
dropped. Training is the pretraining loop itself (``jobs.pretrain.loop``) on ``model.method =
"classifier"``, so bf16, gradient accumulation, exact resume and the logs are the same. Then every
test video is scored from ``--test-clips`` evenly spaced clips (centre crop): top-1 and top-5 at clip
and video level, written to ``RUN/results.json`` and printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from jobs.evaluate.recognition import recognition_accuracy
from jobs.finetune.setup import classes_of, finetune_config
from jobs.pretrain import checkpoint
from jobs.pretrain.loop import train
from models.trained import load_trained
from pipeline.atomic import atomic_write_text
from pipeline.device import torch_device


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.finetune", description=__doc__.split("\n\n")[0])
    p.add_argument("init", help="a pretraining checkpoint, or none for random initialisation")
    p.add_argument("--data", type=Path, required=True, help="a folder of labelled shard splits (train/, test/)")
    p.add_argument("--config", default="tiny_finetune", help="a fine-tuning config (jobs/pretrain/configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    p.add_argument("--run-dir", type=Path, help="where logs, checkpoints and results go (default runs/finetune-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--test-clips", type=int, default=10, help="clips per test video, averaged (default 10)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    args = p.parse_args(argv)
    run_dir = args.run_dir or Path("runs") / f"finetune-{time.strftime('%Y%m%d-%H%M%S')}"
    init = None if args.init == "none" else Path(args.init)
    device = torch_device()
    try:
        if args.resume and args.run_dir is None:
            raise ValueError("--resume needs --run-dir, the folder of the run to continue")
        classes = classes_of(args.data)
        config = finetune_config(args.config, args.overrides, init, args.data, len(classes))
        outcome = train(config, run_dir, resume=args.resume, progress=not args.no_progress)
        classifier = load_trained(checkpoint.path_for(run_dir, outcome.step)).pretext.to(device)
        result = recognition_accuracy(
            classifier,
            args.data / "test",
            T=config.data.plan_options.get("T", 16),
            size=config.data.augment.get("out", 112),
            clips=args.test_clips,
            device=device,
            progress=not args.no_progress,
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = {"init": args.init, "data": str(args.data), "classes": len(classes), "steps": outcome.step, **result}
    atomic_write_text(run_dir / "results.json", json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"fine-tuned {args.init} on {args.data} ({len(classes)} classes, {outcome.step} steps): {run_dir}")
    for level in ("clip", "video"):
        print(f"  {level:5}  " + "  ".join(f"{k}={v:.4f}" for k, v in result[level].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
