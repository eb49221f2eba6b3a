"""``python -m jobs.cam video.mp4 --checkpoint CKPT``: where a model looks (class-activation maps).

SpeedNet (section 5.5): the last conv feature map (T' x N x N x C) of each 16-frame window is reduced
to T' x N x N by W, the 1x1 conv that maps features to the "sped up" logit. RSPNet (section 4.4, eq.
4): the similarity activation map ((W g(x_j))' W) F_i of a window i against a partner clip j (here the
next window of the same video; the last window takes the one before), with W the linear projection
head g_m (``--head m``, motion) or g_a (``--head a``, appearance); it needs linear heads
(``model.options.head_hidden = 0``), as the paper's. Maps are upsampled to the window's frames and
pixels. By default the absolute value is normalised to [0, 1] over the whole video (which regions
matter, SpeedNet figure 8); ``--signed`` keeps the sign, scaled to [-1, 1] (SpeedNet: red evidence
for "sped up", blue for "normal", figure 9). Writes the heat maps over the frames the network saw (centre crop ``--size``)
as ``OUT/cam.mp4`` and, unless ``--no-png``, ``OUT/frames/frame-NNNNNN.png``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from jobs import checkpoint, retime
from jobs.embed import loader_device
from jobs.speediness import add_model_arguments, normalise
from pipeline.augment import IMAGENET_MEAN, IMAGENET_STD, AugmentConfig
from pipeline.loader import VideoLoader
from pipeline.shards import ShardIndex


def unnormalise(clips: torch.Tensor) -> np.ndarray:
    """The loader's normalised (N, 3, T, H, W) clips back to the uint8 (N, T, H, W, 3) frames they were
    made from (to rounding): the frames the network saw, without decoding the video a second time."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    rgb = (clips.float().cpu() * std + mean).round().clamp(0, 255).to(torch.uint8)
    return rgb.permute(0, 2, 3, 4, 1).numpy()


def normalise_maps(maps: np.ndarray, signed: bool) -> np.ndarray:
    """|maps| / max |maps| in [0, 1], or maps / max |maps| in [-1, 1] when ``signed``; all zero stays zero."""
    scale = float(np.abs(maps).max())
    scaled = maps / scale if scale > 0 else np.zeros_like(maps)
    return scaled if signed else np.abs(scaled)


def overlay(frames: np.ndarray, maps: np.ndarray, signed: bool, opacity: float = 0.5) -> np.ndarray:
    """(N, H, W, 3) uint8 frames with (N, H, W) maps blended in: jet for [0, 1], blue-white-red for [-1, 1]."""
    from matplotlib import colormaps

    if signed:
        colours = colormaps["bwr"]((maps + 1) / 2)[..., :3]
    else:
        colours = colormaps["jet"](maps)[..., :3]
    return np.clip((1 - opacity) * frames + opacity * 255 * colours, 0, 255).astype(np.uint8)


def map_function(path: Path, head: str, device: str):
    """(N, 3, T, H, W) clips -> (N, T', H', W') activation maps, for the model in checkpoint ``path``."""
    if not Path(path).is_file():
        raise ValueError(f"no checkpoint at {path}")
    model, config = checkpoint.load_pretext(Path(path))
    model.to(device).eval()
    if config.model.method == "speednet":
        return model.net.activation_map
    projection = model.g_m if head == "m" else getattr(model, "g_a", None)
    if not isinstance(projection, torch.nn.Linear):
        raise ValueError(f"RSPNet CAM needs a linear g_{head} head (model.options.head_hidden = 0), "
                         f"this checkpoint's is {type(projection).__name__}")

    def similarity_maps(clips: torch.Tensor) -> torch.Tensor:
        F_i = model.backbone.forward_features(clips)  # (N, C, T', H', W')
        e = projection(F_i.mean(dim=(2, 3, 4)))  # W x + b of every window
        partner = torch.cat([e[1:], e[-2:-1]]) if len(e) > 1 else e  # the next window; the last: the one before
        return torch.einsum("nd,dc,nc...->n...", partner, projection.weight, F_i)

    return similarity_maps


@torch.no_grad()
def activation_maps(maps_of, tars: list[Path], *, T: int = 16, size: int = 224, device: str = "cpu"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(frames (F, size, size, 3) uint8, maps (F, size, size) float) over consecutive windows of T frames;
    ``maps_of`` takes a batch of clips to their (n, T', H', W') maps."""
    options = {"T": T, "stride": T, "rate": 1.0}
    common = dict(plan="sliding", plan_options=options, augment=AugmentConfig("eval", out=size), batch_size=1,
                  device=loader_device(device), shuffle=False)
    (clips, batch), = list(VideoLoader(tars, **common))
    act = maps_of(clips.to(device)).float()  # (n, T', H', W'), all windows at once: RSPNet pairs neighbours
    maps = F.interpolate(act[:, None], size=(T, size, size), mode="trilinear", align_corners=False)[:, 0].cpu()
    maps = maps.numpy().reshape(-1, size, size)
    frames = unnormalise(clips).reshape(-1, size, size, 3)
    # windows stop where a whole one no longer fits; padded frames past the end are dropped
    count = min(len(frames), int(batch["indices"].max()) + 1)
    return frames[:count], maps[:count]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.cam", description=__doc__.split("\n\n")[0])
    add_model_arguments(p, stride=False, checkpoint_help="a SpeedNet or RSPNet checkpoint (jobs.pretrain)")
    p.add_argument("--head", choices=("m", "a"), default="m", help="RSPNet: the motion (g_m) or appearance (g_a) head")
    p.add_argument("--signed", action="store_true", help="keep the sign: red = sped up, blue = normal")
    p.add_argument("--out", type=Path, help="output folder (default VIDEO_STEM-cam/)")
    p.add_argument("--no-png", action="store_true", help="only the video, no PNG per frame")
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = args.out or Path(f"{args.video.stem}-cam")
    try:
        maps_of = map_function(args.checkpoint, args.head, device)
        with tempfile.TemporaryDirectory(prefix="speedrep-cam-") as work:
            tars = normalise(args.video, Path(work))
            fps = ShardIndex(tars).read_meta(0).fps
            frames, maps = activation_maps(maps_of, tars, T=args.frames, size=args.size, device=device)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    heat = overlay(frames, normalise_maps(maps, args.signed), args.signed)
    out.mkdir(parents=True, exist_ok=True)
    retime.write(iter(heat), np.arange(len(heat)), Fraction(fps).limit_denominator(1001), out / "cam.mp4")
    if not args.no_png:
        from PIL import Image

        (out / "frames").mkdir(exist_ok=True)
        for i, image in enumerate(heat):
            Image.fromarray(image).save(out / "frames" / f"frame-{i:06d}.png")
    kind = "signed, scaled to [-1, 1]" if args.signed else "absolute, normalised to [0, 1]"
    print(f"{args.video}: {len(heat)} frames of {kind} activation maps -> {out}/cam.mp4"
          + ("" if args.no_png else f", {out}/frames/"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
