"""What a fine-tuning run is made of: the classes of labelled shards, and the pretraining loop's
config for the run (``model.method = "classifier"``), checked before any training starts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from jobs.pretrain.config import Config, load
from models.trained import load_trained
from pipeline.shards import ShardIndex, resolve_shards


def classes_of(data: Path, train: str = "train", test: str = "test") -> list[str]:
    """The label list the shard job wrote for ``data``'s splits (shared by all of them). One clear
    error when a split has no manifest or no labels, or the splits' lists differ; a warning naming
    the test classes that have no training video."""
    manifests = {}
    for split in (train, test):
        path = Path(data) / split / "manifest.json"
        if not path.is_file():
            raise ValueError(f"no manifest at {path}: shard the dataset with `just shard` first")
        manifests[split] = json.loads(path.read_text())
    labels = manifests[train].get("labels") or []
    if len(labels) < 2:
        raise ValueError(f"{Path(data) / train} is not labelled ({len(labels)} classes): fine-tuning needs labels")
    if manifests[test].get("labels") != labels:
        raise ValueError(f"the labels of {train} and {test} differ: shard both splits in one run of `just shard`")
    counts = _videos_per_label(Path(data) / train)
    missing = [label for label in labels if counts.get(label, 0) == 0]
    if missing:
        print(f"warning: classes without a training video: {', '.join(missing)}", file=sys.stderr)
    return labels


def _videos_per_label(split: Path) -> dict[str, int]:
    index = ShardIndex(resolve_shards(split))
    counts: dict[str, int] = {}
    for position in range(len(index)):
        label = index.read_meta(position).label
        counts[label] = counts.get(label, 0) + 1
    return counts


def finetune_config(name: str, overrides: list[str], init: Path | None, data: Path, classes: int) -> Config:
    """The config ``name`` with the run's shards, class count and starting point: the checkpoint's
    backbone (its architecture, so its weights fit) or, with ``init`` None, random weights."""
    sets = [f'data.shards="{Path(data) / "train"}"', f"model.options.classes={classes}"]
    if init is not None:
        model = load_trained(init).config["model"]
        sets += [
            f'model.init="{Path(init).resolve()}"',
            f'model.backbone="{model["backbone"]}"',
            "model.backbone_options=" + _toml_table(model["backbone_options"]),
        ]
    config = load(name, sets + list(overrides))  # the user's --set last: they win
    if config.model.method != "classifier":
        raise ValueError(f"config {name} trains {config.model.method}, not the classifier fine-tuning trains")
    return config


def _toml_table(values: dict) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) + " }"
