"""``python -m jobs.speediness video.mp4 --checkpoint CKPT``: how fast things move in a video, frame by
frame, relative to their natural speed, and where it is slow motion (SpeedNet sections 4.1, 5.2).

The video is normalised (constant 25 fps, its own size) and played at X^i, X = 1.25, i = 0..10; a
trained SpeedNet scores sliding windows of each version (P(normal), centre crop ``--size``); the
curves, the speedup vector at rho = 0.5, the speediness 1 / V_0.5 and the slow-motion segments are
written to ``OUT/curves.csv``, ``OUT/summary.json`` and ``OUT/speediness.png`` (``jobs.speed_curves``
defines them). A rate whose 16-frame window does not fit in the video counts as "sped up" (not
normal) everywhere: the video is too short to show at that rate.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jobs import checkpoint, speed_curves
from jobs.argtypes import positive_int
from jobs.embed import video_windows
from jobs.logbook import save_figure
from jobs.shard.files import shard_video
from jobs.shard.transcode import EncodeSettings
from pipeline.shards import ShardIndex

# Every frame kept (short side uncapped) so the speedup can be rendered at the input's size; MJPEG
# encodes fast and both DALI back ends decode it.
ANALYSIS_ENCODE = EncodeSettings(short_side=0, codec="mjpeg", min_frames=1)


@dataclass
class Analysis:
    """Everything the speediness and speedup commands report about one video."""

    tars: list[Path]  # the normalised video, one sample
    fps: float
    frames: int
    factors: np.ndarray  # (k+1,) X^i
    curves: np.ndarray  # (k+1, frames) P(normal) of the video at X^i, per input frame


def load_speednet(path: Path, device: str):
    model, config = checkpoint.load_pretext(path)
    if config.model.method != "speednet":
        raise ValueError(f"{path} is a {config.model.method} model: speediness needs a SpeedNet checkpoint")
    return model.net.to(device).eval()


def normalise(video: Path, work: Path) -> list[Path]:
    return shard_video(video, work, ANALYSIS_ENCODE)


@torch.no_grad()
def analyse(speednet, video: Path, work: Path, *, T: int = 16, stride: int = 4, size: int = 224,
            device: str = "cpu", max_clips: int = 32, progress: bool = False) -> Analysis:
    """P(normal) per input frame of ``video`` played at each rate X^i."""
    tars = normalise(video, work)
    meta = ShardIndex(tars).read_meta(0)
    factors = speed_curves.rates()
    curves = np.zeros((len(factors), meta.frames))
    for i, rate in enumerate(factors):
        if (T - 1) * rate + 1 > meta.frames:
            continue  # too short to show at this rate: stays "sped up"
        p_normal, middles = [], []
        for clips, batch in video_windows(tars, T=T, stride=stride, rate=float(rate), size=size, device=device):
            logits = torch.cat([speednet(part.to(device)) for part in torch.split(clips, max_clips)])
            p_normal.append(torch.sigmoid(-logits.float()).cpu().numpy())
            indices = batch["indices"].numpy()
            middles.append((indices[:, 0] + indices[:, -1]) / 2)
        curves[i] = speed_curves.frame_curve(np.concatenate(middles), np.concatenate(p_normal), meta.frames)
        if progress:
            print(f"  rate {rate:.2f}: mean P(normal) {curves[i].mean():.2f}", file=sys.stderr)
    return Analysis(tars, meta.fps, meta.frames, factors, curves)


def write_csv(a: Analysis, path: Path) -> None:
    V = speed_curves.speedup_vector(a.curves, a.factors, 0.5)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "time_s", *[f"p_normal_x{r:.3f}" for r in a.factors], "v_rho_0.5", "speediness"])
        for t in range(a.frames):
            w.writerow([t, f"{t / a.fps:.4f}", *[f"{p:.4f}" for p in a.curves[:, t]], f"{V[t]:.4f}", f"{1 / V[t]:.4f}"])
    tmp.replace(path)


def plot(a: Analysis, segments: list[tuple[int, int]], title: str, path: Path) -> None:
    """P(normal) at every rate as an image over time, and the speediness curve with slow motion shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(a.frames) / a.fps
    fig, axes = plt.subplots(2, 2, figsize=(10, 5.5), height_ratios=[1.2, 1], width_ratios=[40, 1])
    (top, bar), (bottom, spare) = axes
    spare.axis("off")
    bottom.sharex(top)
    im = top.imshow(a.curves, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1,
                    extent=(0, a.frames / a.fps, -0.5, len(a.factors) - 0.5), interpolation="nearest")
    top.set_yticks(range(len(a.factors)), [f"{r:.2f}x" for r in a.factors], fontsize=7)
    top.set_ylabel("video played at")
    top.set_title(title, fontsize=10)
    fig.colorbar(im, cax=bar, label="P(normal)")
    s = speed_curves.speediness(a.curves, a.factors)
    bottom.plot(t, s, color="tab:blue", lw=1.5)
    for first, end in segments:
        bottom.axvspan(first / a.fps, end / a.fps, color="tab:red", alpha=0.2, lw=0)
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("speediness (1 / V)")
    bottom.set_xlabel("time (s)" + ("; shaded: slow motion" if segments else ""))
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def add_model_arguments(p: argparse.ArgumentParser, *, stride: bool = True,
                        checkpoint_help: str = "a SpeedNet checkpoint (jobs.pretrain)") -> None:
    """The video and model options the speediness, speedup and CAM commands share."""
    p.add_argument("video", type=Path)
    p.add_argument("--checkpoint", type=Path, required=True, help=checkpoint_help)
    p.add_argument("--size", type=positive_int, default=224, help="centre crop side the network sees (default 224)")
    p.add_argument("--frames", type=positive_int, default=16, help="frames per window (default 16)")
    if stride:
        p.add_argument("--stride", type=positive_int, default=4, help="frames between window starts (default 4)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.speediness", description=__doc__.split("\n\n")[0])
    add_model_arguments(p)
    p.add_argument("--slow-factor", type=float, default=1.9,
                   help="slow motion: still normal when sped up this much (default 1.9, about 2x)")
    p.add_argument("--out", type=Path, help="output folder (default VIDEO_STEM-speediness/)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = args.out or Path(f"{args.video.stem}-speediness")
    try:
        net = load_speednet(args.checkpoint, device)
        with tempfile.TemporaryDirectory(prefix="speedrep-speediness-") as work:
            a = analyse(net, args.video, Path(work), T=args.frames, stride=args.stride, size=args.size, device=device,
                        progress=not args.json)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    segments = speed_curves.slow_segments(a.curves, a.factors, args.slow_factor, min_frames=args.frames // 2)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(a, out / "curves.csv")
    plot(a, segments, f"speediness of {args.video.name}", out / "speediness.png")
    summary = {"video": str(args.video), "fps": a.fps, "frames": a.frames, "rates": a.factors.tolist(),
               "mean_speediness": float(speed_curves.speediness(a.curves, a.factors).mean()),
               "slow_motion": [{"start_frame": s, "end_frame": e, "start_time": s / a.fps, "end_time": e / a.fps}
                               for s, e in segments],
               "csv": str(out / "curves.csv"), "plot": str(out / "speediness.png")}
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
