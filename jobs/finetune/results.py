"""What a fine-tuning run reports: top-1 and top-5 at clip and video level on the test split, per
official split (fold) and averaged over the folds, as the papers' "average over three splits" rows.

``RUN/results.json`` of one fold: ``{"init", "data", "classes", "steps", "clip": {"top1", "top5"},
"video": {...}, "videos", "clips", "dropped"}``. With ``--folds``, each fold's run is ``RUN/fold-N/``
and ``RUN/results.json`` is ``{"folds": {"1": <fold result>, ...}, "pending": [...], "mean": ...}``,
``mean`` only once every fold has finished.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from pipeline.atomic import atomic_write_text

LEVELS = ("clip", "video")


def fold_dir(run_dir: Path, fold: int) -> Path:
    return Path(run_dir) / f"fold-{fold}"


def mean_over_folds(results: dict[int, dict]) -> dict:
    """Each level's top-k averaged over the folds' results (those every fold reports)."""
    if not results:
        raise ValueError("no fold results to average")
    mean = {}
    for level in LEVELS:
        keys = set.intersection(*(set(r[level]) for r in results.values()))
        mean[level] = {k: sum(r[level][k] for r in results.values()) / len(results) for k in sorted(keys)}
    return mean


def summarise(run_dir: Path, folds: list[int]) -> dict:
    """Read every finished fold's ``results.json`` and write ``run_dir/results.json``. Called by
    each fold's job as it ends; a lock keeps two folds that end together from losing one another."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = {}
        for fold in folds:
            path = fold_dir(run_dir, fold) / "results.json"
            if path.is_file():
                done[fold] = json.loads(path.read_text())
        summary = {"folds": {str(f): r for f, r in done.items()}, "pending": [f for f in folds if f not in done]}
        if done and not summary["pending"]:
            summary["mean"] = mean_over_folds(done)
        atomic_write_text(run_dir / "results.json", json.dumps(summary, indent=1) + "\n")
    return summary


def table(rows: dict[str, dict]) -> str:
    """Rows of top-1 / top-5 at clip and video level, as percentages, one line per named result."""
    head = f"{'':10}{'clip top1':>11}{'clip top5':>11}{'video top1':>12}{'video top5':>12}"
    lines = [head]
    for name, result in rows.items():
        cells = [result[level].get(k) for level in LEVELS for k in ("top1", "top5")]
        widths = (11, 11, 12, 12)
        lines.append(
            f"{name:10}"
            + "".join(f"{100 * c:{w}.1f}" if c is not None else f"{'-':>{w}}" for c, w in zip(cells, widths))
        )
    return "\n".join(lines)
