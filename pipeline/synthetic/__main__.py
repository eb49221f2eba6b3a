"""Command line: ``python -m pipeline.synthetic --out DIR`` writes a synthetic Kinetics-layout dataset.

Bad arguments end with one line on stderr and exit status 2, so scripts fail loudly and readably.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipeline import logs
from pipeline.help_format import HelpFormatter

from .dataset import APPEARANCES, SyntheticConfig, make_kinetics_dataset


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _speeds(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        message = f"expected comma-separated numbers such as 1,2, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def _parser() -> argparse.ArgumentParser:
    defaults = SyntheticConfig()
    parser = _Parser(
        prog="python -m pipeline.synthetic",
        description="Render a small deterministic video dataset in the Kinetics layout "
        "(annotations/*.csv, <split>/<id>_<start>_<end>.mp4, synthetic.json ground truth).",
        formatter_class=HelpFormatter,
    )
    add = parser.add_argument
    add("--out", type=Path, help="dataset root to write into (no default: give it or --slow-motion)")
    add(
        "--slow-motion",
        type=Path,
        metavar="MP4",
        help="instead, write one video whose second half is slow motion (camera pan, 2.5x slower) (default: a dataset)",
    )
    add("--seed", type=int, default=defaults.seed, help="random seed (default %(default)s)")
    for split, count in defaults.videos_per_class.items():
        add(
            f"--videos-per-class-{split}",
            type=int,
            default=count,
            metavar="N",
            help=f"videos per class in {split} (default %(default)s)",
        )
    add("--width", type=int, default=defaults.width, help="pixels, even (default %(default)s)")
    add("--height", type=int, default=defaults.height, help="pixels, even (default %(default)s)")
    add("--fps", type=int, default=defaults.fps, help="frame rate (default %(default)s)")
    add("--duration", type=float, default=defaults.duration_s, help="seconds per video (default %(default)s)")
    add(
        "--speeds",
        type=_speeds,
        default=defaults.speeds,
        metavar="S1,S2,...",
        help="playback speeds; each video plays at one of them (default 1)",
    )
    add(
        "--appearance",
        choices=APPEARANCES,
        default=defaults.appearance,
        help="object family: seen, unseen, or mixed = train seen, val/test both (default %(default)s)",
    )
    add("--quiet", action="store_true", help="no progress bar (nor progress lines in a log file)")
    return parser


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    parser = _parser()
    args = parser.parse_args(argv)
    if args.slow_motion:
        from .slowmo import make_slow_motion_video

        info = make_slow_motion_video(
            args.slow_motion, width=args.width, height=args.height, fps=args.fps, seed=args.seed
        )
        print(f"wrote {info['path']}: {info['frames']} frames, slow motion from frame {info['slow_start']}")
        return 0
    if args.out is None:
        parser.error("give --out DIR (a dataset) or --slow-motion FILE.mp4")
    try:
        config = SyntheticConfig(
            videos_per_class={
                "train": args.videos_per_class_train,
                "val": args.videos_per_class_val,
                "test": args.videos_per_class_test,
            },
            width=args.width,
            height=args.height,
            fps=args.fps,
            duration_s=args.duration,
            speeds=args.speeds,
            appearance=args.appearance,
            seed=args.seed,
        )
    except ValueError as error:
        parser.error(str(error))
    start = time.perf_counter()
    truth = make_kinetics_dataset(args.out, config, progress=not args.quiet)
    seconds = time.perf_counter() - start
    print(f"wrote {len(truth['videos'])} videos to {args.out} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
