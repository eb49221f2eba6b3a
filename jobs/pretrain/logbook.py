"""Training logs: one JSON line per logged step, the same scalars to the experiment trackers, and PNG curves.

``metrics.jsonl`` holds ``{"step", "epoch", "lr", "time", <metric>: value, ...}`` per line. A resumed
run appends; where steps were repeated after a crash the later line wins (``read_metrics``), so the
file always reads as one run. The trackers (TensorBoard, wandb, MLflow: ``jobs.pretrain.trackers``)
get each line's numbers through ``forward``, Accelerate's ``accelerator.log``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pipeline.atomic import save_figure


class Logbook:
    """``RUN/metrics.jsonl``, appended to; ``forward(scalars, step=step)`` also gets each record's numbers."""

    def __init__(self, run_dir: Path, forward: Callable[..., None] | None = None):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")
        self._forward = forward

    def log(self, step: int, values: dict) -> None:
        record = {"step": step, **{k: (float(v) if not isinstance(v, (int, str)) else v) for k, v in values.items()}}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._forward is not None:
            scalars = {k: v for k, v in record.items() if k != "step" and isinstance(v, (int, float))}
            self._forward(scalars, step=step)

    def close(self) -> None:
        self._file.close()


def read_metrics(path: Path) -> list[dict]:
    """Records by step, the last line of each step winning; a torn last line (a kill) is skipped."""
    by_step: dict[int, dict] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            by_step[record["step"]] = record
    return [by_step[s] for s in sorted(by_step)]


def plot_curves(metrics_path: Path, out: Path) -> Path:
    """One panel per metric (loss and accuracies) against step, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    keys = [k for k in records[0] if k not in ("step", "epoch", "time")] if records else []
    keys = sorted(keys, key=lambda k: (not k.startswith("loss"), k))
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(3.2 * max(1, len(keys)), 2.8), squeeze=False)
    for ax, key in zip(axes[0], keys):
        points = [(r["step"], r[key]) for r in records if key in r]
        ax.plot([p[0] for p in points], [p[1] for p in points], lw=1.2)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if key.endswith("acc"):
            ax.set_ylim(0, 1)
    fig.tight_layout()
    save_figure(fig, out, dpi=100)
    return out
