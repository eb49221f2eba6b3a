"""Class-activation maps: where a model looks, window by window, over a whole video.

SpeedNet (section 5.5): the last conv feature map (T' x N x N x C) of each 16-frame window is reduced
to T' x N x N by W, the 1x1 conv that maps features to the "sped up" logit. RSPNet (section 4.4, eq.
4): the similarity activation map ((W g(x_j))' W) F_i of a window i against a partner clip j (here the
next window of the same video; the last window takes the one before), with W the linear projection
head g_m (``head="m"``, motion) or g_a (``head="a"``, appearance); it needs linear heads
(``model.options.head_hidden = 0``), as the paper's. Maps are upsampled to the window's frames and
pixels. By default the absolute value is normalised to [0, 1] over the whole video (which regions
matter, SpeedNet figure 8); ``signed`` keeps the sign, scaled to [-1, 1] (SpeedNet: red evidence
for "sped up", blue for "normal", figure 9).

The video is read twice, a bounded chunk of windows at a time (maps first, then frames to blend
them into), so memory does not grow with its length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.trained import load_trained
from pipeline.augment import IMAGENET_MEAN, IMAGENET_STD
from pipeline.windows import video_windows


def unnormalise(clips: torch.Tensor) -> np.ndarray:
    """The loader's normalised (N, 3, T, H, W) clips back to the uint8 (N, T, H, W, 3) frames they were
    made from (to rounding): the frames the network saw, without decoding the video a second time."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1)
    rgb = (clips.float().cpu() * std + mean).round().clamp(0, 255).to(torch.uint8)
    return rgb.permute(0, 2, 3, 4, 1).numpy()


def normalise_maps(maps: np.ndarray, signed: bool, scale: float | None = None) -> np.ndarray:
    """|maps| / max |maps| in [0, 1], or maps / max |maps| in [-1, 1] when ``signed``; all zero stays
    zero. ``scale``: the max |maps| to use (a whole video's, when ``maps`` is part of it)."""
    scale = float(np.abs(maps).max()) if scale is None else scale
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


@dataclass
class Cam:
    """A checkpoint's activation maps in two stages, so that a long video can be read a chunk of
    windows at a time: ``embed`` each window's clip (what it needs of the window alone), then
    ``maps`` of all windows together (RSPNet pairs each window with the next)."""

    embed: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]
    maps: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, H, W) clips of consecutive windows -> (N, T', H', W') activation maps."""
        return self.maps(*self.embed(clips))


def map_function(path: Path, head: str, device: str) -> Cam:
    """The activation maps of the model in checkpoint ``path``."""
    trained = load_trained(path)
    model = trained.pretext.to(device).eval()
    if trained.method == "speednet":
        return Cam(embed=lambda clips: (model.net.activation_map(clips), None), maps=lambda act, _: act)
    projection = model.g_m if head == "m" else getattr(model, "g_a", None)
    if not isinstance(projection, torch.nn.Linear):
        raise ValueError(
            f"RSPNet CAM needs a linear g_{head} head (model.options.head_hidden = 0), "
            f"this checkpoint's is {type(projection).__name__}"
        )

    def embed(clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        F_i = model.backbone.forward_features(clips)  # (N, C, T', H', W')
        return F_i, projection(F_i.mean(dim=(2, 3, 4)))  # and W x + b of every window

    def similarity_maps(F_i: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        partner = torch.cat([e[1:], e[-2:-1]]) if len(e) > 1 else e  # the next window; the last: the one before
        return torch.einsum("nd,dc,nc...->n...", partner, projection.weight, F_i)

    return Cam(embed, similarity_maps)


def _windows(tars: list[Path], T: int, size: int, device: str, memory_mb: float):
    """Consecutive T-frame windows of the video, as loader batches of a bounded number of windows."""
    return video_windows(tars, T=T, stride=T, rate=1.0, size=size, device=device, memory_mb=memory_mb)


@torch.no_grad()
def activation_maps(
    cam: Cam, tars: list[Path], *, T: int = 16, size: int = 224, device: str = "cpu", memory_mb: float = 512
) -> tuple[torch.Tensor, int]:
    """The maps (W, T', H', W') of every consecutive T-frame window, at the network's resolution,
    and how many frames they cover (whole windows only: padded frames past the end are not)."""
    parts, vectors, last = [], [], 0
    for batch in _windows(tars, T, size, device, memory_mb):
        features, vector = cam.embed(batch.video.to(device))
        parts.append(features.float().cpu())
        vectors.append(None if vector is None else vector.float().cpu())
        last = int(batch.indices.max())
    features = torch.cat(parts)
    return cam.maps(features, None if vectors[0] is None else torch.cat(vectors)), last + 1


def upsample(maps: torch.Tensor, T: int, size: int) -> np.ndarray:
    """(n, T', H', W') maps -> (n * T, size, size), one per frame of the windows."""
    up = F.interpolate(maps[:, None].float(), size=(T, size, size), mode="trilinear", align_corners=False)
    return up[:, 0].numpy().reshape(-1, size, size)


def window_frames(
    tars: list[Path], *, T: int = 16, size: int = 224, device: str = "cpu", memory_mb: float = 512
) -> Iterator[np.ndarray]:
    """Each window's frames as the network saw them, (T, size, size, 3) uint8, window by window."""
    for batch in _windows(tars, T, size, device, memory_mb):
        yield from unnormalise(batch.video)


def heat_frames(
    tars: list[Path],
    maps: torch.Tensor,
    count: int,
    *,
    T: int,
    size: int,
    signed: bool,
    device: str = "cpu",
    memory_mb: float = 512,
) -> Iterator[np.ndarray]:
    """The ``count`` frames the network saw with their maps blended in, frame by frame (the video is
    decoded a second time rather than held: memory stays bounded). Maps are scaled by their largest
    magnitude over the whole video (trilinear upsampling never exceeds it)."""
    scale = float(maps.abs().max())
    frames = (
        frame for window in window_frames(tars, T=T, size=size, device=device, memory_mb=memory_mb) for frame in window
    )
    for part in torch.split(maps, 64):
        for heat in overlay(
            np.stack([next(frames) for _ in range(len(part) * T)]),
            normalise_maps(upsample(part, T, size), signed, scale),
            signed,
        ):
            if count <= 0:
                return
            count -= 1
            yield heat
