"""``python -m jobs.shard kinetics --root ROOT --out OUT``: datasets on disk into WebDataset shards."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path

from jobs.shard import array
from jobs.shard.run import (
    AssignmentMismatch,
    JobSettings,
    finish_split,
    load_or_assign,
    pending_shards,
    run_shards,
    split_paths,
)
from jobs.shard.sources import DEFAULT_SPLITS, READERS, DatasetError
from pipeline import logs
from pipeline.help_format import HelpFormatter
from pipeline.normalise import CODECS, EncodeSettings

log = logging.getLogger(__name__)

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """'512MB', '1G', '1.5GB' or a byte count."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1] if t and t[-1] in _UNITS else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 512MB or 1GB)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return int(value * _UNITS[unit])


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not the whole usage block
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m jobs.shard",
        description="Normalise a video dataset (constant fps, capped short side, 8-bit 4:2:0, no audio) "
        "into WebDataset tar shards with DALI indexes and a manifest per split. "
        "Killed and run again with the same arguments, it resumes.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("dataset", choices=sorted(READERS), help="dataset layout of ROOT")
    p.add_argument("--root", type=Path, required=True, help="dataset folder (Kinetics: holds annotations/)")
    p.add_argument("--out", type=Path, required=True, help="output folder; one subfolder per split")
    p.add_argument(
        "--splits",
        help="comma-separated splits (default: kinetics train,val[,test if present]; ucf101/hmdb51 train,test)",
    )
    p.add_argument("--fold", type=int, default=1, choices=[1, 2, 3], help="UCF101/HMDB51 split number")
    g = p.add_argument_group("normalisation")
    d = EncodeSettings()
    g.add_argument("--fps", type=int, default=d.fps, help="constant output frame rate (default %(default)s)")
    g.add_argument(
        "--short-side",
        type=int,
        default=d.short_side,
        help="cap on the shorter side in pixels, never upscaled; 0 keeps sizes (default %(default)s)",
    )
    g.add_argument("--codec", choices=sorted(CODECS), default=d.codec, help="stored codec (default %(default)s)")
    g.add_argument("--gop", type=int, default=d.gop, help="keyframe interval in frames (default %(default)s)")
    g.add_argument("--quality", type=int, help="CRF (vp9, h264) or qscale (mjpeg); default per codec")
    g.add_argument(
        "--min-frames",
        type=int,
        default=d.min_frames,
        help="reject videos shorter than this after resampling (default %(default)s)",
    )
    g = p.add_argument_group("shards")
    g.add_argument("--shard-size", type=parse_size, default="1GB", help="about this many bytes per tar (default 1GB)")
    g.add_argument(
        "--videos-per-shard", type=int, help="exact videos per tar, overriding --shard-size (default: by size)"
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the video-to-shard shuffle (default %(default)s)")
    g.add_argument("--overwrite", action="store_true", help="delete what OUT holds for these splits first")
    g = p.add_argument_group("execution")
    g.add_argument(
        "--workers", type=int, default=os.cpu_count(), help="processes (per array task on SLURM); default: the CPUs"
    )
    g.add_argument(
        "--executor",
        choices=["local", "slurm"],
        default="local",
        help="local processes, or a submitit job array on SLURM (default %(default)s)",
    )
    g.add_argument("--partition", help="SLURM partition (default: the cluster's default partition)")
    g.add_argument("--time", type=int, default=240, help="SLURM time limit per array task, minutes")
    g.add_argument("--array-tasks", type=int, default=32, help="SLURM array size (at most one per shard)")
    g.add_argument("--mem-gb", type=float, help="SLURM memory per array task in GB (default: the partition's)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars (nor progress lines in a log file)")
    return p


def summary_table(manifests: list[dict], paths: list[Path], seconds: float) -> str:
    rows = [("split", "ok", "failed", "missing", "shards", "GB")]
    for m in manifests:
        size = sum(s["bytes"] for s in m["shards"]) / 1e9
        rows.append((m["split"], m["ok"], len(m["failed"]), len(m["missing"]), len(m["shards"]), f"{size:.3f}"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).rjust(w) for c, w in zip(r, widths)) for r in rows]
    reasons = Counter(f["reason"].split(" (")[0].split(":")[0] for m in manifests for f in m["failed"])
    if reasons:
        lines.append("failures: " + "; ".join(f"{n} x {r}" for r, n in reasons.most_common(6)))
    lines.append(f"done in {seconds:.1f} s; manifests: " + ", ".join(map(str, paths)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    args = build_parser().parse_args(argv)
    start = time.time()
    try:
        if not args.root.is_dir():
            raise DatasetError(f"--root {args.root} is not a folder")
        splits = args.splits.split(",") if args.splits else DEFAULT_SPLITS[args.dataset]
        if args.dataset == "kinetics" and not args.splits and (args.root / "annotations" / "test.csv").is_file():
            splits = splits + ["test"]
        reader = READERS[args.dataset]
        listing = reader(args.root, splits) if args.dataset == "kinetics" else reader(args.root, splits, args.fold)
        settings = JobSettings(
            encode=EncodeSettings(
                fps=args.fps,
                short_side=args.short_side,
                codec=args.codec,
                gop=args.gop,
                quality=args.quality,
                min_frames=args.min_frames,
            ),
            shard_bytes=args.shard_size,
            videos_per_shard=args.videos_per_shard,
            seed=args.seed,
        )
        assignments = [
            load_or_assign(listing, s, args.root, args.out, settings, args.workers, args.overwrite) for s in splits
        ]
        if args.executor == "local":
            for assignment in assignments:
                run_shards(
                    args.out, assignment, pending_shards(assignment, args.out), args.workers, not args.no_progress
                )
        else:
            jobs = array.submit(
                args.out,
                assignments,
                cluster="slurm",
                tasks=args.array_tasks,
                workers=args.workers,
                partition=args.partition,
                time_min=args.time,
                mem_gb=args.mem_gb,
            )
            if jobs:
                print(
                    f"submitted array {jobs[0].job_id.split('_')[0]} ({len(jobs)} tasks); "
                    f"logs in {jobs[0].paths.folder.parent}; follow with: squeue -j {jobs[0].job_id.split('_')[0]}"
                )
                errors = array.wait(jobs, progress=not args.no_progress)
                if errors:
                    log.error("%s", "\n".join(["some array tasks failed:"] + errors))
                    return 1
        manifests = [finish_split(args.out, assignment, listing.labels) for assignment in assignments]
    except (DatasetError, AssignmentMismatch, ValueError, RuntimeError, OSError) as e:
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        log.warning("interrupted: finished shards are kept; run the same command again to resume")
        return 130
    paths = [split_paths(args.out, assignment.split)["manifest"] for assignment in assignments]
    print(summary_table(manifests, paths, time.time() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
