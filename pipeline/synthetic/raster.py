"""Vectorised numpy rasterisation of textured shapes, antialiased by signed distance.

A ``Canvas`` is a float32 RGB image addressed in scene units (y up, 1 unit = frame height).
Each shape is painted only over its bounding box, with coverage ``clip(0.5 - d, 0, 1)`` where d
is the signed distance to its outline in pixels: one pixel of smooth edge, no supersampling.
"""

from __future__ import annotations

import math

import numpy as np

from .appearance import Look


def pattern(texture: str, density: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Two-tone texture weight (0 = primary, 1 = secondary) at object-local coordinates u, v in [-1, 1]."""
    if texture == "stripes":
        return np.floor(u * density) % 2
    if texture == "sectors":
        return np.floor((np.arctan2(v, u) + math.pi) * (density / math.pi)) % 2
    if texture == "checker":
        return (np.floor(u * density) + np.floor(v * density)) % 2
    if texture == "spots":
        fu = u * density - np.round(u * density)
        fv = v * density - np.round(v * density)
        return (fu * fu + fv * fv < 0.12).astype(np.float32)
    raise ValueError(f"unknown texture {texture!r}")


class Canvas:
    """An image being painted; shapes are placed in scene units."""

    def __init__(self, image: np.ndarray):
        self.image = image  # (H, W, 3) float32, 0..1
        height, width = image.shape[:2]
        self.scale = float(height)  # pixels per unit
        self.xs = ((np.arange(width) + 0.5) / height).astype(np.float32)
        self.ys = (1.0 - (np.arange(height) + 0.5) / height).astype(np.float32)

    def _region(self, cx: float, cy: float, reach: float):
        """Rows, columns and pixel-centre coordinates of the box within ``reach`` of (cx, cy)."""
        height, width = self.image.shape[:2]
        c0 = max(0, math.floor((cx - reach) * self.scale - 1))
        c1 = min(width, math.ceil((cx + reach) * self.scale + 1))
        r0 = max(0, math.floor((1.0 - cy - reach) * self.scale - 1))
        r1 = min(height, math.ceil((1.0 - cy + reach) * self.scale + 1))
        if c0 >= c1 or r0 >= r1:
            return None
        rows, cols = slice(r0, r1), slice(c0, c1)
        return rows, cols, self.xs[cols][None, :] - np.float32(cx), self.ys[rows][:, None] - np.float32(cy)

    def _paint(self, rows: slice, cols: slice, distance: np.ndarray, colour: np.ndarray) -> None:
        alpha = np.clip(0.5 - distance * self.scale, 0.0, 1.0)[..., None]
        target = self.image[rows, cols]
        target += alpha * (colour - target)

    @staticmethod
    def _texture(look: Look, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        primary = np.asarray(look.primary, dtype=np.float32)
        secondary = np.asarray(look.secondary, dtype=np.float32)
        weight = pattern(look.texture, look.density, u, v).astype(np.float32)
        return primary + weight[..., None] * (secondary - primary)

    def disc(self, cx: float, cy: float, radius: float, look: Look, angle: float) -> None:
        """A textured disc whose texture is turned by ``angle`` (radians, counter-clockwise)."""
        region = self._region(cx, cy, radius)
        if region is None:
            return
        rows, cols, dx, dy = region
        c, s = math.cos(angle), math.sin(angle)
        u = (c * dx + s * dy) / radius
        v = (c * dy - s * dx) / radius
        self._paint(rows, cols, np.hypot(dx, dy) - radius, self._texture(look, u, v))

    def rect(self, cx: float, cy: float, half_w: float, half_h: float, look: Look, angle: float) -> None:
        """A textured rectangle turned by ``angle`` about its centre."""
        region = self._region(cx, cy, math.hypot(half_w, half_h))
        if region is None:
            return
        rows, cols, dx, dy = region
        c, s = math.cos(angle), math.sin(angle)
        along = c * dx + s * dy
        across = c * dy - s * dx
        distance = np.maximum(np.abs(along) - half_w, np.abs(across) - half_h)
        self._paint(rows, cols, distance, self._texture(look, along / half_w, across / half_h))

    def segment(self, ax: float, ay: float, bx: float, by: float, radius: float, colour) -> None:
        """A solid stroke of half-width ``radius`` from a to b, with round ends."""
        mx, my = 0.5 * (ax + bx), 0.5 * (ay + by)
        region = self._region(mx, my, 0.5 * math.hypot(bx - ax, by - ay) + radius)
        if region is None:
            return
        rows, cols, dx, dy = region
        hx, hy = 0.5 * (bx - ax), 0.5 * (by - ay)  # from the midpoint to b
        length2 = hx * hx + hy * hy
        along = np.clip((dx * hx + dy * hy) / length2, -1.0, 1.0) if length2 > 0 else 0.0
        distance = np.hypot(dx - along * hx, dy - along * hy) - radius
        self._paint(rows, cols, distance, np.asarray(colour, dtype=np.float32))
