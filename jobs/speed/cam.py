"""``python -m jobs.speed.cam video.mp4 --checkpoint CKPT``: where a model looks (class-activation
maps, ``jobs.speed.activation_maps``), as a video of heat maps over the frames the network saw
(centre crop ``--size``): ``OUT/cam.mp4`` and, unless ``--no-png``, ``OUT/frames/frame-NNNNNN.png``.
By default the absolute value, normalised to [0, 1] over the whole video (which regions matter,
SpeedNet figure 8); ``--signed`` keeps the sign, scaled to [-1, 1] (red evidence for "sped up", blue
for "normal", figure 9). RSPNet needs linear heads (``model.options.head_hidden = 0``); ``--head``
picks the motion (m) or appearance (a) one.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from jobs.speed import retime
from jobs.speed.activation_maps import activation_maps, heat_frames, map_function
from jobs.speed.analysis import add_model_arguments, normalised_video
from pipeline import logs
from pipeline.device import add_device_option, apply_device_option, torch_device
from pipeline.help_format import HelpFormatter
from pipeline.shards import ShardIndex

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    p = argparse.ArgumentParser(
        prog="python -m jobs.speed.cam", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    add_model_arguments(p, stride=False, checkpoint_help="a SpeedNet or RSPNet checkpoint (jobs.pretrain)")
    p.add_argument("--head", choices=("m", "a"), default="m", help="RSPNet: the motion (g_m) or appearance (g_a) head")
    p.add_argument("--signed", action="store_true", help="keep the sign: red = sped up, blue = normal")
    p.add_argument("--out", type=Path, help="output folder (default VIDEO_STEM-cam/)")
    p.add_argument("--no-png", action="store_true", help="only the video, no PNG per frame")
    add_device_option(p)
    args = p.parse_args(argv)
    apply_device_option(args)
    device = torch_device()
    out = args.out or Path(f"{args.video.stem}-cam")
    try:
        cam = map_function(args.checkpoint, args.head, device)
        with tempfile.TemporaryDirectory(prefix="speedrep-cam-") as work:
            tars = normalised_video(args.video, Path(work))
            fps = ShardIndex(tars).read_meta(0).fps
            maps, count = activation_maps(cam, tars, T=args.frames, size=args.size, device=device)
            out.mkdir(parents=True, exist_ok=True)
            if not args.no_png:
                (out / "frames").mkdir(exist_ok=True)
            heat = heat_frames(tars, maps, count, T=args.frames, size=args.size, signed=args.signed, device=device)
            retime.write(
                _saving_pngs(heat, None if args.no_png else out / "frames"),
                np.arange(count),
                Fraction(fps).limit_denominator(1001),
                out / "cam.mp4",
            )
    except ValueError as e:
        log.error("%s", e)
        return 2
    kind = "signed, scaled to [-1, 1]" if args.signed else "absolute, normalised to [0, 1]"
    print(
        f"{args.video}: {count} frames of {kind} activation maps -> {out}/cam.mp4"
        + ("" if args.no_png else f", {out}/frames/")
    )
    return 0


def _saving_pngs(frames: Iterator[np.ndarray], folder: Path | None) -> Iterator[np.ndarray]:
    """``frames`` passed on, each also saved as ``folder/frame-NNNNNN.png`` (none when folder is None)."""
    from PIL import Image

    for i, frame in enumerate(frames):
        if folder is not None:
            Image.fromarray(frame).save(folder / f"frame-{i:06d}.png")
        yield frame


if __name__ == "__main__":
    sys.exit(main())
