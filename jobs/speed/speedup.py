"""``python -m jobs.speed.speedup video.mp4 --checkpoint CKPT --rate 2.0 -o out.mp4``: SpeedNet's
adaptive speedup (section 4): faster where motion would still look natural, slower where it would not.

1. ``jobs.speed.analysis.analyse``: P(normal) per frame of the video played at X^i.
2. ``jobs.speed.speed_curves.choose_rho``: of rho in {0.1, ..., 0.9}, the threshold whose speedup
   vector V(t) comes closest to the target rate on its own.
3. ``jobs.speed.solver.smooth_speedup``: the smooth S(t) meeting the rate exactly (the energies
   are stated there).
4. ``jobs.speed.retime``: the re-timed video, lasting exactly input / rate, and beside it the
   uniformly sped-up video of the same length (``--uniform``, default OUT_STEM-uniform.mp4), and a PNG of V(t)
   and S(t) (``--plot``, default OUT_STEM-speedup.png).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

from jobs.argtypes import non_negative_float
from jobs.speed import report, retime, speed_curves
from jobs.speed.analysis import add_model_arguments, analyse, load_speednet
from jobs.speed.solver import Infeasible, overall_rate, smooth_speedup
from pipeline import logs
from pipeline.decode import decoded_frames
from pipeline.device import add_device_option, apply_device_option, torch_device
from pipeline.help_format import HelpFormatter
from pipeline.shards import ShardIndex

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jobs.speed.speedup", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    add_model_arguments(p)
    p.add_argument("--rate", type=float, default=2.0, help="overall speedup R_o (default %(default)s)")
    p.add_argument("-o", "--out", type=Path, required=True, help="the adaptively sped-up video (.mp4)")
    p.add_argument("--uniform", type=Path, help="the uniformly sped-up video (default OUT_STEM-uniform.mp4)")
    p.add_argument("--plot", type=Path, help="PNG of V(t) and S(t) (default OUT_STEM-speedup.png)")
    p.add_argument("--alpha", type=non_negative_float, default=50.0, help="smoothness weight (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print a JSON summary (and nothing else on stdout)")
    add_device_option(p)
    args = p.parse_args(argv)
    apply_device_option(args)
    logs.configure(quiet=args.json)
    device = torch_device()
    uniform = args.uniform or args.out.with_name(f"{args.out.stem}-uniform.mp4")
    plot_path = args.plot or args.out.with_name(f"{args.out.stem}-speedup.png")
    try:
        if args.rate < 1:
            raise ValueError(f"--rate must be at least 1, got {args.rate}")
        net = load_speednet(args.checkpoint, device)
        with tempfile.TemporaryDirectory(prefix="speedrep-speedup-") as work:
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
            rho, V = speed_curves.choose_rho(a.curves, a.factors, args.rate)
            S = smooth_speedup(V, args.rate, alpha=args.alpha)
            _, data = ShardIndex(a.tars).read(0)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            written = {}
            for name, curve, path in (("adaptive", S, args.out), ("uniform", np.full(a.frames, args.rate), uniform)):
                source, fps_out = retime.frame_sources(curve, a.fps, rate=args.rate)
                n = retime.write(decoded_frames(data), source, fps_out, path)
                written[name] = {"path": str(path), "frames": n, "fps": str(fps_out), "seconds": float(n / fps_out)}
    except (ValueError, Infeasible) as e:
        log.error("%s", e)
        return 2
    report.plot_speedup(V, S, a.fps, args.rate, rho, plot_path)
    summary = {
        "video": str(args.video),
        "frames": a.frames,
        "fps": a.fps,
        "input_seconds": a.frames / a.fps,
        "rate": args.rate,
        "rho": rho,
        "v_rate": float(overall_rate(V)),
        "s_rate": float(overall_rate(S)),
        "s_min": float(S.min()),
        "s_max": float(S.max()),
        **written,
        "plot": str(plot_path),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"{args.video}: {a.frames} frames, {summary['input_seconds']:.2f} s; rho {rho:.1f} (V alone "
        f"{summary['v_rate']:.2f}x), S from {S.min():.2f}x to {S.max():.2f}x, overall {summary['s_rate']:.4f}x"
    )
    for name in ("adaptive", "uniform"):
        w = written[name]
        print(f"  {name:8s} {w['path']}: {w['frames']} frames, {w['seconds']:.3f} s")
    print(f"  plot     {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
