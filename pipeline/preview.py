"""``python -m pipeline.preview SHARDS --plan speednet --batches 2 --out DIR``: see what the model sees.

Runs the loader exactly as training would (same plan, augmentation and seed) but keeps the frames
as uint8, then writes per batch a PNG contact sheet (one row per clip: key, role, speed and frame
indices, then its frames) and an ``.npz`` with the frames, their sample keys and frame indices.
``--no-augment`` shows the decoded frames before any spatial augmentation, at the stored size.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline import logs
from pipeline.augment import AugmentConfig
from pipeline.batches import Batch
from pipeline.help_format import HelpFormatter
from pipeline.loader import DEFAULT_AUGMENT, VideoLoader
from pipeline.plans import PLANS

LABEL_WIDTH = 260

log = logging.getLogger(__name__)


def contact_sheet(clips: list[np.ndarray], captions: list[str], max_frames: int = 8, cell: int = 96) -> Image.Image:
    """One row per clip: its caption, then up to ``max_frames`` evenly chosen frames, each ``cell`` px high."""
    rows = []
    for clip, caption in zip(clips, captions):
        pick = np.linspace(0, len(clip) - 1, min(max_frames, len(clip))).round().astype(int)
        h, w = clip.shape[1:3]
        size = (max(1, round(w * cell / h)), cell)
        frames = [Image.fromarray(clip[i]).resize(size, Image.BILINEAR) for i in pick]
        row = Image.new("RGB", (LABEL_WIDTH + sum(f.width + 2 for f in frames), cell + 4), "white")
        ImageDraw.Draw(row).multiline_text((4, 4), caption, fill="black")
        x = LABEL_WIDTH
        for f in frames:
            row.paste(f, (x, 2))
            x += f.width + 2
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height
    return sheet


def caption(batch: Batch, c: int) -> str:
    idx = batch.indices[c].tolist()
    shown = ",".join(map(str, idx[:6])) + (",..." if len(idx) > 6 else "")
    return (
        f"{batch.keys[c][:34]}\n{batch.label[c] or '(no label)'}\n"
        f"{batch.role[c]}  speed {float(batch.speed[c]):.2f}\nframes {shown}"
    )


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    p = argparse.ArgumentParser(
        prog="python -m pipeline.preview", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("shards", help="split folder, glob of .tar files, or manifest.json")
    p.add_argument("--plan", choices=sorted(PLANS), default="rspnet", help="the frame-index plan, as training uses it")
    p.add_argument("--batches", type=int, default=2, help="batches to write")
    p.add_argument("--batch-size", type=int, default=4, help="videos per batch")
    p.add_argument("--out", type=Path, required=True, help="folder for the PNG and .npz files")
    p.add_argument("--no-augment", action="store_true", help="decoded frames at the stored size, no augmentation")
    p.add_argument("--seed", type=int, default=0, help="seed of the plan's and the augmentation's draws")
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "gpu"],
        default="auto",
        help="where to decode (auto: the GPU if there is one)",
    )
    args = p.parse_args(argv)
    try:
        augment = AugmentConfig("none") if args.no_augment else DEFAULT_AUGMENT[args.plan]
        loader = VideoLoader(
            args.shards,
            plan=args.plan,
            augment=augment,
            batch_size=args.batch_size,
            device=args.device,
            seed=args.seed,
            normalise_pixels=False,
        )
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        log.error("%s", e)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    written = 0
    for b, batch in enumerate(loader):
        if b == args.batches:
            break
        video = batch.video
        clips = (
            [c.cpu().numpy() for sample in video for c in sample]
            if isinstance(video, list)
            else list(video.cpu().numpy())
        )
        stem = args.out / f"{args.plan}-batch{b:03d}"
        contact_sheet(clips, [caption(batch, c) for c in range(len(clips))]).save(stem.with_suffix(".png"))
        arrays = {
            "keys": np.array(batch.keys),
            "indices": batch.indices.numpy(),
            "speed": batch.speed.numpy(),
            "role": np.array(batch.role),
        }
        if isinstance(video, list):  # sizes differ without augmentation: one array per clip
            arrays.update({f"frames_{c:03d}": clip for c, clip in enumerate(clips)})
        else:
            arrays["frames"] = np.stack(clips)
        np.savez_compressed(stem.with_suffix(".npz"), **arrays)
        written += 1
        print(f"wrote {stem}.png and {stem.name}.npz ({len(clips)} clips)")
    if loader.dropped:
        log.warning(
            "dropped %d samples: %s",
            len(loader.dropped),
            "; ".join(f"{d['key']}: {d['reason']}" for d in loader.dropped[:5]),
        )
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
