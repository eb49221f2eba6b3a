"""The DALI graph's work (``pipeline.graph``) done with torch on decoded planes: the CPU path's augmentation.

It reads one sample's feeds (``pipeline.batches.prepare_batch``: the same parameters the DALI graph
gets) and applies the same operations in the same order, each rounded to uint8 as DALI's are:

1. the antialiased resize of the whole frame (``resize``), when the recipe has one;
2. the per-clip affine map (crop, scale, flip) to the output size, bilinear, zero outside the frame;
3. colour: the YUV planes to RGB (BT.601), DALI's ``hsv`` (a hue rotation and a saturation scale in
   YIQ, a value scale) and ``brightness_contrast`` (contrast about 128);
4. the Gaussian blur, borders reflected;
5. ImageNet normalisation.

What differs from the DALI graph, for speed, is measured against it (``tests/pipeline/
test_cpu_path.py``, at least 40 dB PSNR): the resize and the crop work on the Y, U and V planes
(chroma at half resolution, centre-sited) and RGB is formed at the output size, not the stored one;
the three colour operations are one affine map, clamped and rounded once, not after each; and each
(frame, augmentation) pair is computed once, however many clips show it (RSPNet's c_j and c_k share
frames and augmentation; sliding windows overlap). torch's uint8 resize is vectorised for four
channels, so planes are packed four frames (or two chroma pairs) to a pixel before resizing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.augment import IMAGENET_MEAN, IMAGENET_STD
from pipeline.seek_decode import Planes

# DALI's hsv works in YIQ: these are its RGB -> YIQ rows (fitted to its output; exact to 1e-4)
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.321], [0.211, -0.523, 0.311]])
CONTRAST_CENTRE = 128.0  # DALI's default for uint8: half the range
# BT.601 YUV -> RGB, as DALI's decoder converts (limited range: Y 16-235, chroma 16-240)
_LIMITED = (
    np.array([[1, 0, 1.402], [1, -0.344136, -0.714136], [1, 1.772, 0]]) * [[255 / 219, 255 / 224, 255 / 224]],
    16,
)
_FULL = (np.array([[1, 0, 1.402], [1, -0.344136, -0.714136], [1, 1.772, 0]]), 0)


def hsv_matrix(hue: float, saturation: float, value: float) -> np.ndarray:
    """DALI's ``hsv`` as the 3x3 matrix it applies to RGB: rotate the chroma of YIQ by -hue degrees,
    scale it by ``saturation``, scale all by ``value``."""
    t = math.radians(hue)
    rotate = np.array([[1, 0, 0], [0, math.cos(t), math.sin(t)], [0, -math.sin(t), math.cos(t)]])
    return value * np.linalg.inv(RGB_TO_YIQ) @ rotate @ np.diag([1, saturation, saturation]) @ RGB_TO_YIQ


def augment_sample(
    chunks: Iterable[Planes],
    feeds: dict[str, np.ndarray],
    into: torch.Tensor,
    *,
    antialias: bool,
    colour: bool,
    blur_kernel: int | None,
) -> None:
    """Write one sample's clips into ``into``: its decoded ``chunks`` (the feed ``frames``, in order)
    under its ``feeds``. ``into`` is (clips, T, 3, H, W) float32, which gets ImageNet-normalised
    pixels, or (clips, T, H, W, 3) uint8 (any strides: a view of the batch). ``blur_kernel``: None
    for no blur, 0 for a window derived from each sigma, else the window side."""
    order = feeds["order"].astype(np.int64)
    size = tuple(int(v) for v in feeds["size"])
    T, normalise = into.shape[1], into.dtype == torch.float32
    params = np.concatenate(
        [feeds["matrix"].reshape(len(order), 6)]
        + [feeds[n][:, None] for n in ("hue", "saturation", "value", "contrast", "sigma")],
        axis=1,
    )
    kinds, kind_of = np.unique(params, axis=0, return_inverse=True)  # one per augmentation group
    kind_of = kind_of.ravel()
    first = 0
    for planes in chunks:
        n = len(planes.y)
        yuv = _resized(planes, tuple(int(v) for v in feeds["resize"]) if antialias else None)
        for k, row in enumerate(kinds):
            shows = np.flatnonzero((kind_of == k) & (order >= first) & (order < first + n))  # output frames
            if not len(shows):
                continue
            take, where = np.unique(order[shows] - first, return_inverse=True)  # each frame once
            matrix = row[:6].reshape(2, 3)
            if antialias:  # all three planes on the resized grid
                picked = warp(yuv[take], matrix, size)
            else:  # as stored: the chroma planes are half the size
                y, uv = yuv
                picked = torch.cat([warp(y[take], matrix, size), warp(uv[take], matrix * 0.5, size)], 1)
            rgb = _affine(picked, *colour_map(planes.full_range, *(row[6:10] if colour else (0, 1, 1, 1))))
            if blur_kernel is not None and row[10] > 0:
                rgb = gaussian_blur(rgb, float(row[10]), blur_kernel)
            rgb = rgb.add_(0.5).floor_()  # half up, as DALI rounds
            rgb = _normalised(rgb) if normalise else rgb.to(torch.uint8).permute(0, 2, 3, 1)
            into[torch.as_tensor(shows // T), torch.as_tensor(shows % T)] = rgb[torch.as_tensor(where.ravel())]
        first += n


def _normalised(rgb: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return rgb.sub_(mean).div_(std)


def _resized(planes: Planes, size: tuple[int, int] | None):
    """With a ``size``: Y, U and V resized to it (antialiased; the chroma brought to the luma's grid)
    as one (n, 3, h, w). Without: Y (n, 1, H, W) and U, V (n, 2, H/2, W/2) as stored."""
    y, uv = torch.from_numpy(planes.y)[:, None], torch.from_numpy(planes.uv)
    if size is None:
        return y, uv
    if y.shape[2:] == size:  # frames as stored (previews): chroma upsampled exactly, not rounded to uint8
        return torch.cat([y.float(), F.interpolate(uv.float(), size=size, mode="bilinear")], 1)
    return torch.cat([_resize_packed(y, size), _resize_packed(uv, size)], 1)


def _resize_packed(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(x, size, antialias=True)`` on uint8 (n, c, H, W), c in (1, 2): channels are
    independent, so frames are packed four channels to a pixel, where torch's uint8 kernel is fast."""
    n, c, h, w = x.shape
    if (h, w) == size:
        return x
    per = 4 // c
    source = x.numpy()
    packed = np.zeros((-(-n // per), h, w, 4), np.uint8)
    for i in range(n):  # one strided copy per frame: cheaper than a general transpose
        packed[i // per, :, :, (i % per) * c : (i % per + 1) * c] = source[i].transpose(1, 2, 0)
    out = F.interpolate(torch.from_numpy(packed).permute(0, 3, 1, 2), size=size, mode="bilinear", antialias=True)
    return out.contiguous().reshape(-1, c, *size)[:n]  # channel p * c + k of a pixel: plane k of its p-th frame


def warp(x: torch.Tensor, matrix: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """DALI's ``warp_affine`` for an axis-aligned map (crop, scale, flip): output pixel centre
    (j + 0.5, i + 0.5) samples the source at ``matrix`` @ (x, y, 1), bilinearly, zero outside.
    x: (n, c, H, W), any dtype; returns float (n, c, *size).
    Separable, so two small matrix products over only the rows and columns the map reaches."""
    (a, b, c), (d, e, f) = matrix
    if b or d:
        raise ValueError("the CPU path applies axis-aligned maps only (crop, scale, flip), not rotations")
    (top, rows), (left, cols) = _weights(e, f, size[0], x.shape[2]), _weights(a, c, size[1], x.shape[3])
    x = x[:, :, top : top + rows.shape[1], left : left + cols.shape[1]]
    return torch.matmul(rows, torch.matmul(x.float(), cols.T))


def _weights(scale: float, offset: float, out: int, n: int) -> tuple[int, torch.Tensor]:
    """Bilinear weights along one axis: (first source pixel used, (out, pixels used) matrix); a
    source pixel outside 0..n-1 weighs nothing."""
    position = scale * (np.arange(out) + 0.5) + offset - 0.5  # in source pixel-centre coordinates
    low = np.floor(position).astype(np.int64)
    high_weight = position - low
    first = int(np.clip(low.min(), 0, n - 1))
    last = int(np.clip(low.max() + 1, 0, n - 1))
    weights = np.zeros((out, last - first + 1), np.float32)
    for idx, w in ((low, 1 - high_weight), (low + 1, high_weight)):  # within one tap, no cell repeats
        inside = (idx >= 0) & (idx < n)
        weights[np.flatnonzero(inside), idx[inside] - first] += w[inside]
    return first, torch.from_numpy(weights)


def colour_map(full_range: bool, hue: float, saturation: float, value: float, contrast: float):
    """The matrix and offset that take BT.601 YUV to RGB, then apply DALI's ``hsv`` and
    ``brightness_contrast``: one affine map. (DALI clamps to 0..255 after each of the three; here
    only the result is, which differs only where a pixel saturates before the end.)"""
    matrix, black = _FULL if full_range else _LIMITED
    rgb = hsv_matrix(hue, saturation, value) @ matrix * contrast
    offset = -rgb @ np.array([black, 128.0, 128.0]) + CONTRAST_CENTRE * (1 - contrast)
    return rgb, offset


def _affine(x: torch.Tensor, matrix: np.ndarray, offset: np.ndarray) -> torch.Tensor:
    """matrix @ pixel + offset for every pixel of (n, 3, h, w), clamped to 0..255."""
    n, c, h, w = x.shape
    out = torch.matmul(torch.as_tensor(matrix, dtype=torch.float32), x.reshape(n, c, h * w))
    return out.add_(torch.as_tensor(offset, dtype=torch.float32).view(1, 3, 1)).clamp_(0, 255).reshape(n, c, h, w)


def gaussian_blur(rgb: torch.Tensor, sigma: float, kernel: int) -> torch.Tensor:
    """DALI's ``gaussian_blur``: a separable Gaussian of ``sigma`` over a ``kernel`` x ``kernel``
    window (0: 2 * ceil(3 sigma) + 1), borders reflected (101)."""
    side = kernel or 2 * math.ceil(3 * sigma) + 1
    r = side // 2
    taps = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
    taps /= taps.sum()
    n, c, h, w = rgb.shape
    x = rgb.reshape(n * c, 1, h, w)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), taps.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), taps.view(1, 1, -1, 1))
    return x.reshape(n, c, h, w)
