"""``python -m jobs.pretrain CONFIG``: pretrain SpeedNet or RSPNet here, or submit it (submitit).

    python -m jobs.pretrain tiny_speednet                        # a shipped config, by name
    python -m jobs.pretrain rspnet_r3d18 --set data.shards=/data/k400/train --run-dir runs/r3d18
    python -m jobs.pretrain rspnet_r3d18 --run-dir runs/r3d18 --resume
    python -m jobs.pretrain rspnet_r3d18 --variant aug_plus ...  # a variant the config offers ([variants])
    accelerate launch --num_processes 8 -m jobs.pretrain rspnet_r3d18 ...
    python -m jobs.pretrain rspnet_r3d18 --launcher slurm --nodes 2 --gpus-per-node 8 --partition gpu --time 1440
    python -m jobs.pretrain rspnet_r3d18 --report-to tensorboard,wandb ...  # experiment trackers

``--launcher slurm|local`` submits through submitit (``jobs.pretrain.launch``): one task per GPU,
requeued from its last checkpoint when preempted or out of time; submitted jobs always resume.

The command only decides: train in this process (``jobs.pretrain.loop.train``), or submit the job
that will (``jobs.pretrain.launch``), as dino's ``run_with_submitit.py`` stands apart from its
training script.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from jobs.pretrain import launch, trackers
from jobs.pretrain.config import add_set_option, load
from jobs.pretrain.loop import train
from pipeline import logs
from pipeline.device import add_device_option, apply_device_option
from pipeline.help_format import HelpFormatter

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m jobs.pretrain",
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    p.add_argument("config", help="a config file, or a shipped config's name (jobs/pretrain/configs/*.toml)")
    add_set_option(p)
    p.add_argument(
        "--variant",
        metavar="NAME",
        help="a named set of overrides the config offers in its [variants] table (e.g. aug_plus: the "
        "released code's stronger augmentation, with blur), applied before --set (default: none)",
    )
    p.add_argument("--run-dir", type=Path, help="where logs and checkpoints go (default runs/<config>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --run-dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (nor progress lines in a log file)")
    trackers.add_argument(p)
    launch.add_arguments(p)
    add_device_option(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    args = parse_args(argv)
    apply_device_option(args)
    run_dir = args.run_dir or Path("runs") / f"{Path(args.config).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        report_to = trackers.from_arguments(args.report_to)
        config = load(args.config, args.overrides, variant=args.variant)
        if not config.data.shards:
            raise ValueError("no shards: set data.shards in the config or pass --set data.shards=PATH")
        if args.resume and args.run_dir is None:
            raise ValueError("--resume needs --run-dir, the folder of the run to continue")
        if args.launcher != "none":
            job = launch.submit(
                config,
                run_dir,
                launcher=args.launcher,
                report_to=report_to,
                progress=not args.no_progress,
                **launch.resources(args),
            )
            return launch.wait(job) if args.wait else 0
        log.info("run folder: %s", run_dir)
        outcome = train(config, run_dir, resume=args.resume, progress=not args.no_progress, report_to=report_to)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        log.error("%s", error)
        return 2
    except KeyboardInterrupt:
        log.warning(
            "interrupted: the newest checkpoint in %s is whole; continue with --run-dir %s --resume",
            run_dir / "checkpoints",
            run_dir,
        )
        return 130
    print(f"done: {run_dir}  " + " ".join(f"{k}={v:.4g}" for k, v in outcome.metrics.items() if isinstance(v, float)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
