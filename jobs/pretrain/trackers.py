"""Experiment trackers of a training run (``--report-to``), through Accelerate's tracking.

``--report-to tensorboard|wandb|mlflow|none`` (repeatable or comma-separated; default tensorboard)
names the trackers; the loop hands ``log_with(...)`` to ``Accelerator(log_with=..., project_dir=RUN)``,
starts them with ``init_trackers(PROJECT, config=flat_config(...), init_kwargs=init_kwargs(RUN))``,
logs every logged step's scalars to them (``accelerator.log``, from ``jobs.pretrain.logbook``) and
ends them with ``end_training()``. Where each one writes:

- tensorboard: ``RUN/tensorboard/`` (events; the config as hparams in a timestamped subfolder);
- wandb: project ``speedrep``, the run named after RUN, its local files under ``RUN/wandb/``
  (``WANDB_MODE=offline`` on nodes without internet, then ``wandb sync``);
- mlflow: experiment ``speedrep`` (``MLFLOW_EXPERIMENT_NAME`` wins), the run named after RUN, at
  ``MLFLOW_TRACKING_URI`` (default ``./mlruns``).

A tracker whose package is missing is refused before training starts, in one line naming the
package (``require``), where Accelerate would drop it with a debug message and train untracked.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections.abc import Iterable
from pathlib import Path

PROJECT = "speedrep"
TENSORBOARD_DIR = "tensorboard"  # under the run folder
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}  # tracker -> what to pip install
DEFAULT = ("tensorboard",)


def parse_report_to(values: Iterable[str]) -> tuple[str, ...]:
    """``--report-to`` values (each possibly comma-separated) as tracker names, in order, each once;
    ``none`` alone is no tracker. ``ValueError`` for an unknown name or ``none`` beside a tracker."""
    names = [part.strip() for value in values for part in value.split(",") if part.strip()]
    unknown = [n for n in names if n not in PACKAGES and n != "none"]
    if unknown:
        raise ValueError(f"unknown tracker {unknown[0]!r} in --report-to: choose from {', '.join(PACKAGES)} or none")
    if "none" in names and len(set(names)) > 1:
        raise ValueError("--report-to none cannot be combined with a tracker")
    return tuple(dict.fromkeys(n for n in names if n != "none"))


def require(trackers: Iterable[str]) -> None:
    """``ValueError`` naming the package to install for the first tracker that is not installed."""
    for name in trackers:
        if importlib.util.find_spec(PACKAGES[name]) is None:
            raise ValueError(f"--report-to {name} needs the {PACKAGES[name]} package: pip install {PACKAGES[name]}")


def log_with(trackers: Iterable[str], run_dir: Path) -> list | None:
    """``Accelerator(log_with=...)`` for ``trackers``; TensorBoard's as an instance, so that its
    events go to ``RUN/tensorboard`` while the other trackers' project is ``PROJECT`` (Accelerate
    names TensorBoard's folder after the project)."""
    from accelerate.tracking import TensorBoardTracker

    chosen = [TensorBoardTracker(TENSORBOARD_DIR, run_dir) if name == "tensorboard" else name for name in trackers]
    return chosen or None  # an empty list makes Accelerate warn that no tracker is installed


def init_kwargs(run_dir: Path) -> dict:
    """Per-tracker options of ``init_trackers``: the run is named after its folder."""
    run_dir = Path(run_dir)
    return {"wandb": {"name": run_dir.name, "dir": str(run_dir)}, "mlflow": {"run_name": run_dir.name}}


def flat_config(config: dict, prefix: str = "") -> dict[str, int | float | str | bool]:
    """A nested config as the flat scalars trackers take as hyperparameters: ``{"optim.lr": 0.1}``;
    lists and None (which TensorBoard's hparams refuse) as JSON text."""
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flat_config(value, f"{name}.")
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = json.dumps(value)
    return flat


def add_argument(parser: argparse.ArgumentParser) -> None:
    """``--report-to``, for the commands that train (pretraining, fine-tuning); read it with
    ``from_arguments``."""
    parser.add_argument(
        "--report-to",
        action="append",
        metavar="TRACKER",
        help=f"experiment trackers, repeatable or comma-separated: {', '.join(PACKAGES)} or none "
        f"(default: {','.join(DEFAULT)}; TensorBoard writes to RUN/{TENSORBOARD_DIR})",
    )


def from_arguments(values: list[str] | None) -> tuple[str, ...]:
    """The trackers ``--report-to`` asked for (the default when it was not given), each installed;
    ``ValueError`` in one line otherwise."""
    trackers = parse_report_to(values) if values else DEFAULT
    require(trackers)
    return trackers
