"""Spatial and colour augmentation parameters: pure, seeded, computed per batch in Python.

The DALI graph only applies them, so augmentation is exact, reproducible, resumable and shared on
purpose: clips with the same ``aug_group`` (RSPNet's c_j and c_k) get the same crop, flip, colour
jitter, grayscale and blur, as the authors' released code cuts c_k from c_j's already-augmented clip.
Each sample is first resized (antialiased) so its short side is ``base`` pixels; each clip is then
cut from that frame by an affine map (crop, scale, flip) to ``out x out`` pixels.

Recipes:
- ``speednet``: one spatial size per batch, uniform in [64, 336] (SpeedNet section 3.2), a random
  square crop of that size; nothing else.
- ``rspnet``: the released code's default (``aug_plus: false``): short side 128, random resized crop
  to 112 (scale 0.4 to 1, ratio 3/4 to 4/3), colour jitter 0.4/0.4/0.4/hue 0.4 always, grayscale
  p 0.2, flip p 0.5, no blur. The paper's text mentions blur: ``blur_p`` 0.5 with the released 3x3
  kernel of sigma 1.5 turns it on (the released ``aug_plus: true`` also sets jitter p 0.8, hue 0.1).
- ``eval``: short side ``out / crop_fraction``, centre crop ``out``. Both papers test on the whole
  centre square (SpeedNet: short side 224, crop 224; RSPNet: the largest centre square resized to
  112), so ``crop_fraction`` is 1; 0.875 gives the ImageNet-style tighter crop.
- ``none``: the stored frames as they are (preview ``--no-augment``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.plans import Clip

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


@dataclass(frozen=True)
class AugmentConfig:
    recipe: str = "rspnet"  # speednet | rspnet | eval | none
    out: int = 112  # output side (rspnet, eval)
    speednet_sizes: tuple[int, int] = (64, 336)
    base: int = 128  # short side before cropping (rspnet)
    scale: tuple[float, float] = (0.4, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.4)  # brightness, contrast, saturation, hue
    jitter_p: float = 1.0
    gray_p: float = 0.2
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (1.5, 1.5)
    blur_kernel: int = 3  # window side in pixels; 0: DALI's default for the sigma (about 6 sigma)
    flip_p: float = 0.5
    crop_fraction: float = 1.0  # eval: the centre crop's share of the short side
    # An antialiased resize of the whole frame before cropping is right for large downscales
    # (336 px shards to RSPNet's 128), but on CPU it costs as much as decoding. False folds the
    # scale into each clip's affine map: one bilinear pass, aliasing when shrinking by 2x or more.
    antialias: bool = True

    def __post_init__(self):
        if self.recipe not in ("speednet", "rspnet", "eval", "none"):
            raise ValueError(f"unknown augmentation recipe {self.recipe!r}")
        if not 0 < self.crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction}")
        if self.blur_kernel < 0 or (self.blur_kernel and self.blur_kernel % 2 == 0):
            raise ValueError(f"blur_kernel must be 0 or an odd number of pixels, got {self.blur_kernel}")

    @property
    def colour(self) -> bool:
        return self.recipe == "rspnet"


@dataclass
class SampleParams:
    """Everything the graph needs for one sample (all its clips)."""

    resize: tuple[int, int]  # (height, width) after the antialiased resize (the stored size: none)
    out: tuple[int, int]  # (height, width) of every clip
    matrix: np.ndarray  # (frames, 2, 3): per-frame destination -> source affine map
    hsv: np.ndarray  # (frames, 3): hue shift (degrees), saturation and value multipliers
    contrast: np.ndarray  # (frames,)
    sigma: np.ndarray  # (frames,): blur sigma, 0 = none


def resized(height: int, width: int, short: int) -> tuple[int, int]:
    s = short / min(height, width)
    return max(1, round(height * s)), max(1, round(width * s))


def crop_matrix(x0: float, y0: float, w: float, h: float, out_w: int, out_h: int, flip: bool) -> np.ndarray:
    """Destination -> source map that takes box (x0, y0, w, h) of the source to an out_w x out_h image."""
    sx, sy = w / out_w, h / out_h
    if flip:
        return np.array([-sx, 0.0, x0 + w, 0.0, sy, y0], np.float32)
    return np.array([sx, 0.0, x0, 0.0, sy, y0], np.float32)


def random_resized_box(h: int, w: int, scale, ratio, rng: np.random.Generator) -> tuple[float, float, float, float]:
    """torchvision's RandomResizedCrop box: area fraction in ``scale``, aspect ratio log-uniform in ``ratio``."""
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = math.sqrt(target * aspect), math.sqrt(target / aspect)
        if cw <= w and ch <= h:
            return rng.uniform(0, w - cw), rng.uniform(0, h - ch), cw, ch
    side = min(h, w)  # fallback: the central square
    return (w - side) / 2, (h - side) / 2, side, side


