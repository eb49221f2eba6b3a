"""``python -m jobs.evaluate.linear_probe CKPT --data SHARDS``: a linear classifier on the frozen
backbone's features, trained on the train split and tested on the test split (``jobs.evaluate.probe``).

    python -m jobs.evaluate.linear_probe runs/r3d18/checkpoints/step-00100000.pt --data /data/ucf101-fold1

``--data`` holds the splits the shard job wrote (``train/`` and ``test/``, as ``just shard ucf101``
makes). Each split is exported through the same path as ``just export`` into ``OUT/<split>.zarr``
(video rows: 10 evenly spaced clips, pooled and averaged; windows every ``--frames`` frames), so a
second probe of the same checkpoint reuses them. Writes ``OUT/results.json`` and prints top-1 and
top-5 of both splits. OUT defaults to ``probe-<data folder>/`` beside the checkpoint's run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from index.export import ExportSettings, export
from jobs.argtypes import positive_int
from jobs.evaluate.probe import label_splits, linear_probe, read_split
from pipeline import logs
from pipeline.atomic import atomic_write_text
from pipeline.device import add_device_option, apply_device_option, torch_device
from pipeline.help_format import HelpFormatter
from pipeline.normalise import Rejected
from pipeline.shards import resolve_shards

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jobs.evaluate.linear_probe",
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    p.add_argument("checkpoint", type=Path, help="a checkpoint written by jobs.pretrain")
    p.add_argument("--data", type=Path, required=True, help="a folder of shard splits (train/, test/)")
    p.add_argument("--train", default="train", help="the split the classifier is fitted on (default train)")
    p.add_argument("--test", default="test", help="the split it is tested on (default test)")
    p.add_argument("--out", type=Path, help="where features and results go (default RUN/probe-<data folder>)")
    p.add_argument("--frames", type=positive_int, default=16, help="frames per clip (default 16)")
    p.add_argument("--size", type=positive_int, default=112, help="centre crop side (default 112)")
    p.add_argument("--clips", type=positive_int, default=10, help="clips per video, averaged (default 10)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="L2 weight of the classifier (default 1e-4)")
    p.add_argument("--json", action="store_true", help="print the results as JSON (and nothing else on stdout)")
    add_device_option(p)
    args = p.parse_args(argv)
    apply_device_option(args)
    logs.configure(quiet=args.json)
    out = args.out or args.checkpoint.resolve().parent.parent / f"probe-{args.data.resolve().name}"
    settings = ExportSettings(T=args.frames, stride=args.frames, size=args.size, video_clips=args.clips)
    out.mkdir(parents=True, exist_ok=True)
    try:
        splits = []
        for split in (args.train, args.test):
            tars = resolve_shards(args.data / split)
            store = out / f"{split}.zarr"
            export(args.checkpoint, tars, store, settings, device=torch_device(), progress=not args.json)
            splits.append(read_split(store))
        classes, train, test = label_splits(*splits)
        result = linear_probe(train, test, len(classes), weight_decay=args.weight_decay, device=torch_device())
    except (ValueError, FileNotFoundError, Rejected) as error:
        log.error("%s", error)
        return 2
    result |= {"checkpoint": str(args.checkpoint), "data": str(args.data), "splits": [args.train, args.test]}
    atomic_write_text(out / "results.json", json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"linear probe of {args.checkpoint} on {args.data}: {result['classes']} classes")
    for name in ("train", "test"):
        scores = "  ".join(f"{k}={v:.4f}" for k, v in result[name].items())
        print(f"  {name:5} {result[f'{name}_videos']:6d} videos  {scores}")
    print(f"wrote {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
