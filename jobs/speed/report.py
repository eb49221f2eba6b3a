"""What the speediness and speedup commands write besides videos: the curves as CSV, and plots."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from jobs.speed import speed_curves
from jobs.speed.analysis import Analysis
from jobs.speed.solver import overall_rate
from pipeline.atomic import atomic_path, save_figure


def write_csv(a: Analysis, path: Path) -> None:
    V = speed_curves.speedup_vector(a.curves, a.factors, 0.5)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "time_s", *[f"p_normal_x{r:.3f}" for r in a.factors], "v_rho_0.5", "speediness"])
        for t in range(a.frames):
            w.writerow([t, f"{t / a.fps:.4f}", *[f"{p:.4f}" for p in a.curves[:, t]], f"{V[t]:.4f}", f"{1 / V[t]:.4f}"])


def plot_speediness(a: Analysis, segments: list[tuple[int, int]], title: str, path: Path) -> None:
    """P(normal) at every rate as an image over time, and the speediness curve with slow motion shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(a.frames) / a.fps
    fig, axes = plt.subplots(2, 2, figsize=(10, 5.5), height_ratios=[1.2, 1], width_ratios=[40, 1])
    (top, bar), (bottom, spare) = axes
    spare.axis("off")
    bottom.sharex(top)
    im = top.imshow(
        a.curves,
        aspect="auto",
        origin="lower",
        cmap="viridis",
        vmin=0,
        vmax=1,
        extent=(0, a.frames / a.fps, -0.5, len(a.factors) - 0.5),
        interpolation="nearest",
    )
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


def plot_speedup(V: np.ndarray, S: np.ndarray, fps: float, rate: float, rho: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(V)) / fps
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.step(t, V, where="mid", color="tab:gray", lw=1, label=f"V(t): largest natural speedup (rho {rho:.1f})")
    ax.plot(t, S, color="tab:red", lw=2, label=f"S(t): adaptive speedup (overall {overall_rate(S):.3f}x)")
    ax.axhline(rate, color="tab:blue", ls="--", lw=1, label=f"uniform {rate:g}x")
    ax.set_xlabel("input time (s)")
    ax.set_ylabel("speedup")
    ax.set_ylim(0.9, max(V.max(), S.max()) * 1.08)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    save_figure(fig, path)