def batch_size_draw(cfg: AugmentConfig, rng: np.random.Generator) -> int:
    """SpeedNet's one spatial size for the whole batch (other recipes: ``cfg.out``)."""
    if cfg.recipe == "speednet":
        return int(rng.integers(cfg.speednet_sizes[0], cfg.speednet_sizes[1] + 1))
    return cfg.out


def sample_params(
    cfg: AugmentConfig, height: int, width: int, clips: list[Clip], batch_side: int, rng: np.random.Generator
) -> SampleParams:
    """Parameters for one sample of stored size ``height x width`` whose clips are ``clips``."""
    T = len(clips[0].indices)
    if cfg.recipe == "none":
        base, out = (height, width), (height, width)
    else:
        short = {"speednet": batch_side, "rspnet": cfg.base, "eval": round(cfg.out / cfg.crop_fraction)}[cfg.recipe]
        base, out = resized(height, width, short), (batch_side, batch_side)
    # Crops are drawn in the base frame. Without antialiasing there is no resize op: the map then
    # takes base coordinates on to stored ones as well.
    fold = np.eye(3) if cfg.antialias else np.diag([width / base[1], height / base[0], 1.0])
    groups: dict[int, tuple] = {}  # aug_group -> (matrix, hsv, contrast, sigma): drawn once per group
    matrices, hsv, contrast, sigma = [], [], [], []
    for clip in clips:
        if clip.aug_group not in groups:
            crop = np.vstack([_spatial(cfg, *base, out, rng).reshape(2, 3), [0, 0, 1]])
            groups[clip.aug_group] = ((fold @ crop)[:2].astype(np.float32), *_colour(cfg, rng))
        matrix, c_hsv, c_contrast, c_sigma = groups[clip.aug_group]
        matrices.append(np.tile(matrix, (T, 1, 1)))
        hsv.append(np.tile(c_hsv, (T, 1)))
        contrast.append(np.full(T, c_contrast, np.float32))
        sigma.append(np.full(T, c_sigma, np.float32))
    return SampleParams(
        base if cfg.antialias else (height, width),
        out,
        np.concatenate(matrices),
        np.concatenate(hsv),
        np.concatenate(contrast),
        np.concatenate(sigma),
    )


def _spatial(cfg: AugmentConfig, h: int, w: int, out: tuple[int, int], rng) -> np.ndarray:
    oh, ow = out
    if cfg.recipe == "none":
        return crop_matrix(0, 0, w, h, ow, oh, False)
    if cfg.recipe == "eval":
        return crop_matrix((w - ow) / 2, (h - oh) / 2, ow, oh, ow, oh, False)
    if cfg.recipe == "speednet":
        return crop_matrix(rng.uniform(0, w - ow), rng.uniform(0, h - oh), ow, oh, ow, oh, False)
    x0, y0, cw, ch = random_resized_box(h, w, cfg.scale, cfg.ratio, rng)
    return crop_matrix(x0, y0, cw, ch, ow, oh, bool(rng.random() < cfg.flip_p))


def _colour(cfg: AugmentConfig, rng) -> tuple[np.ndarray, float, float]:
    hue, sat, val, contrast, sigma = 0.0, 1.0, 1.0, 1.0, 0.0
    if cfg.colour:
        b, c, s, h = cfg.jitter
        if rng.random() < cfg.jitter_p:
            val = rng.uniform(1 - b, 1 + b)
            contrast = rng.uniform(1 - c, 1 + c)
            sat = rng.uniform(1 - s, 1 + s)
            hue = rng.uniform(-h, h) * 360
        if rng.random() < cfg.gray_p:
            sat = 0.0
        if rng.random() < cfg.blur_p:
            sigma = rng.uniform(*cfg.blur_sigma)
    return np.array([hue, sat, val], np.float32), contrast, sigma
