"""Within-video retrieval: how similar a query clip is to every window of one long video, over time
(SpeedNet figure 7a), and where that similarity peaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.atomic import save_figure


def peaks(scores: np.ndarray, separation: int, count: int = 5) -> np.ndarray:
    """Indices of up to ``count`` peaks of ``scores``, best first: greedily the highest window not
    within ``separation`` windows of a peak already taken (non-maximum suppression), so one moment
    is reported once however many overlapping windows see it."""
    scores = np.asarray(scores, dtype=float)
    taken: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if len(taken) == count:
            break
        if all(abs(int(i) - t) > separation for t in taken):
            taken.append(int(i))
    return np.array(taken, dtype=int)


def plot_curve(times: np.ndarray, scores: np.ndarray, peak_rows: np.ndarray, title: str, path: Path) -> None:
    """Similarity against time, peaks marked; written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(times, scores, color="tab:blue", lw=1.5)
    ax.scatter(times[peak_rows], scores[peak_rows], color="tab:red", zorder=3, label="peaks")
    for rank, row in enumerate(peak_rows, 1):
        ax.annotate(str(rank), (times[row], scores[row]), textcoords="offset points", xytext=(0, 5), ha="center")
    ax.set_xlabel("time in the video (s, window centre)")
    ax.set_ylabel("cosine similarity to the query")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
