"""From SpeedNet's window predictions to per-frame speediness (SpeedNet sections 4.1 and 5.2).

The video is played at rates X^i (X = 1.25, i = 0..k, k = 10). For each rate the network's P(normal)
of every sliding window is assigned to the window's middle frame and interpolated linearly over all
input frames (``frame_curve``): a (k+1, L) array of curves P_i(t), aligned on the input's frames
(which is what the paper's "interpolate to the length of the longest curve" achieves).

- ``speedup_vector``: V(t) = max over i of X^i where P_i(t) > rho, and 1 where no rate looks normal:
  the largest speedup at which frame t still looks natural (section 4.1; never a slow-down).
- ``speediness``: 1 / V_0.5(t), how fast things move relative to their natural speed: 1 at natural
  speed (any speedup shows), 0.5 in a 2x slow motion (a 2x speedup still looks normal).
- ``slow_segments``: runs of frames whose V_0.5 reaches ``slow_factor`` (a segment whose sped-up
  version still looks normal is slow motion, section 5.2), at least ``min_frames`` long.
- ``choose_rho``: of rho in {0.1, ..., 0.9}, the one whose V's overall rate is closest to the target
  (section 4.2).
"""

from __future__ import annotations

import numpy as np

from jobs.speed.solver import overall_rate

X = 1.25
K = 10
RHOS = tuple(round(0.1 * i, 1) for i in range(1, 10))


def rates(x: float = X, k: int = K) -> np.ndarray:
    return x ** np.arange(k + 1, dtype=float)


def frame_curve(middles, probabilities, frames: int) -> np.ndarray:
    """P(normal) of windows centred at ``middles`` (input frame positions, increasing), linearly
    interpolated at every input frame 0..frames-1, held constant beyond the first and last window."""
    middles = np.asarray(middles, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    if len(middles) == 0 or len(middles) != len(probabilities):
        raise ValueError("need one probability per window, and at least one window")
    return np.interp(np.arange(frames, dtype=float), middles, probabilities)


def speedup_vector(curves: np.ndarray, factors: np.ndarray, rho: float) -> np.ndarray:
    """V(t): the largest factor X^i whose curve P_i(t) exceeds ``rho``; 1 where none does."""
    curves = np.asarray(curves, dtype=float)
    normal = curves > rho
    return np.maximum(1.0, np.max(np.where(normal, np.asarray(factors, dtype=float)[:, None], 0.0), axis=0))


def speediness(curves: np.ndarray, factors: np.ndarray) -> np.ndarray:
    return 1.0 / speedup_vector(curves, factors, 0.5)


def slow_segments(
    curves: np.ndarray, factors: np.ndarray, slow_factor: float = 1.9, min_frames: int = 8
) -> list[tuple[int, int]]:
    """[start, end) frame ranges judged slow motion: V_0.5 >= ``slow_factor`` for ``min_frames`` or more."""
    slow = speedup_vector(curves, factors, 0.5) >= slow_factor
    edges = np.flatnonzero(np.diff(np.concatenate([[0], slow.astype(int), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2]) if b - a >= min_frames]


def choose_rho(curves: np.ndarray, factors: np.ndarray, rate: float) -> tuple[float, np.ndarray]:
    """(rho, V) with V's overall rate (frames over sum of 1/V) closest to ``rate``; ties to the
    smaller rho."""
    best = None
    for rho in RHOS:
        V = speedup_vector(curves, factors, rho)
        gap = abs(overall_rate(V) - rate)
        if best is None or gap < best[0] - 1e-12:
            best = (gap, rho, V)
    return best[1], best[2]
