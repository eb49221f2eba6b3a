"""``python -m jobs.speed.speediness video.mp4 --checkpoint CKPT``: how fast things move in a video,
frame by frame, relative to their natural speed, and where it is slow motion (SpeedNet 4.1, 5.2).

The video is played at X^i, X = 1.25, i = 0..10, and a trained SpeedNet scores its sliding windows
(``jobs.speed.analysis``); the curves, the speedup vector at rho = 0.5, the speediness 1 / V_0.5 and
the slow-motion segments (``jobs.speed.speed_curves`` defines them) are written to
``OUT/curves.csv``, ``OUT/summary.json`` and ``OUT/speediness.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from jobs.speed import report, speed_curves
from jobs.speed.analysis import add_model_arguments, analyse, load_speednet
from pipeline import logs
from pipeline.device import add_device_option, apply_device_option, torch_device
from pipeline.help_format import HelpFormatter

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jobs.speed.speediness", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    add_model_arguments(p)
    p.add_argument(
        "--slow-factor",
        type=float,
        default=1.9,
        help="slow motion: still normal when sped up this much (default 1.9, about 2x)",
    )
    p.add_argument("--out", type=Path, help="output folder (default VIDEO_STEM-speediness/)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (and nothing else on stdout)")
    add_device_option(p)
    args = p.parse_args(argv)
    apply_device_option(args)
    logs.configure(quiet=args.json)
    device = torch_device()
    out = args.out or Path(f"{args.video.stem}-speediness")
    try:
        net = load_speednet(args.checkpoint, device)
        with tempfile.TemporaryDirectory(prefix="speedrep-speediness-") as work:
            a = analyse(
                net,
                args.video,
                Path(work),
                T=args.frames,
                stride=args.stride,
                size=args.size,
                device=device,
                progress=not args.json,
            )
    except ValueError as e:
        log.error("%s", e)
        return 2
    segments = speed_curves.slow_segments(a.curves, a.factors, args.slow_factor, min_frames=args.frames // 2)
    out.mkdir(parents=True, exist_ok=True)
    report.write_csv(a, out / "curves.csv")
    report.plot_speediness(a, segments, f"speediness of {args.video.name}", out / "speediness.png")
    summary = {
        "video": str(args.video),
        "fps": a.fps,
        "frames": a.frames,
        "rates": a.factors.tolist(),
        "mean_speediness": float(speed_curves.speediness(a.curves, a.factors).mean()),
        "slow_motion": [
            {"start_frame": s, "end_frame": e, "start_time": s / a.fps, "end_time": e / a.fps} for s, e in segments
        ],
        "csv": str(out / "curves.csv"),
        "plot": str(out / "speediness.png"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{args.video}: {a.frames} frames at {a.fps:g} fps, mean speediness {summary['mean_speediness']:.2f}")
    for seg in summary["slow_motion"]:
        print(f"  slow motion {seg['start_time']:.2f}-{seg['end_time']:.2f} s")
    if not segments:
        print("  no slow motion found")
    print(f"wrote {out}/curves.csv, speediness.png, summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
