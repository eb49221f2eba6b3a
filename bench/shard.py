"""``python -m bench.shard``: shard job throughput against its ceiling, a plain ffmpeg transcode.

Both sides get the same files, the same number of parallel processes and the same normalisation
(fps filter, area scaling to the same size, the same encoder options); the ffmpeg side writes
loose files and skips everything else the job does (listing, tars, indexes, manifest, checks).
Runs alternate (ceiling, job, ceiling, job, ...) and the best of each is kept, so a noisy machine
affects both alike. The last line is ``videos_per_s=<x> ceiling_ratio=<y>``.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pipeline.normalise import CODECS, EncodeSettings, ffmpeg_command
from pipeline.synthetic.layout import kinetics_from_files


def run_ceiling(commands: list[list[str]], workers: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for result in pool.map(lambda c: subprocess.run(c, capture_output=True), commands):
            if result.returncode:
                raise RuntimeError(f"ffmpeg failed: {result.stderr.decode()[-300:]}")
    return time.perf_counter() - start


def run_job(root: Path, out: Path, settings: EncodeSettings, workers: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "jobs.shard",
            "kinetics",
            "--root",
            str(root),
            "--out",
            str(out),
            "--splits",
            "train",
            "--workers",
            str(workers),
            "--codec",
            settings.codec,
            "--videos-per-shard",
            "16",
            "--overwrite",
            "--no-progress",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.shard", description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", help="glob of source videos (default: a synthetic Kinetics set made here)")
    p.add_argument("--copies", type=int, default=4, help="times each input is listed (default %(default)s)")
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--codec", choices=sorted(CODECS), default=EncodeSettings().codec)
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds; best of each kept")
    args = p.parse_args(argv)
    import imageio_ffmpeg  # dev dependency: an ffmpeg binary independent of the job's PyAV

    settings = EncodeSettings(codec=args.codec)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.inputs:
            files = sorted(glob.glob(args.inputs))
        else:
            from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset

            make_kinetics_dataset(tmp / "synthetic", SyntheticConfig(width=320, height=240, duration_s=4.0))
            files = sorted(glob.glob(str(tmp / "synthetic" / "train" / "*.mp4")))
        if not files:
            print(f"error: no input videos match {args.inputs!r}", file=sys.stderr)
            return 2
        videos = kinetics_from_files(files, args.copies, tmp / "root")
        (tmp / "ceiling").mkdir()
        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        commands = [
            ffmpeg_command(ffmpeg, v, tmp / "ceiling" / f"{v.stem}.{CODECS[args.codec].container}", settings)
            for v in videos
        ]
        ceiling, job = [], []
        for r in range(args.rounds):
            ceiling.append(run_ceiling(commands, args.workers))
            job.append(run_job(tmp / "root", tmp / "out", settings, args.workers))
            print(f"round {r + 1}: ffmpeg {ceiling[-1]:.2f} s, shard job {job[-1]:.2f} s", flush=True)
        n = len(videos)
        job_rate, ceiling_rate = n / min(job), n / min(ceiling)
        print(
            f"{n} videos ({len(files)} files x {args.copies}), codec {args.codec}, {args.workers} workers, "
            f"{os.cpu_count()} cores"
        )
        print(f"{'':>12}{'videos/s':>10}")
        print(f"{'ffmpeg':>12}{ceiling_rate:>10.2f}\n{'shard job':>12}{job_rate:>10.2f}")
        print(f"videos_per_s={job_rate:.3f} ceiling_ratio={job_rate / ceiling_rate:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
