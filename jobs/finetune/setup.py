"""What a fine-tuning run is made of: the classes of labelled shards, and the pretraining loop's
config for the run (``model.method = "classifier"``), checked before any training starts.

The shipped configs are in ``jobs/finetune/configs/``: ``tiny_finetune`` for CPU, and one per paper
row (``rspnet_<backbone>_<dataset>``, ``speednet_s3dg_<dataset>``), each value marked with its source."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from jobs.pretrain.config import Config, load
from models.trained import load_trained
from pipeline.shards import ShardIndex, resolve_shards

CONFIG_DIR = Path(__file__).parent / "configs"

log = logging.getLogger(__name__)


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
        log.warning("classes without a training video: %s", ", ".join(missing))
    return labels


def _videos_per_label(split: Path) -> dict[str, int]:
    index = ShardIndex(resolve_shards(split))
    counts: dict[str, int] = {}
    for position in range(len(index)):
        label = index.read_meta(position).label
        counts[label] = counts.get(label, 0) + 1
    return counts


def load_config(name: str, overrides: list[str] = (), variant: str | None = None) -> Config:
    """A fine-tuning config by name (``jobs/finetune/configs/``) or path, as ``jobs.pretrain.config.load``."""
    return load(name, overrides, variant=variant, config_dir=CONFIG_DIR)


def finetune_config(
    name: str,
    overrides: list[str],
    init: Path | None,
    data: Path,
    classes: int,
    variant: str | None = None,
) -> Config:
    """The fine-tuning config ``name`` (``jobs/finetune/configs/`` or a path) with the run's shards,
    class count and starting point: the checkpoint ``init``, whose backbone must be the config's,
    or random weights when ``init`` is None."""
    sets = [f'data.shards="{Path(data) / "train"}"', f"model.options.classes={classes}"]
    if init is not None:
        sets.append(f'model.init="{Path(init).resolve()}"')
    config = load_config(name, sets + list(overrides), variant)  # the user's --set last: they win
    if config.model.method != "classifier":
        raise ValueError(f"config {name} trains {config.model.method}, not the classifier fine-tuning trains")
    if init is not None:
        _check_architecture(load_trained(init).config["model"], config, init, name)
    return config


def _check_architecture(pretrained: dict, config: Config, init: Path, name: str) -> None:
    """One clear error, before any training, when the checkpoint's backbone is not the config's."""
    theirs = (pretrained["backbone"], pretrained.get("backbone_options") or {})
    ours = (config.model.backbone, config.model.backbone_options or {})
    if theirs != ours:
        fitting = sorted(p.stem for p in CONFIG_DIR.glob("*.toml") if _backbone_of(p) == theirs)
        sets = f"--set model.backbone={theirs[0]} --set 'model.backbone_options={_toml_table(theirs[1])}'"
        hint = f"configs for it: {', '.join(fitting)}" if fitting else f"to fit it: {sets}"
        raise ValueError(
            f"{init} holds a {_describe(theirs)} backbone but config {name} fine-tunes a {_describe(ours)} ({hint})"
        )


def _backbone_of(path: Path) -> tuple[str, dict]:
    model = load(str(path)).model
    return model.backbone, model.backbone_options or {}


def _describe(arch: tuple[str, dict]) -> str:
    backbone, options = arch
    return backbone + (f" {json.dumps(options, sort_keys=True)}" if options else "")


def _toml_table(values: dict) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) + " }"
